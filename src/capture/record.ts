import type {IncomingHttpHeaders} from 'node:http'
import {v7 as uuidv7} from 'uuid'
import {type BodyTap, bodyText} from './body.js'
import {suspiciousFlags} from './detect.js'
import {MAX_USER_LENGTH, extraFromHeader, traceId, userFromHeaders} from './identity.js'
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

/** The full audit record, masked, as one JSON line (serialised once, here). */
export function requestLine(x: Exchange, o: RecordOptions, userId: string | null): string {
  const q = x.url.indexOf('?')
  const path = q < 0 ? x.url : x.url.slice(0, q)
  const reqBody = bodyText(x.requestBody, x.requestHeaders as Record<string, string>)
  const resBody = bodyText(x.responseBody, x.responseHeaders)
  const reqType = x.requestHeaders['content-type']
  const resType = x.responseHeaders['content-type'] as string | undefined
  const requestText = reqBody.text === null || reqBody.binary ? reqBody.text : o.masker.maskBody(reqBody.text, reqType, !reqBody.truncated)
  const responseText = resBody.text === null || resBody.binary ? resBody.text : o.masker.maskBody(resBody.text, resType, !resBody.truncated)

  const flags: string[] = []
  if (x.durationMs > o.slowMs) flags.push('slow')
  flags.push(...suspiciousFlags(x.url, reqBody.binary ? null : reqBody.text, x.requestHeaders['user-agent']))
  if (x.upstreamError) flags.push('upstream_error')

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
    request_body: requestText,
    request_body_size: x.requestBody?.size ?? 0,
    request_body_truncated: reqBody.truncated,
    status_code: x.status,
    response_headers: o.masker.headers(x.responseHeaders),
    response_body: responseText,
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
  if (o.hooks.mask) record = safeHook(() => o.hooks.mask!(record) ?? record) ?? record
  return JSON.stringify(record)
}
