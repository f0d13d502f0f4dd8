import type {Filter} from '../../filters/parse.js'
import {toSql} from '../../filters/sql.js'
import {quoteIdent} from '../../util/parse.js'
import type {Db} from './db.js'
import {LOG_TABLES} from './periods.js'

export const REQUEST_COLUMNS = ['id', 'created_at', 'method', 'scheme', 'host', 'path', 'query', 'request_headers', 'request_body', 'request_body_size', 'request_body_truncated', 'status_code', 'response_headers', 'response_body', 'response_body_size', 'response_body_truncated', 'duration_ms', 'ip', 'user_id', 'user_agent', 'session_id', 'trace_id', 'request_id', 'flags', 'error', 'extra', 'instance']
export const ACCESS_COLUMNS = ['id', 'created_at', 'method', 'url', 'status_code', 'duration_ms', 'response_size', 'ip', 'user_id', 'user_agent', 'referer', 'instance']
export const columnsOf = (logType: Filter['logType']) => (logType === 'access' ? ACCESS_COLUMNS : REQUEST_COLUMNS)

/** Newest first, at most `limit`; the time bounds let PostgreSQL prune partitions. */
export function selectRecords(f: Filter, columns: string[], limit: number) {
  const where = toSql(f)
  const cols = columns.map((c) => (c === 'ip' ? 'host(ip) AS ip' : c === 'id' ? 'id::text AS id' : quoteIdent(c))).join(', ')
  return {
    text: `SELECT ${cols} FROM ${quoteIdent(LOG_TABLES[f.logType])} WHERE ${where.text} ORDER BY created_at DESC LIMIT $${where.values.length + 1}`,
    values: [...where.values, limit],
  }
}

/** The same rows, each rendered by PostgreSQL as one JSON object (row_to_json), so Node only copies text. */
export function selectJson(f: Filter, columns: string[], limit: number) {
  const inner = selectRecords(f, columns, limit)
  return {text: `SELECT row_to_json(r)::text AS j FROM (${inner.text}) r`, values: inner.values}
}

/** A column as CSV wants it: ISO times, true/false, JSON for arrays and objects, plain addresses. */
const asText = (c: string) =>
  c === 'created_at'
    ? `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at`
    : c === 'flags'
      ? 'array_to_json(flags)::text AS flags'
      : c === 'ip'
        ? 'host(ip) AS ip'
        : `${quoteIdent(c)}::text AS ${quoteIdent(c)}`

export async function queryRecords(db: Db, f: Filter, options: {columns?: string[]; limit: number}): Promise<Record<string, unknown>[]> {
  const q = selectRecords(f, options.columns ?? columnsOf(f.logType), options.limit)
  return (await db.query(q)).rows
}

/** One record by id, from either table. */
export async function getRecord(db: Db, id: string): Promise<{logType: Filter['logType']; record: Record<string, unknown>} | undefined> {
  for (const logType of ['request', 'access'] as const) {
    const cols = columnsOf(logType).map((c) => (c === 'ip' ? 'host(ip) AS ip' : c === 'id' ? 'id::text AS id' : quoteIdent(c))).join(', ')
    const {rows} = await db.query({text: `SELECT ${cols} FROM ${quoteIdent(LOG_TABLES[logType])} WHERE id = $1::uuid`, values: [id]})
    if (rows[0]) return {logType, record: rows[0]}
  }
  return undefined
}

const sqlType = (v: unknown): string =>
  v instanceof Date ? 'timestamptz' : typeof v === 'number' ? 'float8' : Array.isArray(v) ? (typeof v[0] === 'number' ? 'int[]' : 'text[]') : 'text'

/**
 * COPY takes no bind parameters, and user text never goes into SQL text: the
 * filter's values go into a temporary table through a parameterised INSERT,
 * and the COPY query reads them from there. Returns the COPY statement:
 * CSV with a header, or COPY's text format for ndjsonLines() to turn into JSON.
 */
export async function prepareCopyExport(db: Db, f: Filter, columns: string[], format: 'csv' | 'ndjson'): Promise<string> {
  const where = toSql(f)
  await db.query('DROP TABLE IF EXISTS pg_temp.audit_export_params')
  const defs = where.values.map((v, i) => `p${i + 1} ${sqlType(v)}`)
  await db.query(`CREATE TEMP TABLE audit_export_params (${defs.length ? defs.join(', ') : 'unused int'})`)
  if (where.values.length) await db.query({text: `INSERT INTO audit_export_params VALUES (${where.values.map((_, i) => `$${i + 1}`).join(', ')})`, values: where.values})
  const condition = where.text.replace(/\$(\d+)/g, (_m, k: string) => `(SELECT p${k} FROM audit_export_params)`)
  const table = quoteIdent(LOG_TABLES[f.logType])
  if (format === 'ndjson') {
    // COPY's text format (PostgreSQL's fastest output); Node turns each row into the JSON object row_to_json would give
    const cols = columns.map((c) => (c === 'ip' ? 'host(ip) AS ip' : c === 'flags' ? 'array_to_json(flags) AS flags' : quoteIdent(c))).join(', ')
    return `COPY (SELECT ${cols} FROM ${table} WHERE ${condition} ORDER BY created_at DESC) TO STDOUT`
  }
  return `COPY (SELECT ${columns.map(asText).join(', ')} FROM ${table} WHERE ${condition} ORDER BY created_at DESC) TO STDOUT WITH (FORMAT csv, HEADER)`
}
