import {MASK} from '../capture/masking.js'
import type {LogType, Row} from '../stores/source.js'
import {cellText} from '../render/records.js'

/**
 * What the detail page shows of one record, as plain strings: the template
 * escapes every one of them, so nothing here is HTML, and nothing of the
 * record ever becomes markup, an attribute name or a URL.
 */
export type Part = {text: string; masked: boolean}
export type HeaderLine = {name: string; value: Part[]}
export type BodyView = {label: string; kind: string; text: string; masked: boolean; note?: string}
export type DetailView = {
  logType: LogType
  id: string
  title: string
  summary: Array<{label: string; value: string; mono?: boolean}>
  flags: string[]
  requestHeaders: HeaderLine[]
  responseHeaders: HeaderLine[]
  bodies: BodyView[]
  other: Array<{label: string; text: string}>
  timing?: {ms: number; slowMs: number; width: number; slowAt: number; marks: Array<{at: number; label: string}>}
  curl?: string
}

/** A value split around the masked marker, so the page can show each `****` as masked rather than as text someone typed. */
export function withMasks(text: string): Part[] {
  const parts: Part[] = []
  const pieces = text.split(MASK)
  pieces.forEach((p, i) => {
    if (p) parts.push({text: p, masked: false})
    if (i < pieces.length - 1) parts.push({text: MASK, masked: true})
  })
  return parts.length ? parts : [{text: '', masked: false}]
}

function headerLines(value: unknown): HeaderLine[] {
  if (!value || typeof value !== 'object') return []
  const out: HeaderLine[] = []
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    for (const one of Array.isArray(v) ? v : [v]) out.push({name, value: withMasks(String(one))})
  }
  return out
}

function headerValue(headers: unknown, name: string): string | undefined {
  if (!headers || typeof headers !== 'object') return undefined
  for (const [k, v] of Object.entries(headers as Record<string, unknown>))
    if (k.toLowerCase() === name) return String(Array.isArray(v) ? v[0] : v)
  return undefined
}

/** The marker capture/body.ts keeps for a body it did not keep as text (binary, or an encoding it could not decode). */
const BODY_MARKER = /^\[(binary|\w+ body),/

/** A body pretty-printed by its type: JSON indented, a form as name = value lines, anything else as it is. */
export function prettyBody(text: string, contentType: string | undefined): {kind: string; text: string} {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase()
  if (BODY_MARKER.test(text)) return {kind: 'binary', text}
  if (type.endsWith('json') || type.endsWith('+json') || /^\s*[[{]/.test(text)) {
    try {
      return {kind: 'json', text: JSON.stringify(JSON.parse(text), null, 2)}
    } catch {
      // truncated or not JSON after all: as it is
    }
  }
  if (type === 'application/x-www-form-urlencoded') {
    try {
      return {kind: 'form', text: [...new URLSearchParams(text)].map(([k, v]) => `${k} = ${v}`).join('\n')}
    } catch {
      // as it is
    }
  }
  return {kind: type || 'text', text}
}

const sizeText = (n: unknown) => (typeof n === 'number' ? `${n.toLocaleString('en')} bytes` : 'size unknown')

function body(label: string, r: Row, prefix: 'request' | 'response', headers: unknown): BodyView | undefined {
  const text = r[`${prefix}_body`]
  const size = r[`${prefix}_body_size`]
  if (text === null || text === undefined || text === '') {
    return typeof size === 'number' && size > 0
      ? {label, kind: 'none', text: '', masked: false, note: `${sizeText(size)}, not kept`}
      : undefined
  }
  const shown = typeof text === 'string' ? text : JSON.stringify(text)
  const pretty = prettyBody(shown, headerValue(headers, 'content-type'))
  const truncated = r[`${prefix}_body_truncated`] === true
  const note = truncated ? `truncated: ${Buffer.byteLength(shown).toLocaleString('en')} of ${sizeText(size)} kept` : sizeText(size)
  return {label, kind: pretty.kind, text: pretty.text, masked: shown.includes(MASK), note}
}

/** A shell word in single quotes: nothing in it is expanded. */
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`
const NOT_FOR_CURL = new Set(['host', 'content-length', 'connection', 'transfer-encoding', 'accept-encoding', 'keep-alive'])

/** The request as a curl command, with what was masked left masked (`****`): a copy never holds a secret. */
export function curlOf(r: Row): string | undefined {
  if (typeof r.method !== 'string' || typeof r.path !== 'string') return undefined
  const query = r.query && typeof r.query === 'object' ? new URLSearchParams() : undefined
  if (query)
    for (const [k, v] of Object.entries(r.query as Record<string, unknown>))
      for (const one of Array.isArray(v) ? v : [v]) query.append(k, String(one))
  const qs = query?.toString()
  const url = `${r.scheme ?? 'http'}://${r.host ?? 'localhost'}${r.path}${qs ? `?${qs}` : ''}`
  const lines = [`curl -X ${shellQuote(r.method)} ${shellQuote(url)}`]
  for (const h of headerLines(r.request_headers))
    if (!NOT_FOR_CURL.has(h.name.toLowerCase())) lines.push(`  -H ${shellQuote(`${h.name}: ${h.value.map((p) => p.text).join('')}`)}`)
  if (typeof r.request_body === 'string' && r.request_body && !BODY_MARKER.test(r.request_body))
    lines.push(`  --data-raw ${shellQuote(r.request_body)}`)
  return lines.join(' \\\n')
}

const SUMMARY: Record<LogType, string[]> = {
  request: [
    'created_at',
    'method',
    'status_code',
    'duration_ms',
    'user_id',
    'ip',
    'user_agent',
    'session_id',
    'request_id',
    'trace_id',
    'instance',
    'error',
  ],
  access: [
    'created_at',
    'method',
    'url',
    'status_code',
    'duration_ms',
    'response_size',
    'user_id',
    'ip',
    'user_agent',
    'referer',
    'instance',
  ],
  event: [
    'created_at',
    'action',
    'actor_id',
    'actor_name',
    'target_type',
    'target_id',
    'severity',
    'reason',
    'request_id',
    'ip',
    'instance',
  ],
  outbound: [
    'created_at',
    'method',
    'status_code',
    'duration_ms',
    'outcome',
    'tunnel',
    'bytes_sent',
    'bytes_received',
    'instance',
    'error',
  ],
  app: ['created_at', 'stream', 'level', 'truncated', 'instance'],
}
const LABELS: Record<string, string> = {
  created_at: 'time (UTC)',
  status_code: 'status',
  duration_ms: 'duration',
  user_id: 'user',
  actor_id: 'actor',
  actor_name: 'actor name',
  target_type: 'target type',
  target_id: 'target id',
  user_agent: 'user agent',
}

/** The detail page's model of a record; `events` are the ones linked to it (same request id). */
export function detailView(logType: LogType, r: Row, options: {slowMs: number; events: Row[]}): DetailView {
  const summary: DetailView['summary'] = []
  for (const c of SUMMARY[logType]) {
    const v = r[c]
    if (v === null || v === undefined || v === '') continue
    summary.push({label: LABELS[c] ?? c.replace(/_/g, ' '), value: cellText(c, v), mono: c === 'request_id' || c === 'trace_id'})
  }
  const target = logType === 'request' || logType === 'outbound' ? `${r.scheme ?? 'http'}://${r.host ?? ''}${r.path ?? ''}` : undefined
  const title =
    logType === 'request' || logType === 'outbound'
      ? `${r.method ?? ''} ${target}`
      : logType === 'access'
        ? `${r.method ?? ''} ${r.url ?? ''}`
        : logType === 'event'
          ? `${r.action ?? ''} ${r.target_type ?? ''}${r.target_id ? `:${r.target_id}` : ''}`
          : String(r.message ?? '').slice(0, 200)
  const bodies: BodyView[] = []
  for (const b of [body('request body', r, 'request', r.request_headers), body('response body', r, 'response', r.response_headers)])
    if (b) bodies.push(b)
  if (logType === 'app' && typeof r.message === 'string')
    bodies.push({label: 'message', ...prettyBody(r.message, undefined), masked: r.message.includes(MASK)})
  const other: DetailView['other'] = []
  if (r.query && typeof r.query === 'object' && Object.keys(r.query).length)
    other.push({label: 'query', text: JSON.stringify(r.query, null, 2)})
  if (r.changes && typeof r.changes === 'object') other.push({label: 'changes (before → after)', text: JSON.stringify(r.changes, null, 2)})
  if (r.extra && typeof r.extra === 'object' && Object.keys(r.extra).length)
    other.push({label: 'extra', text: JSON.stringify(r.extra, null, 2)})
  const ms = typeof r.duration_ms === 'number' ? r.duration_ms : undefined
  let timing: DetailView['timing']
  if (ms !== undefined) {
    // the request's span against the slow threshold, and its events placed at their times within it
    const scale = Math.max(ms, options.slowMs) * 1.1
    const start = new Date(r.created_at as string).getTime()
    const marks = options.events
      .map((e) => ({at: new Date(e.created_at as string).getTime() - start, label: `${e.action ?? ''}`}))
      .filter((m) => m.at >= 0 && m.at <= scale)
      .map((m) => ({at: (m.at / scale) * 100, label: m.label}))
    timing = {ms, slowMs: options.slowMs, width: (ms / scale) * 100, slowAt: (options.slowMs / scale) * 100, marks}
  }
  return {
    logType,
    id: String(r.id),
    title,
    summary,
    flags: Array.isArray(r.flags) ? r.flags.map(String) : [],
    requestHeaders: headerLines(r.request_headers),
    responseHeaders: headerLines(r.response_headers),
    bodies,
    other,
    timing,
    curl: logType === 'request' || logType === 'outbound' ? curlOf(r) : undefined,
  }
}
