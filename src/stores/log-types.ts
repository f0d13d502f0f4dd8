/**
 * The record types, in one place: what each is called in every store (table,
 * file, collection setting), its fields, and which filters apply to it. The
 * journal, the sinks, the filters and the read side take a type and look its
 * facts up here, so a new type is one entry, not a branch in each of them.
 */
export const LOG_TYPES = ['request', 'access', 'event', 'outbound', 'app'] as const
export type LogType = (typeof LOG_TYPES)[number]

/** The filters (keys of filters/parse.ts's Filter) a type may answer. */
export type FilterKey =
  | 'status'
  | 'methods'
  | 'path'
  | 'user'
  | 'ip'
  | 'since'
  | 'until'
  | 'minDurationMs'
  | 'maxDurationMs'
  | 'flag'
  | 'search'
  | 'requestId'
  | 'actions'
  | 'actor'
  | 'target'
  | 'severities'

const TIME: FilterKey[] = ['since', 'until']
const HTTP: FilterKey[] = ['status', 'methods', 'path', 'user', 'ip', ...TIME, 'minDurationMs', 'maxDurationMs']

export type LogTypeSpec = {
  /** PostgreSQL table */
  table: string
  /** the current JSONL file in the log directory (rotated ones add `.N.gz`) */
  file: string
  /** fields in the order every store and output shows them (DESIGN.md, data model) */
  columns: string[]
  /** the filters it answers; any other is refused with a message that says which apply */
  filters: FilterKey[]
  /** the field `--path` matches: an access line's url may go on with `?query` */
  pathField?: 'path' | 'url'
  /** the text fields `--search` looks in */
  searchFields: string[]
  /** the fields every record of the type has (the MongoDB validator's `required`) */
  required: readonly string[]
  /** numeric fields the MongoDB validator checks (a number or null) */
  numbers: string[]
  /** the MongoDB indexes besides time, each with time after it, as the PostgreSQL migrations make them */
  indexes: Array<Record<string, 1 | -1>>
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

export const OUTBOUND_COLUMNS = [
  'id',
  'created_at',
  'method',
  'scheme',
  'host',
  'port',
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
  'tunnel',
  'bytes_sent',
  'bytes_received',
  'outcome',
  'error',
  'instance',
]
export const APP_COLUMNS = ['id', 'created_at', 'stream', 'level', 'message', 'truncated', 'instance']

export const LOG_TYPE: Record<LogType, LogTypeSpec> = {
  request: {
    table: 'request_logs',
    file: 'requests.jsonl',
    columns: REQUEST_COLUMNS,
    filters: [...HTTP, 'flag', 'search', 'requestId'],
    pathField: 'path',
    searchFields: ['request_body', 'response_body'],
    required: ['_id', 'created_at', 'method', 'path'],
    numbers: ['status_code', 'duration_ms'],
    indexes: [{status_code: 1}, {user_id: 1}, {path: 1}, {_ip: 1}],
  },
  access: {
    table: 'access_logs',
    file: 'access.jsonl',
    columns: ACCESS_COLUMNS,
    filters: HTTP,
    pathField: 'url',
    searchFields: [],
    required: ['_id', 'created_at', 'method', 'url'],
    numbers: ['status_code', 'duration_ms'],
    indexes: [{status_code: 1}, {user_id: 1}, {url: 1}, {_ip: 1}],
  },
  event: {
    table: 'event_logs',
    file: 'events.jsonl',
    columns: EVENT_COLUMNS,
    filters: ['actions', 'actor', 'target', 'severities', 'requestId', 'ip', ...TIME],
    searchFields: [],
    required: ['_id', 'created_at', 'action'],
    numbers: [],
    indexes: [{action: 1}, {actor_id: 1}, {target_type: 1, target_id: 1}, {_ip: 1}],
  },
  outbound: {
    table: 'outbound_logs',
    file: 'outbound.jsonl',
    columns: OUTBOUND_COLUMNS,
    filters: ['status', 'methods', 'path', ...TIME, 'minDurationMs', 'maxDurationMs', 'search'],
    pathField: 'path',
    searchFields: ['request_body', 'response_body'],
    required: ['_id', 'created_at', 'method', 'host'],
    numbers: ['status_code', 'duration_ms'],
    indexes: [{host: 1}, {status_code: 1}],
  },
  app: {
    table: 'app_logs',
    file: 'app.jsonl',
    columns: APP_COLUMNS,
    filters: [...TIME, 'search'],
    searchFields: ['message'],
    required: ['_id', 'created_at', 'message'],
    numbers: [],
    indexes: [{level: 1}],
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
