import net from 'node:net'
import {usageError} from '../errors.js'
import {type FilterKey, LOG_TYPE, LOG_TYPES, LOG_TYPE_NAMES, type LogType, logTypeOf} from '../stores/log-types.js'

/**
 * The filter language of query, export, stats and tail (DESIGN.md, Filters),
 * parsed once into a typed value. Pure: no database, no clock but `now`.
 */
export type StatusTerm = {op: 'eq' | 'lt' | 'le' | 'gt' | 'ge'; value: number} | {op: 'range'; from: number; to: number}
export type Filter = {
  logType: LogType
  status?: {any: StatusTerm[]; not: number[]}
  methods?: string[]
  path?: {regex: string; prefix: string}
  user?: string
  ip?: {address: string; bits: number; family: 4 | 6}
  since?: Date
  until?: Date
  minDurationMs?: number
  maxDurationMs?: number
  flag?: {name: string; prefix: boolean}
  search?: string
  /** the request id: a request record and the events linked to it */
  requestId?: string
  // events
  actions?: string[]
  actor?: string
  target?: {type: string; id?: string}
  severities?: string[]
}

export type FilterInput = Partial<
  Record<
    | 'status'
    | 'method'
    | 'path'
    | 'user'
    | 'ip'
    | 'since'
    | 'until'
    | 'minDuration'
    | 'maxDuration'
    | 'flag'
    | 'search'
    | 'logType'
    | 'requestId'
    | 'action'
    | 'actor'
    | 'target'
    | 'severity',
    string
  >
>

const bad = (flag: string, value: string, accepted: string) => usageError(`--${flag} "${value}" is not understood. Accepted: ${accepted}`)

const STATUS_FORMS = '500, >=400, <300, 4xx, 400-499, !=200, or a list such as 401,403'
function statusCode(flag: string, text: string, whole: string): number {
  if (!/^\d{3}$/.test(text)) throw bad(flag, whole, STATUS_FORMS)
  return Number(text)
}

export function parseStatus(text: string): NonNullable<Filter['status']> {
  const out: NonNullable<Filter['status']> = {any: [], not: []}
  for (const raw of text.split(',').map((t) => t.trim())) {
    let m: RegExpExecArray | null
    if (!raw) throw bad('status', text, STATUS_FORMS)
    else if ((m = /^!=\s*(\S+)$/.exec(raw))) out.not.push(statusCode('status', m[1], text))
    else if ((m = /^(>=|<=|>|<|=)?\s*(\d{3})$/.exec(raw))) {
      const op = ({'>=': 'ge', '<=': 'le', '>': 'gt', '<': 'lt', '=': 'eq'} as const)[(m[1] ?? '=') as '=']
      out.any.push({op, value: Number(m[2])})
    } else if ((m = /^([1-5])xx$/i.exec(raw))) out.any.push({op: 'range', from: Number(m[1]) * 100, to: Number(m[1]) * 100 + 99})
    else if ((m = /^(\d{3})\s*-\s*(\d{3})$/.exec(raw)) && Number(m[1]) <= Number(m[2]))
      out.any.push({op: 'range', from: Number(m[1]), to: Number(m[2])})
    else throw bad('status', text, STATUS_FORMS)
  }
  return out
}

export function parseMethods(text: string): string[] {
  const methods = text.split(',').map((m) => m.trim().toUpperCase())
  if (methods.some((m) => !/^[A-Z]{1,20}$/.test(m))) throw bad('method', text, 'HTTP methods, e.g. GET or GET,POST')
  return methods
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** A glob (`*` one segment, `**` any depth, `?` one character) or `~REGEX`, as an anchored regex plus the literal prefix an index can use. */
export function parsePath(text: string): NonNullable<Filter['path']> {
  const PATH_FORMS = 'a path (/api/orders), a glob (/api/*, /api/**) or ~REGEX (~^/api/v[12]/)'
  if (text.startsWith('~')) {
    const regex = text.slice(1)
    try {
      new RegExp(regex)
    } catch (error) {
      throw bad('path', text, `${PATH_FORMS}; the regex is invalid: ${(error as Error).message}`)
    }
    if (!regex) throw bad('path', text, PATH_FORMS)
    return {regex, prefix: ''}
  }
  if (!text.startsWith('/')) throw bad('path', text, PATH_FORMS)
  let regex = '^'
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '*' && text[i + 1] === '*') {
      regex += '.*'
      i++
    } else if (c === '*') regex += '[^/]*'
    else if (c === '?') regex += '[^/]'
    else regex += escapeRegex(c)
  }
  const wild = text.search(/[*?]/)
  return {regex: regex + '$', prefix: wild < 0 ? text : text.slice(0, wild)}
}

export function parseIp(text: string): NonNullable<Filter['ip']> {
  const [address, bitsText] = text.split('/')
  const family = net.isIPv4(address) ? 4 : net.isIPv6(address) ? 6 : 0
  const max = family === 4 ? 32 : 128
  const bits = bitsText === undefined ? max : Number(bitsText)
  if (!family || !/^\d*$/.test(bitsText ?? '') || !(bits >= 0 && bits <= max))
    throw bad('ip', text, 'an address (10.1.2.3, ::1) or a CIDR range (10.0.0.0/8)')
  return {address, bits, family}
}

const UNITS_MS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000}

export function parseTime(flag: string, text: string, now: Date): Date {
  const rel = /^(\d+)(m|h|d|w)$/.exec(text)
  if (rel) return new Date(now.getTime() - Number(rel[1]) * UNITS_MS[rel[2]])
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) {
    const iso =
      text.length === 10 ? `${text}T00:00:00Z` : /Z|[+-]\d{2}:?\d{2}$/.test(text) ? text.replace(' ', 'T') : `${text.replace(' ', 'T')}Z`
    const d = new Date(iso)
    if (!Number.isNaN(d.getTime())) return d
  }
  throw bad(flag, text, 'a span back from now (15m, 24h, 7d, 2w) or an ISO date or time in UTC (2026-11-01, 2026-11-01T08:00:00Z)')
}

export function parseDuration(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text)
  if (!m) throw bad(flag, text, 'a duration such as 250ms, 2s or 1.5m')
  return Number(m[1]) * UNITS_MS[m[2]]
}

const FLAGS = ['slow', 'suspicious', 'upstream_error']
export function parseFlag(text: string): NonNullable<Filter['flag']> {
  if (FLAGS.includes(text)) return {name: text, prefix: text === 'suspicious'}
  if (/^suspicious:(sqli|xss|traversal|scanner|bruteforce)$/.test(text)) return {name: text, prefix: false}
  throw bad('flag', text, `${FLAGS.join(', ')}, or suspicious:sqli|xss|traversal|scanner|bruteforce`)
}

/** An event's action: an upper-case word (CREATE, LOGIN_FAILED, or the app's own). */
export const ACTION = /^[A-Z][A-Z0-9_]{0,63}$/
export const SEVERITIES = ['INFO', 'WARNING', 'ERROR', 'SECURITY', 'PERFORMANCE'] as const

export function parseActions(text: string): string[] {
  const actions = text.split(',').map((a) => a.trim().toUpperCase())
  if (actions.some((a) => !ACTION.test(a))) throw bad('action', text, 'upper-case words such as UPDATE or LOGIN,LOGIN_FAILED')
  return actions
}

export function parseSeverities(text: string): string[] {
  const list = text.split(',').map((a) => a.trim().toUpperCase())
  if (list.some((a) => !(SEVERITIES as readonly string[]).includes(a))) throw bad('severity', text, `${SEVERITIES.join(', ')} (or a list)`)
  return list
}

/** TYPE or TYPE:ID (the id is everything after the first colon). */
export function parseTarget(text: string): NonNullable<Filter['target']> {
  const colon = text.indexOf(':')
  const type = colon < 0 ? text : text.slice(0, colon)
  const id = colon < 0 ? undefined : text.slice(colon + 1)
  if (!type || id === '') throw bad('target', text, 'TYPE or TYPE:ID, e.g. shop.Order or shop.Order:17')
  return id === undefined ? {type} : {type, id}
}

/** a, b and c */
const words = (list: string[]) => (list.length < 2 ? list.join('') : `${list.slice(0, -1).join(', ')} and ${list.at(-1)}`)

/** Each filter's flag, for messages. */
export const FILTER_FLAGS: Record<FilterKey, string> = {
  status: 'status',
  methods: 'method',
  path: 'path',
  user: 'user',
  ip: 'ip',
  since: 'since',
  until: 'until',
  minDurationMs: 'min-duration',
  maxDurationMs: 'max-duration',
  flag: 'flag',
  search: 'search',
  requestId: 'request-id',
  actions: 'action',
  actor: 'actor',
  target: 'target',
  severities: 'severity',
}

/** Parses every given expression; an expression that is wrong fails with the accepted forms. */
export function parseFilter(input: FilterInput, now = new Date()): Filter {
  const logType = logTypeOf(input.logType ?? 'request')
  if (!logType) throw bad('log-type', input.logType!, `${LOG_TYPE_NAMES.join(', ')} (gunicorn is an alias of access)`)
  const f: Filter = {logType}
  if (input.status !== undefined) f.status = parseStatus(input.status)
  if (input.method !== undefined) f.methods = parseMethods(input.method)
  if (input.path !== undefined) f.path = parsePath(input.path)
  if (input.user !== undefined) f.user = input.user
  if (input.ip !== undefined) f.ip = parseIp(input.ip)
  if (input.since !== undefined) f.since = parseTime('since', input.since, now)
  if (input.until !== undefined) f.until = parseTime('until', input.until, now)
  if (input.minDuration !== undefined) f.minDurationMs = parseDuration('min-duration', input.minDuration)
  if (input.maxDuration !== undefined) f.maxDurationMs = parseDuration('max-duration', input.maxDuration)
  if (input.flag !== undefined) f.flag = parseFlag(input.flag)
  if (input.search !== undefined) {
    if (!input.search) throw bad('search', input.search, 'some text to find in request or response bodies')
    f.search = input.search
  }
  if (input.requestId !== undefined) {
    if (!input.requestId || input.requestId.length > 200)
      throw bad('request-id', input.requestId, 'a request id (X-Request-Id), at most 200 characters')
    f.requestId = input.requestId
  }
  if (input.action !== undefined) f.actions = parseActions(input.action)
  if (input.actor !== undefined) f.actor = input.actor
  if (input.target !== undefined) f.target = parseTarget(input.target)
  if (input.severity !== undefined) f.severities = parseSeverities(input.severity)
  // a filter the type cannot answer is refused, naming the types it applies to and what this one takes
  const allowed = new Set<string>(LOG_TYPE[logType].filters)
  const given = (Object.keys(FILTER_FLAGS) as FilterKey[]).filter((k) => f[k] !== undefined && !allowed.has(k))
  if (given.length) {
    const flags = given.map((k) => `--${FILTER_FLAGS[k]}`)
    const where = LOG_TYPES.filter((t) => given.every((k) => LOG_TYPE[t].filters.includes(k)))
    throw usageError(
      `${flags.join(', ')} ${flags.length === 1 ? 'applies' : 'apply'} to ${where.length ? words(where) : 'other'} logs; ` +
        `${logType} logs take ${LOG_TYPE[logType].filters.map((k) => `--${FILTER_FLAGS[k]}`).join(', ')}`,
    )
  }
  if (f.since && f.until && f.since >= f.until)
    throw usageError(`--since (${f.since.toISOString()}) must be before --until (${f.until.toISOString()})`)
  return f
}
