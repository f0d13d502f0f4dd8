import {v5 as uuidv5} from 'uuid'
import type {Masker} from '../capture/masking.js'
import {traceId} from '../capture/identity.js'
import {RECORD_ID} from '../stores/source.js'

/**
 * HAR 1.2 entries back into request records: the inverse of render/har.ts (`export --format har`). An entry that
 * export wrote carries its record's id in `_id` (or an id in `comment`), so importing it again is kept once; any
 * other entry gets an id derived from its content (a UUIDv5 of its JSON), the same on every import of the same file.
 * A HAR from a browser was never masked: headers, query, cookies and bodies get the configured rules, as capture
 * applies them; on an exported HAR (masked already) the rules change nothing.
 */

/** The namespace of ids derived from HAR entries (any fixed UUID: it only keeps them apart from other v5 ids). */
const HAR_NAMESPACE = '6f1c2a52-1d0e-4c1b-9a57-3f0d2b6e8a11'

type Pair = {name?: unknown; value?: unknown}
type Obj = Record<string, unknown>

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v)

/** HAR's name/value list as the header object capture keeps: lower-case names, repeated ones an array. */
function headerObject(list: unknown): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  if (!Array.isArray(list)) return out
  for (const h of list as Pair[]) {
    if (!isObj(h) || typeof h.name !== 'string' || h.name.startsWith(':')) continue // HTTP/2 pseudo-headers are not headers
    const name = h.name.toLowerCase()
    const value = String(h.value ?? '')
    const prev = out[name]
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value]
  }
  return out
}

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null)

/** A HAR body's text: base64 content decoded when it is UTF-8 text, else the marker capture writes for binary bodies. */
function bodyOf(content: unknown, mimeType: string): {text: string | null; binary: boolean} {
  if (!isObj(content) || typeof content.text !== 'string') return {text: null, binary: false}
  if (content.encoding !== 'base64') return {text: content.text, binary: false}
  const bytes = Buffer.from(content.text, 'base64')
  try {
    return {text: new TextDecoder('utf-8', {fatal: true}).decode(bytes), binary: false}
  } catch {
    return {text: `[binary ${mimeType.split(';')[0] || 'unknown type'}, ${bytes.length} bytes]`, binary: true}
  }
}

/** Form parameters (postData.params) as the body text a browser sent. */
const formText = (params: unknown) =>
  Array.isArray(params)
    ? (params as Pair[])
        .filter(isObj)
        .map((p) => `${encodeURIComponent(String(p.name ?? ''))}=${encodeURIComponent(String(p.value ?? ''))}`)
        .join('&')
    : ''

/** One HAR entry as a request record, masked; throws an Error saying what is wrong with the entry. */
export function harRecord(entry: unknown, masker: Masker): Obj {
  if (!isObj(entry)) throw new Error('an entry is a JSON object')
  const req = entry.request
  const res = isObj(entry.response) ? entry.response : {}
  if (!isObj(req)) throw new Error('request: missing')
  if (typeof req.method !== 'string' || !req.method) throw new Error('request.method: missing')
  let url: URL
  try {
    url = new URL(String(req.url))
  } catch {
    throw new Error('request.url: an absolute URL (http://host/path)')
  }
  const started = typeof entry.startedDateTime === 'string' ? new Date(entry.startedDateTime) : undefined
  if (!started || Number.isNaN(started.getTime())) throw new Error('startedDateTime: an ISO 8601 time')

  const id =
    [entry._id, entry.comment].find((v): v is string => typeof v === 'string' && RECORD_ID.test(v))?.toLowerCase() ??
    uuidv5(JSON.stringify(entry), HAR_NAMESPACE)

  const rawReqHeaders = headerObject(req.headers)
  // cookies HAR lists apart, when its headers leave them out: kept as the Cookie header capture would have seen
  if (rawReqHeaders.cookie === undefined && Array.isArray(req.cookies) && req.cookies.length)
    rawReqHeaders.cookie = (req.cookies as Pair[])
      .filter(isObj)
      .map((c) => `${String(c.name ?? '')}=${String(c.value ?? '')}`)
      .join('; ')
  const rawResHeaders = headerObject(res.headers)
  if (rawResHeaders['set-cookie'] === undefined && Array.isArray(res.cookies) && res.cookies.length)
    rawResHeaders['set-cookie'] = (res.cookies as Pair[]).filter(isObj).map((c) => `${String(c.name ?? '')}=${String(c.value ?? '')}`)

  const post = isObj(req.postData) ? req.postData : undefined
  const reqType = String(post?.mimeType ?? first(rawReqHeaders['content-type']) ?? '')
  const reqText = post ? (typeof post.text === 'string' ? post.text : formText(post.params) || null) : null
  const content = isObj(res.content) ? res.content : {}
  const resType = String(content.mimeType ?? first(rawResHeaders['content-type']) ?? '')
  const resBody = bodyOf(content, resType)
  const status = typeof res.status === 'number' && Number.isInteger(res.status) && res.status > 0 ? res.status : null

  return {
    id,
    created_at: started.toISOString(),
    method: req.method.toUpperCase(),
    scheme: url.protocol.replace(/:$/, ''),
    host: url.host,
    path: masker.maskValues(url.pathname),
    query: masker.query(url.search.slice(1)),
    request_headers: masker.headers(rawReqHeaders),
    request_body: reqText === null ? null : masker.maskBody(reqText, reqType, true),
    request_body_size: num(req.bodySize) ?? (reqText === null ? 0 : Buffer.byteLength(reqText)),
    request_body_truncated: false,
    status_code: status,
    response_headers: masker.headers(rawResHeaders),
    response_body: resBody.text === null || resBody.binary ? resBody.text : masker.maskBody(resBody.text, resType, true),
    response_body_size: num(content.size) ?? num(res.bodySize) ?? 0,
    response_body_truncated: false,
    duration_ms: num(entry.time),
    ip: null,
    user_id: typeof entry._user === 'string' ? entry._user : null,
    user_agent: first(rawReqHeaders['user-agent']) ?? null,
    session_id: null,
    trace_id: traceId(rawReqHeaders.traceparent),
    request_id: first(rawReqHeaders['x-request-id'])?.slice(0, 200) ?? null,
    flags: Array.isArray(entry._flags) ? entry._flags.filter((f): f is string => typeof f === 'string') : [],
    error: null,
    extra: null,
    instance: null,
  }
}

/** The entries of a HAR document, or an Error saying why it is not one. */
export function harEntries(doc: unknown): unknown[] {
  if (!isObj(doc) || !isObj(doc.log) || !Array.isArray(doc.log.entries))
    throw new Error('not a HAR file: a JSON object with log.entries (an array) is expected')
  return doc.log.entries
}
