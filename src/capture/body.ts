import zlib from 'node:zlib'

/**
 * Keeps the first `limit` bytes of a body as it streams past, and counts the
 * rest. Chunks are kept by reference (no copy) until the bound is reached.
 */
export class BodyTap {
  readonly chunks: Buffer[] = []
  captured = 0
  size = 0

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.size += chunk.length
    if (this.captured >= this.limit) return
    const room = this.limit - this.captured
    const kept = chunk.length <= room ? chunk : chunk.subarray(0, room)
    this.chunks.push(kept)
    this.captured += kept.length
  }

  get truncated(): boolean {
    return this.size > this.captured
  }

  bytes(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.captured)
  }
}

const BINARY_TYPE = /^(image|audio|video|font)\/|^application\/(octet-stream|pdf|zip|gzip|x-gzip|x-tar|x-7z|x-rar|wasm|x-protobuf|protobuf|vnd\.(?!api\+json)[^;]*|msword|java-archive)|^multipart\/(?!form-data)/i
const TEXT_TYPE = /^text\/|json|xml|javascript|x-www-form-urlencoded|form-data|graphql|csv|yaml|html/i

export type BodyText = {text: string | null; truncated: boolean; binary: boolean}

function decompress(buf: Buffer, encoding: string, limit: number): Buffer | undefined {
  // The tap may have cut the compressed stream: flush what decodes, bounded in output.
  const options = {finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: Math.max(limit, 1)}
  try {
    if (encoding === 'gzip' || encoding === 'x-gzip') return zlib.gunzipSync(buf, options)
    if (encoding === 'deflate') return zlib.inflateSync(buf, options)
    if (encoding === 'br') return zlib.brotliDecompressSync(buf, {finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH, maxOutputLength: Math.max(limit, 1)})
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return undefined
    return undefined
  }
  return buf
}

const fatal = new TextDecoder('utf-8', {fatal: true})
const lenient = new TextDecoder('utf-8')

/**
 * The recorded form of a body: UTF-8 text within the bound, decoded from
 * gzip/deflate/br when needed; binary bodies become a marker with type and
 * size, never garbled text.
 */
export function bodyText(tap: BodyTap | undefined, headers: Record<string, string | string[] | undefined>, limit: number): BodyText {
  if (!tap || tap.size === 0) return {text: null, truncated: false, binary: false}
  const type = String(headers['content-type'] ?? '')
  const encoding = String(headers['content-encoding'] ?? '').toLowerCase().trim()
  let truncated = tap.truncated
  let buf = tap.bytes()
  if (encoding && encoding !== 'identity') {
    const decoded = decompress(buf, encoding, limit + 1)
    if (!decoded) return {text: `[${encoding} body, ${tap.size} bytes, not decodable]`, truncated, binary: true}
    if (decoded.length > limit) truncated = true
    buf = decoded.subarray(0, limit)
  }
  if (BINARY_TYPE.test(type)) return {text: `[binary ${type.split(';')[0]}, ${tap.size} bytes]`, truncated, binary: true}
  let text: string
  try {
    // stream: true holds back a multi-byte character cut by the bound
    text = fatal.decode(buf, {stream: truncated})
  } catch {
    if (!TEXT_TYPE.test(type)) return {text: `[binary ${type.split(';')[0] || 'unknown type'}, ${tap.size} bytes]`, truncated, binary: true}
    text = lenient.decode(buf)
  }
  if (text.includes('\u0000')) {
    if (!TEXT_TYPE.test(type)) return {text: `[binary ${type.split(';')[0] || 'unknown type'}, ${tap.size} bytes]`, truncated, binary: true}
    text = text.replace(/\u0000/g, '\ufffd')
  }
  return {text, truncated, binary: false}
}
