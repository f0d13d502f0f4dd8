/**
 * The record types, in one place: what each is called in every store (table,
 * file, collection setting), its fields, and which filters apply to it. The
 * journal, the sinks, the filters and the read side take a type and look its
 * facts up here, so a new type is one entry, not a branch in each of them.
 */
export const LOG_TYPES = ['request', 'access', 'event'] as const
export type LogType = (typeof LOG_TYPES)[number]

/** Which part of the filter language a type answers: the HTTP one (status, method, path, duration) or the events' one. */
export type FilterFamily = 'http' | 'event'

export type LogTypeSpec = {
  /** PostgreSQL table */
  table: string
  /** the current JSONL file in the log directory (rotated ones add `.N.gz`) */
  file: string
  /** fields in the order every store and output shows them (DESIGN.md, data model) */
  columns: string[]
  filters: FilterFamily
  /** the field `--path` matches: an access line's url may go on with `?query` */
  pathField?: 'path' | 'url'
  /** flags and bodies (`--flag`, `--search`) */
  bodies: boolean
  /** the fields every record of the type has (the MongoDB validator's `required`) */
  required: readonly string[]
}

export const REQUEST_COLUMNS = [
  'id',
  'created_at',
  'method',
  'scheme',
  'host',
  'path',
  'query',
  'request_headers',
  'request_body',
  'request_body_size',
  'request_body_truncated',
  'status_code',
  'response_headers',
  'response_body',
  'response_body_size',
  'response_body_truncated',
  'duration_ms',
  'ip',
  'user_id',
  'user_agent',
  'session_id',
  'trace_id',
  'request_id',
  'flags',
  'error',
  'extra',
  'instance',
]
export const ACCESS_COLUMNS = [
  'id',
  'created_at',
  'method',
  'url',
  'status_code',
  'duration_ms',
  'response_size',
  'ip',
  'user_id',
  'user_agent',
  'referer',
  'instance',
]
export const EVENT_COLUMNS = [
  'id',
  'created_at',
  'action',
  'actor_id',
  'actor_name',
  'target_type',
  'target_id',
  'changes',
  'reason',
  'severity',
  'request_id',
  'ip',
  'instance',
  'extra',
]

export const LOG_TYPE: Record<LogType, LogTypeSpec> = {
  request: {
    table: 'request_logs',
    file: 'requests.jsonl',
    columns: REQUEST_COLUMNS,
    filters: 'http',
    pathField: 'path',
    bodies: true,
    required: ['_id', 'created_at', 'method', 'path'],
  },
  access: {
    table: 'access_logs',
    file: 'access.jsonl',
    columns: ACCESS_COLUMNS,
    filters: 'http',
    pathField: 'url',
    bodies: false,
    required: ['_id', 'created_at', 'method', 'url'],
  },
  event: {
    table: 'event_logs',
    file: 'events.jsonl',
    columns: EVENT_COLUMNS,
    filters: 'event',
    bodies: false,
    required: ['_id', 'created_at', 'action'],
  },
}

export const columnsOf = (logType: LogType): string[] => LOG_TYPE[logType].columns

/** The names a user may give `--log-type` (gunicorn is the seeds' name of access). */
export const LOG_TYPE_NAMES = [...LOG_TYPES, 'gunicorn'] as const
export const logTypeOf = (name: string): LogType | undefined =>
  name === 'gunicorn' ? 'access' : (LOG_TYPES as readonly string[]).includes(name) ? (name as LogType) : undefined

/**
 * Journal lines start with their type (every producer puts log_type first),
 * so routing a line needs no parse; a line without one is a request record
 * (the oldest journals' lines), as it always was.
 */
const PREFIXES = LOG_TYPES.map((t) => [t, Buffer.from(`{"log_type":"${t}"`)] as const)
export function lineType(line: Buffer): LogType {
  for (const [t, prefix] of PREFIXES)
    if (line.length >= prefix.length && line[13] === prefix[13] && prefix.equals(line.subarray(0, prefix.length))) return t
  return 'request'
}

/** Lines grouped by type, each group in journal order. */
export function byType(lines: Buffer[]): Array<[LogType, Buffer[]]> {
  const out = new Map<LogType, Buffer[]>()
  for (const line of lines) {
    const t = lineType(line)
    const group = out.get(t)
    if (group) group.push(line)
    else out.set(t, [line])
  }
  return [...out]
}
