import net from 'node:net'
import {LOG_TYPE, type LogType} from '../stores/log-types.js'
import {RECORD_ID} from '../stores/source.js'

/**
 * What a record must be for every store to keep it, checked before a batch is written: the column types of
 * migrations/ (PostgreSQL would refuse the whole batch for one bad value; MongoDB would keep it, and the stores would
 * differ). `run` only ever writes records that pass; an import takes files from anywhere, so each line is checked and
 * one that fails is refused with the field and what is accepted.
 */
type Kind = 'uuid' | 'time' | 'text' | 'json' | 'int' | 'bigint' | 'number' | 'inet' | 'bool' | 'texts'

const INT_MAX = 2 ** 31 - 1
/** ISO 8601 with its offset, the form `run` writes (as the event schema takes it). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/
const isObject = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v)

/**
 * Each kind's test and how it is named. Plain functions rather than a zod schema: zod took about 100 µs a record, more
 * than reading and writing it, and an import of GBs checks millions of them.
 */
const kinds: Record<Kind, [(v: unknown) => boolean, string]> = {
  uuid: [(v) => typeof v === 'string' && RECORD_ID.test(v), 'a UUID'],
  time: [
    (v) => {
      if (typeof v !== 'string' || !ISO_TIME.test(v)) return false
      const year = new Date(v).getUTCFullYear()
      return year >= 1970 && year <= 9999 // NaN (a 13th month) fails too
    },
    'an ISO 8601 time with its offset between 1970 and 9999, e.g. 2026-12-06T10:00:00.000Z',
  ],
  text: [(v) => typeof v === 'string', 'a string'],
  json: [isObject, 'a JSON object'],
  int: [(v) => Number.isInteger(v) && (v as number) >= -INT_MAX - 1 && (v as number) <= INT_MAX, 'a whole number (32 bits)'],
  bigint: [Number.isSafeInteger, 'a whole number'],
  number: [(v) => typeof v === 'number', 'a number'],
  inet: [(v) => typeof v === 'string' && net.isIP(v) !== 0, 'an IPv4 or IPv6 address'],
  bool: [(v) => typeof v === 'boolean', 'true or false'],
  texts: [(v) => Array.isArray(v) && v.every((x) => typeof x === 'string'), 'an array of strings'],
}

const HTTP = {
  method: 'text',
  scheme: 'text',
  host: 'text',
  path: 'text',
  query: 'json',
  request_headers: 'json',
  request_body: 'text',
  request_body_size: 'bigint',
  request_body_truncated: 'bool',
  status_code: 'int',
  response_headers: 'json',
  response_body: 'text',
  response_body_size: 'bigint',
  response_body_truncated: 'bool',
  duration_ms: 'number',
} as const

/** Each type's columns and their kinds, as migrations/ makes them (id and created_at are every type's). */
const COLUMN_KINDS: Record<LogType, Record<string, Kind>> = {
  request: {
    ...HTTP,
    ip: 'inet',
    user_id: 'text',
    user_agent: 'text',
    session_id: 'text',
    trace_id: 'text',
    request_id: 'text',
    flags: 'texts',
    error: 'text',
    extra: 'json',
    instance: 'text',
  },
  access: {
    method: 'text',
    url: 'text',
    status_code: 'int',
    duration_ms: 'number',
    response_size: 'bigint',
    ip: 'inet',
    user_id: 'text',
    user_agent: 'text',
    referer: 'text',
    instance: 'text',
  },
  event: {
    action: 'text',
    actor_id: 'text',
    actor_name: 'text',
    target_type: 'text',
    target_id: 'text',
    changes: 'json',
    reason: 'text',
    severity: 'text',
    request_id: 'text',
    ip: 'inet',
    instance: 'text',
    extra: 'json',
  },
  outbound: {
    ...HTTP,
    port: 'int',
    tunnel: 'bool',
    bytes_sent: 'bigint',
    bytes_received: 'bigint',
    outcome: 'text',
    error: 'text',
    instance: 'text',
  },
  app: {stream: 'text', level: 'text', message: 'text', truncated: 'bool', instance: 'text'},
}

/** The fields a record must have: the NOT NULL columns (the MongoDB validator's `required`, _id being id). */
const required = (t: LogType) => new Set(LOG_TYPE[t].required.map((f) => (f === '_id' ? 'id' : f)))

const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`)

type Spec = {fields: Array<[string, Kind, boolean]>; known: Set<string>}
const specs = new Map<LogType, Spec>()
function specOf(t: LogType): Spec {
  let spec = specs.get(t)
  if (!spec) {
    const must = required(t)
    const fields = Object.entries({id: 'uuid', created_at: 'time', ...COLUMN_KINDS[t]} as Record<string, Kind>)
    spec = {fields: fields.map(([f, k]) => [f, k, must.has(f)]), known: new Set([...fields.map(([f]) => f), 'log_type'])}
    specs.set(t, spec)
  }
  return spec
}

/** Checks one parsed line as a record of `logType`: undefined when every store can keep it, else why not (fields named, no values shown). */
export function recordProblem(logType: LogType, value: unknown): string | undefined {
  if (!isObject(value)) return `a JSON object (a ${logType} record)`
  const record = value as Record<string, unknown>
  const {fields, known} = specOf(logType)
  const problems: string[] = []
  for (const [field, kind, must] of fields) {
    const v = record[field]
    if (v === undefined || v === null) {
      if (must) problems.push(`${field}: ${v === undefined ? 'missing' : `${kinds[kind][1]}, not null`}`)
      continue
    }
    const [ok, what] = kinds[kind]
    // a string of the wrong form (an id that is no UUID) is said without "not a string"
    if (!ok(v)) problems.push(`${field}: ${what}${must ? '' : ' or null'}${typeof v === 'string' ? '' : `, not ${kindOf(v)}`}`)
  }
  if (record.log_type !== undefined && record.log_type !== logType) problems.push(`log_type: the file's own type, ${logType}`)
  const unknown = Object.keys(record).filter((k) => !known.has(k))
  if (unknown.length)
    problems.push(
      `unknown field(s) ${unknown.slice(0, 10).join(', ')}; a ${logType} record has ${[...known].filter((k) => k !== 'log_type').join(', ')}`,
    )
  return problems.length ? problems.slice(0, 5).join('; ') : undefined
}
