/**
 * Bytes of ASCII text written as a JSON string, as JSON.stringify writes
 * it, straight into a buffer: the record keeps a clean body's bytes instead
 * of decoding, escaping and encoding them again (V8's string escaper was a
 * quarter of the record builder's time on 6 KiB bodies).
 */

/** How a byte is written: 0 as it is, 1 after a backslash ('"' and '\\'), 2 as an escape of its own (control characters). */
const KIND = new Uint8Array(256)
for (let c = 0; c < 0x20; c++) KIND[c] = 2
KIND[0x22] = 1
KIND[0x5c] = 1
/** JSON.stringify's short escapes (\\b \\t \\n \\f \\r); the other control characters are \\u00XX. */
const SHORT: Record<number, number> = {0x08: 0x62, 0x09: 0x74, 0x0a: 0x6e, 0x0c: 0x66, 0x0d: 0x72}
const HEX = Buffer.from('0123456789abcdef')
/** The bytes a byte's escape adds: 1 for '"', '\\' and the short escapes, 5 for \\u00XX. */
const EXTRA = KIND.map((kind, c) => (kind === 0 ? 0 : kind === 1 || SHORT[c] !== undefined ? 1 : 5))

/** The most bytes writeJsonString() writes for `length` bytes (every byte a \\u00XX, and the quotes). */
export const jsonStringBound = (length: number) => length * 6 + 2

/** Exactly how many bytes writeJsonString() writes for `src`: one more pass, for bodies too long to size by jsonStringBound(). */
export function jsonStringLength(src: Uint8Array): number {
  let n = src.length + 2
  for (let i = 0; i < src.length; i++) n += EXTRA[src[i]]
  return n
}

/**
 * Writes `src` (ASCII, as Masker.isCleanAscii() accepted it) as a JSON string
 * at `at` in `dst`, which has room for jsonStringBound(src.length) bytes;
 * returns where it ended.
 *
 * Two bytes a step, and no branch for '"' and '\\': a backslash is written
 * first and overwritten by the byte unless the byte needs it (JSON bodies
 * have a quote every few bytes, and a branch on each cost more than the
 * rest). About 2.8 times as fast as a byte and a branch at a time.
 */
export function writeJsonString(src: Uint8Array, dst: Uint8Array, at: number): number {
  let o = at
  dst[o++] = 0x22
  const n = src.length
  let i = 0
  for (; i + 1 < n; i += 2) {
    const c0 = src[i]
    const c1 = src[i + 1]
    const k0 = KIND[c0]
    const k1 = KIND[c1]
    if (((k0 | k1) & 2) === 0) {
      dst[o] = 0x5c
      dst[o + k0] = c0
      o += 1 + k0
      dst[o] = 0x5c
      dst[o + k1] = c1
      o += 1 + k1
    } else {
      o = writeByte(c0, dst, o)
      o = writeByte(c1, dst, o)
    }
  }
  if (i < n) o = writeByte(src[i], dst, o)
  dst[o++] = 0x22
  return o
}

function writeByte(c: number, dst: Uint8Array, at: number): number {
  let o = at
  const kind = KIND[c]
  dst[o++] = 0x5c
  if (kind !== 2) {
    dst[o - 1 + kind] = c
    return o + kind
  }
  const short = SHORT[c]
  if (short !== undefined) dst[o++] = short
  else {
    dst[o++] = 0x75
    dst[o++] = 0x30
    dst[o++] = 0x30
    dst[o++] = HEX[c >> 4]
    dst[o++] = HEX[c & 15]
  }
  return o
}
