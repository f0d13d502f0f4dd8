import zlib from 'node:zlib'

/**
 * Keeps the first `limit` bytes of a body as it streams past, and counts the
 * rest; past the bound a chunk costs one addition.
 */
export class BodyTap {
  readonly chunks: Buffer[] = []
  captured = 0
  /** Set by decodeBody() for a compressed body: the decoded bytes within the bound. */
  decoded?: {bytes: Buffer; overflow: boolean}
  size = 0

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.size += chunk.length
    if (this.captured >= this.limit) return
    const room = this.limit - this.captured
    // A copy of the kept bytes: a slice would pin the socket's whole read buffer until the record is built.
    const kept = Buffer.from(chunk.length <= room ? chunk : chunk.subarray(0, room))
    this.chunks.push(kept)
    this.captured += kept.length
  }

  /** Copies the kept bytes into `arena` at `offset` (the batch buffer sent to the builder thread). */
  copyInto(arena: Uint8Array, offset: number): WireBody {
    let off = offset
    for (const c of this.chunks) {
      arena.set(c, off)
      off += c.length
    }
    return {offset, length: this.captured, size: this.size}
  }

  /** A tap over bytes of a received arena (no copy). */
  static fromWire(wire: WireBody, arena: Uint8Array, limit: number): BodyTap {
    const tap = new BodyTap(limit)
    tap.chunks.push(Buffer.from(arena.buffer, arena.byteOffset + wire.offset, wire.length))
    tap.captured = wire.length
    tap.size = wire.size
    return tap
  }

  get truncated(): boolean {
    return this.size > this.captured
  }

  bytes(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.captured)
  }
}

/** A body's place in its batch's arena, and its full size. */
export type WireBody = {offset: number; length: number; size: number}

const BINARY_TYPE =
  /^(image|audio|video|font)\/|^application\/(octet-stream|pdf|zip|gzip|x-gzip|x-tar|x-7z|x-rar|wasm|x-protobuf|protobuf|vnd\.(?!api\+json)[^;]*|msword|java-archive)|^multipart\/(?!form-data)/i
const TEXT_TYPE = /^text\/|json|xml|javascript|x-www-form-urlencoded|form-data|graphql|csv|yaml|html/i

/**
 * `bytes`: what `text` was decoded from when nothing was replaced (strict UTF-8), for a record that
 * keeps ASCII bodies as they came (see Masker.isCleanAscii). A cut body's bytes may end in the start
 * of a character the text holds back; ASCII bytes are always the text.
 */
export type BodyText = {text: string | null; truncated: boolean; binary: boolean; bytes?: Uint8Array}

function decoder(encoding: string): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined {
  if (encoding === 'gzip' || encoding === 'x-gzip') return zlib.createGunzip({finishFlush: zlib.constants.Z_SYNC_FLUSH})
  if (encoding === 'deflate') return zlib.createInflate({finishFlush: zlib.constants.Z_SYNC_FLUSH})
  if (encoding === 'br') return zlib.createBrotliDecompress({finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH})
  return undefined
}

/**
 * Decodes a compressed body's captured bytes, keeping at most `limit`
 * decoded bytes (a zip bomb costs no more than the bound) and accepting a
 * stream the tap cut short. Stored on the tap for bodyText().
 */
export async function decodeBody(
  tap: BodyTap | undefined,
  headers: Record<string, string | string[] | undefined>,
  limit: number,
): Promise<void> {
  const encoding = String(headers['content-encoding'] ?? '')
    .toLowerCase()
    .trim()
  if (!tap || tap.size === 0 || !encoding || encoding === 'identity') return
  const stream = decoder(encoding)
  if (!stream) return
  const out: Buffer[] = []
  let kept = 0
  tap.decoded = await new Promise<DecodedBody>((resolve) => {
    const done = (ok: boolean) => {
      stream.removeAllListeners('data')
      stream.destroy()
      resolve(ok || kept > 0 ? {bytes: Buffer.concat(out, Math.min(kept, limit)), overflow: kept > limit} : undefined)
    }
    stream.on('data', (chunk: Buffer) => {
      out.push(chunk)
      kept += chunk.length
      if (kept > limit) done(true)
    })
    stream.on('end', () => done(true))
    stream.on('error', () => done(false))
    stream.end(tap.bytes())
  })
}

type DecodedBody = {bytes: Buffer; overflow: boolean} | undefined

const fatal = new TextDecoder('utf-8', {fatal: true})
const lenient = new TextDecoder('utf-8')

/**
 * The recorded form of a body: UTF-8 text within the bound, decoded from
 * gzip/deflate/br when needed; binary bodies become a marker with type and
 * size, never garbled text.
 */
export function bodyText(tap: BodyTap | undefined, headers: Record<string, string | string[] | undefined>): BodyText {
  if (!tap || tap.size === 0) return {text: null, truncated: false, binary: false}
  const type = String(headers['content-type'] ?? '')
  const encoding = String(headers['content-encoding'] ?? '')
    .toLowerCase()
    .trim()
  let truncated = tap.truncated
  let buf = tap.bytes()
  if (encoding && encoding !== 'identity') {
    if (!tap.decoded) return {text: `[${encoding} body, ${tap.size} bytes, not decoded]`, truncated, binary: true}
    truncated ||= tap.decoded.overflow
    buf = tap.decoded.bytes
  }
  if (BINARY_TYPE.test(type)) return {text: `[binary ${type.split(';')[0]}, ${tap.size} bytes]`, truncated, binary: true}
  let text: string
  let strict = true
  try {
    // stream: true holds back a multi-byte character cut by the bound
    text = fatal.decode(buf, {stream: truncated})
  } catch {
    if (!TEXT_TYPE.test(type)) return {text: `[binary ${type.split(';')[0] || 'unknown type'}, ${tap.size} bytes]`, truncated, binary: true}
    text = lenient.decode(buf)
    strict = false
  }
  if (text.includes('\u0000')) {
    if (!TEXT_TYPE.test(type)) return {text: `[binary ${type.split(';')[0] || 'unknown type'}, ${tap.size} bytes]`, truncated, binary: true}
    // eslint-disable-next-line no-control-regex -- NUL is what PostgreSQL's text refuses: replaced on purpose
    return {text: text.replace(/\u0000/g, '\ufffd'), truncated, binary: false}
  }
  return strict ? {text, truncated, binary: false, bytes: buf} : {text, truncated, binary: false}
}
