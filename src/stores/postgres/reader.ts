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

/**
 * The same rows, each already rendered by PostgreSQL: `json` gives one JSON
 * object per row (row_to_json), `csv` gives every column as text (ISO times,
 * true/false, JSON for arrays and objects), so Node only copies bytes.
 */
export function selectRendered(f: Filter, columns: string[], limit: number, as: 'json' | 'csv') {
  const inner = selectRecords(f, columns, limit)
  if (as === 'json') return {text: `SELECT row_to_json(r)::text AS j FROM (${inner.text}) r`, values: inner.values}
  const timestamp = `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
  const cast = (c: string) =>
    c === 'created_at' ? `${timestamp} AS created_at` : c === 'flags' ? 'array_to_json(flags)::text AS flags' : c === 'ip' ? 'host(ip) AS ip' : `${quoteIdent(c)}::text AS ${quoteIdent(c)}`
  const where = toSql(f)
  return {
    text: `SELECT ${columns.map(cast).join(', ')} FROM ${quoteIdent(LOG_TABLES[f.logType])} WHERE ${where.text} ORDER BY created_at DESC LIMIT $${where.values.length + 1}`,
    values: [...where.values, limit],
  }
}

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
