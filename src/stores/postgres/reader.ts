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
