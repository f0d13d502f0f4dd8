import path from 'node:path'
import {stringify} from 'yaml'
import {usageError} from '../../errors.js'
import {LOG_TYPE, LOG_TYPES, type LogType} from '../../stores/log-types.js'
import type {ScaffoldFile} from './files.js'

export type VectorOptions = {
  /** the JSONL directory as Vector's host sees it (absolute) */
  logDir: string
  database: string
  /** days kept per type: a TTL on each table, as cleanup keeps PostgreSQL */
  retentionDays: Record<LogType, number>
}

/** JSON objects in the records (headers, query, extra, changes): kept as their JSON text, read with JSONExtract*. */
const JSON_TEXT = new Set(['query', 'request_headers', 'response_headers', 'extra', 'changes'])

/** A column's ClickHouse type by its name (the same name is the same kind of value in every type), before Nullable. */
function baseType(column: string): string {
  if (column === 'id') return 'UUID'
  if (column === 'created_at') return "DateTime64(3, 'UTC')"
  if (column === 'flags') return 'Array(String)'
  if (column === 'status_code' || column === 'port') return 'Int32'
  if (column === 'duration_ms') return 'Float64'
  if (/_size$|^bytes_/.test(column)) return 'Int64'
  if (/_truncated$|^truncated$|^tunnel$/.test(column)) return 'Bool'
  if (['method', 'scheme', 'stream', 'level', 'severity', 'outcome', 'instance'].includes(column)) return 'LowCardinality(String)'
  return 'String'
}

/** Each type's columns with their ClickHouse types: the PostgreSQL columns (log-types.ts), NOT NULL where every record has the field. */
export function clickhouseColumns(logType: LogType): Array<{name: string; type: string}> {
  const spec = LOG_TYPE[logType]
  const required = new Set(['id', ...spec.required])
  return spec.columns.map((name) => {
    const base = baseType(name)
    if (required.has(name) || name === 'flags') return {name, type: base}
    // LowCardinality wraps Nullable, not the other way round
    const m = /^LowCardinality\((.*)\)$/.exec(base)
    return {name, type: m ? `LowCardinality(Nullable(${m[1]}))` : `Nullable(${base})`}
  })
}

/** The sorting key: the time range every query has, then the field each type is most often filtered by. */
const ORDER_BY: Record<LogType, string> = {
  request: 'toStartOfHour(created_at), path, created_at',
  access: 'toStartOfHour(created_at), url, created_at',
  event: 'toStartOfDay(created_at), action, created_at',
  outbound: 'toStartOfHour(created_at), host, created_at',
  app: 'toStartOfHour(created_at), created_at',
}

const ident = (name: string) => {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) throw usageError(`--database must be letters, digits and _ ; got "${name}"`)
  return name
}

/** clickhouse.sql (pure): one MergeTree table per log type, partitioned by month. */
export function renderClickhouseDdl(o: VectorOptions): string {
  const db = ident(o.database)
  const out = [
    '-- audit-logs records in ClickHouse, shipped from the JSONL files by Vector (written by `audit-logs scaffold vector`).',
    "-- JSON objects (headers, query, extra, changes) are their JSON text: JSONExtractString(request_headers, 'user-agent').",
    '-- Vector delivers at least once: after a crash a few rows may come twice (SELECT ... LIMIT 1 BY id).',
    `CREATE DATABASE IF NOT EXISTS ${db};`,
    '',
  ]
  for (const t of LOG_TYPES) {
    const cols = clickhouseColumns(t)
    const width = Math.max(...cols.map((c) => c.name.length))
    out.push(
      `CREATE TABLE IF NOT EXISTS ${db}.${LOG_TYPE[t].table}`,
      '(',
      cols.map((c) => `    ${c.name.padEnd(width)} ${c.type}`).join(',\n'),
      ')',
      'ENGINE = MergeTree',
      'PARTITION BY toYYYYMM(created_at)',
      `ORDER BY (${ORDER_BY[t]})`,
      `TTL toDateTime(created_at) + INTERVAL ${o.retentionDays[t]} DAY DELETE;`,
      '',
    )
  }
  return out.join('\n')
}

/** The fields of a type's records that are JSON objects, which its remap turns into text. */
export const jsonFields = (t: LogType) => LOG_TYPE[t].columns.filter((c) => JSON_TEXT.has(c))

/** vector.yaml (pure): the files (rotated ones included), parsed, routed by log_type, one ClickHouse sink per table. */
export function renderVectorConfig(o: VectorOptions): string {
  if (!path.isAbsolute(o.logDir)) throw usageError(`--log-dir must be an absolute path, as Vector's host sees it; got "${o.logDir}"`)
  const db = ident(o.database)
  const route: Record<string, string> = {}
  const transforms: Record<string, unknown> = {
    audit_logs_parse: {
      type: 'remap',
      inputs: ['audit_logs_files'],
      // the record is the event: the file source's own fields (file, host, message) go
      source: '. = parse_json!(string!(.message))\n',
      drop_on_error: true,
    },
  }
  const sinks: Record<string, unknown> = {}
  for (const t of LOG_TYPES) {
    // lines of the oldest journals had no log_type: they are requests
    route[t] = t === 'request' ? '.log_type == "request" || .log_type == null' : `.log_type == "${t}"`
    const table = LOG_TYPE[t].table
    transforms[`${table}_rows`] = {
      type: 'remap',
      inputs: [`audit_logs_by_type.${t}`],
      source: ['del(.log_type)', ...jsonFields(t).map((f) => `if .${f} != null { .${f} = encode_json(.${f}) }`)].join('\n') + '\n',
    }
    sinks[`clickhouse_${table}`] = {
      type: 'clickhouse',
      inputs: [`${table}_rows`],
      endpoint: '${CLICKHOUSE_ENDPOINT:-http://127.0.0.1:8123}',
      auth: {strategy: 'basic', user: '${CLICKHOUSE_USER:-default}', password: '${CLICKHOUSE_PASSWORD:-}'},
      database: db,
      table,
      // created_at is ISO 8601 with a Z
      date_time_best_effort: true,
      // a field a later version adds is left out until the table has its column (ALTER TABLE ... ADD COLUMN)
      skip_unknown_fields: true,
      batch: {max_events: 10000, timeout_secs: 5},
      // a ClickHouse outage is waited out on disk; past the bound Vector stops reading the files (they keep growing)
      buffer: {type: 'disk', max_size: 1073741824, when_full: 'block'},
      acknowledgements: {enabled: true},
    }
  }
  transforms.audit_logs_by_type = {type: 'route', inputs: ['audit_logs_parse'], route}
  const doc = {
    data_dir: '/var/lib/vector',
    sources: {
      audit_logs_files: {
        type: 'file',
        // each type's file and its rotated backups (NAME.N.gz): Vector reads gzip itself, and the checksum of the first
        // line (decompressed) tells a backup from a new file, so a rotated file is not read twice
        include: LOG_TYPES.map((t) => path.posix.join(o.logDir, `${LOG_TYPE[t].file}*`)),
        read_from: 'beginning',
        fingerprint: {strategy: 'checksum', lines: 1},
        // a request line holds both bodies (up to 1 MiB each with saveFullBody), escaped
        max_line_bytes: 16_777_216,
      },
    },
    transforms,
    sinks,
  }
  return (
    '# Vector: the audit-logs JSONL files into ClickHouse (written by `audit-logs scaffold vector`).\n' +
    '# Create the tables first: clickhouse-client --multiquery < clickhouse.sql\n' +
    '# Set CLICKHOUSE_ENDPOINT, CLICKHOUSE_USER, CLICKHOUSE_PASSWORD in the environment; check: vector validate vector.yaml\n' +
    stringify(doc, {lineWidth: 0, version: '1.1'})
  )
}

export const vectorFiles = (o: VectorOptions): ScaffoldFile[] => [
  {name: 'vector.yaml', text: renderVectorConfig(o)},
  {name: 'clickhouse.sql', text: renderClickhouseDdl(o)},
]
