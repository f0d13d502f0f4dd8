import type {IncomingHttpHeaders} from 'node:http'

// RFC 9110 §7.6.1: connection-specific fields are not forwarded.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
])

/** The Connection field's options, in lower case: field names to drop, `close`, `keep-alive`. */
export function connectionOptions(headers: IncomingHttpHeaders): string[] {
  return String(headers.connection ?? '')
    .toLowerCase()
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
}

/** The fields of one hop: the standard ones, those the Connection field names, and `also` (each in lower case). */
export function hopByHop(headers: IncomingHttpHeaders, also: string[] = []): Set<string> {
  const extra = connectionOptions(headers)
  return extra.length || also.length ? new Set([...HOP_BY_HOP, ...extra, ...also]) : HOP_BY_HOP
}
