import net from 'node:net'
import {z} from 'zod'
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
const kinds: Record<Kind, [z.ZodType, string]> = {
  uuid: [z.string().regex(RECORD_ID), 'a UUID'],
  time: [
    z.iso.datetime({offset: true}).refine((v) => {
      const year = new Date(v).getUTCFullYear()
      return year >= 1970 && year <= 9999
    }),
    'an ISO 8601 time with its offset between 1970 and 9999, e.g. 2026-12-06T10:00:00.000Z',
  ],
  text: [z.string(), 'a string'],
  json: [z.record(z.string(), z.unknown()), 'a JSON object'],
  int: [
    z
      .number()
      .int()
      .min(-INT_MAX - 1)
      .max(INT_MAX),
    'a whole number (32 bits)',
  ],
  bigint: [z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER), 'a whole number'],
  number: [z.number(), 'a number'],
  inet: [z.string().refine((v) => net.isIP(v) !== 0), 'an IPv4 or IPv6 address'],
  bool: [z.boolean(), 'true or false'],
  texts: [z.array(z.string()), 'an array of strings'],
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

function schemaOf(t: LogType) {
  const must = required(t)
  const shape: Record<string, z.ZodType> = {}
  const fields: Record<string, Kind> = {id: 'uuid', created_at: 'time', ...COLUMN_KINDS[t]}
  for (const [field, kind] of Object.entries(fields)) {
    const [schema, what] = kinds[kind]
    // a string of the wrong form (an id that is no UUID) is said without "not a string"
    const message = (issue: {input?: unknown}) =>
      issue.input === undefined
        ? 'missing'
        : `${what}${must.has(field) ? '' : ' or null'}${typeof issue.input === 'string' ? '' : `, not ${kindOf(issue.input)}`}`
    shape[field] = must.has(field) ? withError(schema, message) : withError(schema, message).nullish()
  }
  shape.log_type = z.literal(t, {error: `the file's own type, ${t}`}).optional()
  const accepted = Object.keys(fields).join(', ')
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown field(s) ${issue.keys.join(', ')}; a ${t} record has ${accepted}`
        : `a JSON object (a ${t} record)`,
  })
}

const withError = (schema: z.ZodType, message: (issue: {input?: unknown}) => string) =>
  z.any().superRefine((v, ctx) => {
    if (!schema.safeParse(v).success) ctx.addIssue({code: 'custom', message: message({input: v})})
  })

const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`)

const schemas = new Map<LogType, ReturnType<typeof schemaOf>>()

/** Checks one parsed line as a record of `logType`: undefined when every store can keep it, else why not (fields named, no values shown). */
export function recordProblem(logType: LogType, value: unknown): string | undefined {
  let schema = schemas.get(logType)
  if (!schema) schemas.set(logType, (schema = schemaOf(logType)))
  const parsed = schema.safeParse(value)
  if (parsed.success) return undefined
  return parsed.error.issues
    .slice(0, 5)
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ')
}
