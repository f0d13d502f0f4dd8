import type {IncomingHttpHeaders} from 'node:http'
import {v7 as uuidv7} from 'uuid'
import {type BodyTap, type BodyText, bodyText} from './body.js'
import {suspiciousFlags} from './attack-flags.js'
import {MAX_USER_LENGTH, extraFromHeader, traceId, userFromHeaders} from './identity.js'
import {jsonStringBound, jsonStringLength, writeJsonString} from './json-bytes.js'
import type {Masker} from './masking.js'

export type Hooks = {
  userId?: (req: HookRequest, res: HookResponse) => unknown
  extra?: (req: HookRequest, res: HookResponse) => unknown
  mask?: (record: Record<string, unknown>) => Record<string, unknown> | void
}
export type HookRequest = {method: string; url: string; headers: IncomingHttpHeaders}
export type HookResponse = {statusCode: number; headers: Record<string, string | string[] | undefined>}

/** What the proxy saw of one exchange, before masking. */
export type Exchange = {
  id: string
  start: number
  method: string
  scheme: string
  host: string | null
  url: string
  requestHeaders: IncomingHttpHeaders
  requestBody?: BodyTap
  status: number
  responseHeaders: Record<string, string | string[] | undefined>
  responseBody?: BodyTap
  responseSize: number
  durationMs: number
  ip: string | null
  auditUser?: string
  auditExtra?: string
  error?: string
  upstreamError?: boolean
  /** flags found apart from the record's own tests (a login route's brute-force watch) */
  flags?: string[]
}

export type RecordOptions = {masker: Masker; maxBodyLength: number; slowMs: number; instance: string; hooks: Hooks}

/** A UUIDv7 whose time is the exchange's start (ids sort as records do). */
export const newRecordId = (msecs?: number) => (msecs === undefined ? uuidv7() : uuidv7({msecs}))

function safeHook<T>(fn: (() => T) | undefined): T | undefined {
  if (!fn) return undefined
  try {
    return fn()
  } catch {
    return undefined // a broken hook must not cost the request or the record
  }
}

/**
 * A record of the primary's own (an event, an outbound call, an output line) through the config's
 * mask() (a broken hook leaves it as the rules masked it), as its journal line: the log type first
 * (the journal routes by it) and the id kept.
 */
export function maskedLine(record: Record<string, unknown>, mask?: Hooks['mask']): string {
  const masked = safeHook(mask && (() => mask({...record}) ?? record))
  const out = masked && typeof masked === 'object' ? (masked as Record<string, unknown>) : record
  return JSON.stringify({log_type: record.log_type, ...out, id: record.id})
}

/** The access line: written for every request, excluded or not. */
export function accessLine(x: Exchange, o: RecordOptions, userId: string | null): string {
  return JSON.stringify({
    log_type: 'access',
    id: x.id,
    created_at: new Date(x.start).toISOString(),
    method: x.method,
    url: o.masker.url(x.url),
    status_code: x.status,
    duration_ms: Math.round(x.durationMs * 1000) / 1000,
    response_size: x.responseSize,
    ip: x.ip,
    user_id: userId,
    user_agent: x.requestHeaders['user-agent'] ?? null,
    referer: x.requestHeaders.referer ? o.masker.url(x.requestHeaders.referer) : null,
    instance: o.instance,
  })
}

export function resolveUser(x: Exchange, o: RecordOptions): string | null {
  const req = {method: x.method, url: x.url, headers: x.requestHeaders}
  const res = {statusCode: x.status, headers: x.responseHeaders}
  const fromHook = safeHook(o.hooks.userId && (() => o.hooks.userId!(req, res)))
  if (fromHook !== undefined && fromHook !== null && fromHook !== '') return String(fromHook).slice(0, MAX_USER_LENGTH)
  return userFromHeaders(x.requestHeaders, x.auditUser)
}

/** A body's text as the record holds it: masked (or a marker for a binary one); null for none. */
export function maskedBody(b: BodyText, type: string | undefined, masker: Masker): string | null {
  return b.text === null || b.binary ? b.text : masker.maskBody(b.text, type, !b.truncated)
}

/**
 * Bodies shorter than this are escaped as strings: the bytes' way costs a few more steps per line,
 * which only pay for themselves on longer bodies (a 41-byte body took 1 µs more, 6 KiB 15 µs less).
 */
const KEEP_BYTES_FROM = 512

/** A body in the request line: its JSON (a string), or the bytes of clean ASCII text, written as a JSON string as they are. */
function bodyJson(b: BodyText, type: string | undefined, o: RecordOptions): string | Uint8Array {
  if (b.bytes && b.bytes.length >= KEEP_BYTES_FROM && o.masker.isCleanAscii(b.bytes)) return b.bytes
  return JSON.stringify(maskedBody(b, type, o.masker))
}

/**
 * The full audit record, masked, as one JSON line (serialised once, here), the bodies last. A line
 * that keeps a body's bytes is a view of a buffer this module reuses: valid until the next line is
 * built (the record builder hands it to the journal, which copies it at once).
 */
export function requestLine(x: Exchange, o: RecordOptions, userId: string | null): string | Buffer {
  const q = x.url.indexOf('?')
  const path = q < 0 ? x.url : x.url.slice(0, q)
  const reqBody = bodyText(x.requestBody, x.requestHeaders as Record<string, string>)
  const resBody = bodyText(x.responseBody, x.responseHeaders)
  const reqType = x.requestHeaders['content-type']
  const resType = x.responseHeaders['content-type'] as string | undefined

  const flags: string[] = []
  if (x.durationMs > o.slowMs) flags.push('slow')
  flags.push(...suspiciousFlags(x.url, reqBody.binary ? null : reqBody.text, x.requestHeaders['user-agent']))
  if (x.upstreamError) flags.push('upstream_error')
  if (x.flags) flags.push(...x.flags)

  const hookReq = {method: x.method, url: x.url, headers: x.requestHeaders}
  const hookRes = {statusCode: x.status, headers: x.responseHeaders}
  const extraHook = safeHook(o.hooks.extra && (() => o.hooks.extra!(hookReq, hookRes)))
  const extra = (extraHook && typeof extraHook === 'object' ? extraHook : null) ?? extraFromHeader(x.auditExtra)

  let record: Record<string, unknown> = {
    log_type: 'request',
    id: x.id,
    created_at: new Date(x.start).toISOString(),
    method: x.method,
    scheme: x.scheme,
    host: x.host,
    path: o.masker.maskValues(path),
    query: q < 0 ? {} : o.masker.query(x.url.slice(q + 1)),
    request_headers: o.masker.headers(x.requestHeaders),
    request_body_size: x.requestBody?.size ?? 0,
    request_body_truncated: reqBody.truncated,
    status_code: x.status,
    response_headers: o.masker.headers(x.responseHeaders),
    response_body_size: x.responseBody?.size ?? x.responseSize,
    response_body_truncated: resBody.truncated,
    duration_ms: Math.round(x.durationMs * 1000) / 1000,
    ip: x.ip,
    user_id: userId,
    user_agent: x.requestHeaders['user-agent'] ?? null,
    session_id: null,
    trace_id: traceId(x.requestHeaders.traceparent),
    request_id: (x.requestHeaders['x-request-id'] as string | undefined)?.slice(0, 200) ?? null,
    flags,
    error: x.error ?? null,
    extra: extra ? (o.masker.maskJson(extra) as Record<string, unknown>) : null,
    instance: o.instance,
  }
  if (o.hooks.mask) {
    // the config's mask() sees the whole record, bodies as text
    record.request_body = maskedBody(reqBody, reqType, o.masker)
    record.response_body = maskedBody(resBody, resType, o.masker)
    record = safeHook(() => o.hooks.mask!(record) ?? record) ?? record
    return JSON.stringify(record)
  }
  return withBodies(JSON.stringify(record), bodyJson(reqBody, reqType, o), bodyJson(resBody, resType, o))
}

/**
 * Reused for every line whose worst case fits (bodies of the default 8 KiB bound need about 100 KiB;
 * pages past what lines use are never touched). A longer line is sized exactly and gets its own
 * buffer: the worst case of a 1 MiB body (AUDIT_LOGS_SAVE_FULL_BODY) would be 6 MiB. (A buffer that
 * grew on demand, in a `let`, cost the clean POST exchange 3–4 µs more.)
 */
const lineBuffer = Buffer.allocUnsafeSlow(256 * 1024)

/** The record's JSON (`head`) with the two bodies added last: a string when both are JSON already, else bytes in lineBuffer. */
function withBodies(head: string, request: string | Uint8Array, response: string | Uint8Array): string | Buffer {
  const open = `${head.slice(0, -1)},"request_body":`
  if (typeof request === 'string' && typeof response === 'string') return `${open}${request},"response_body":${response}}`
  const parts = [open, request, ',"response_body":', response, '}']
  let strings = 0 // exact
  let worst = 0 // of the bodies' bytes
  for (const p of parts) {
    if (typeof p === 'string') strings += Buffer.byteLength(p)
    else worst += jsonStringBound(p.length)
  }
  const buf =
    strings + worst <= lineBuffer.length
      ? lineBuffer
      : Buffer.allocUnsafe(parts.reduce((n: number, p) => n + (typeof p === 'string' ? 0 : jsonStringLength(p)), strings))
  let at = 0
  for (const p of parts) at = typeof p === 'string' ? at + buf.write(p, at) : writeJsonString(p, buf, at)
  return buf.subarray(0, at)
}
