import type {Filter} from '../../../filters/parse.js'
import {toSql} from '../../../filters/sql.js'
import {CSV_FORMULA_START} from '../../../render/csv.js'
import {type Cursor, type LogType, type Order, positionOf} from '../../source.js'
import {LOG_TABLES} from '../periods.js'
import type {Query} from './query.js'
import {quoteIdent} from './quote.js'

/** The select list of a log type's columns, as JSON and the other stores give them (text ids, plain addresses). */
const selectList = (columns: string[]) =>
  columns.map((c) => (c === 'ip' ? 'host(ip) AS ip' : c === 'id' ? 'id::text AS id' : quoteIdent(c))).join(', ')

/**
 * The order of every read: time, then id. Named through the table: an unqualified `id` would be the
 * select list's `id::text`, a text sort PostgreSQL cannot take from the index (it sorted every page again).
 */
const tableOrder = (table: string, dir: 'ASC' | 'DESC') => `${table}.created_at ${dir}, ${table}.id ${dir}`

/**
 * At most `limit`, newest first unless asked otherwise, beyond `after` when given; the time bounds let
 * PostgreSQL prune partitions. The cursor is a bound on created_at alone, which the created_at index serves
 * (no index leads with (created_at, id), so a row comparison would not be), and an OR that decides within its millisecond.
 */
export function selectRecords(f: Filter, columns: string[], limit: number, order: Order = 'newest', after?: Cursor): Required<Query> {
  const where = toSql(f)
  const values = [...where.values]
  const p = (v: unknown) => `$${values.push(v)}`
  const [dir, beyond] = order === 'newest' ? (['DESC', '<'] as const) : (['ASC', '>'] as const)
  let condition = where.text
  if (after) {
    const {at, id} = positionOf(after)
    const a = p(at)
    condition += ` AND created_at ${beyond}= ${a} AND (created_at ${beyond} ${a} OR id ${beyond} ${p(id)}::uuid)`
  }
  const table = quoteIdent(LOG_TABLES[f.logType])
  return {
    text: `SELECT ${selectList(columns)} FROM ${table} WHERE ${condition} ORDER BY ${tableOrder(table, dir)} LIMIT ${p(limit)}`,
    values,
  }
}

/** The same rows, each rendered by PostgreSQL as one JSON object (row_to_json), so Node only copies text. */
export function selectJson(f: Filter, columns: string[], limit: number): Required<Query> {
  const inner = selectRecords(f, columns, limit)
  return {text: `SELECT row_to_json(r)::text AS j FROM (${inner.text}) r`, values: inner.values}
}

/** One record of a log type by id. */
export const selectById = (logType: LogType, columns: string[], id: string): Query => ({
  text: `SELECT ${selectList(columns)} FROM ${quoteIdent(LOG_TABLES[logType])} WHERE id = $1::uuid`,
  values: [id],
})

/** Columns that hold numbers, times or booleans: never a formula, so never prefixed in CSV. */
const NOT_TEXT = new Set([
  'created_at',
  'status_code',
  'duration_ms',
  'request_body_size',
  'response_body_size',
  'response_size',
  'request_body_truncated',
  'response_body_truncated',
])

/**
 * A column as CSV wants it: ISO times, true/false, JSON for arrays and objects,
 * plain addresses; a text that a spreadsheet would run as a formula gets the
 * quote prefix render/csv.ts gives the files' rows (CSV injection).
 */
const asText = (c: string) => {
  if (c === 'created_at') return `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at`
  const text = c === 'flags' ? 'array_to_json(flags)::text' : c === 'ip' ? 'host(ip)' : `${quoteIdent(c)}::text`
  if (NOT_TEXT.has(c)) return `${text} AS ${quoteIdent(c)}`
  return `CASE WHEN ${text} ~ '${CSV_FORMULA_START.source}' THEN '''' || ${text} ELSE ${text} END AS ${quoteIdent(c)}`
}

const sqlType = (v: unknown): string =>
  v instanceof Date
    ? 'timestamptz'
    : typeof v === 'number'
      ? 'float8'
      : Array.isArray(v)
        ? typeof v[0] === 'number'
          ? 'int[]'
          : 'text[]'
        : 'text'

/**
 * COPY takes no bind parameters, and user text never goes into SQL text: the
 * filter's values go into a temporary table through a parameterised INSERT
 * (`setup`, run in order), and the COPY statement reads them from there:
 * CSV with a header, or COPY's text format for copyTextToNdjson() to turn into JSON.
 */
export function copyExport(f: Filter, columns: string[], format: 'csv' | 'ndjson'): {setup: Query[]; copy: string} {
  const where = toSql(f)
  const defs = where.values.map((v, i) => `p${i + 1} ${sqlType(v)}`)
  const setup: Query[] = [
    {text: 'DROP TABLE IF EXISTS pg_temp.audit_export_params'},
    {text: `CREATE TEMP TABLE audit_export_params (${defs.length ? defs.join(', ') : 'unused int'})`},
  ]
  if (where.values.length)
    setup.push({
      text: `INSERT INTO audit_export_params VALUES (${where.values.map((_, i) => `$${i + 1}`).join(', ')})`,
      values: where.values,
    })
  const condition = where.text.replace(/\$(\d+)/g, (_m, k: string) => `(SELECT p${k} FROM audit_export_params)`)
  const table = quoteIdent(LOG_TABLES[f.logType])
  if (format === 'ndjson') {
    // COPY's text format (PostgreSQL's fastest output); Node turns each row into the JSON object row_to_json would give
    const cols = columns
      .map((c) => (c === 'ip' ? 'host(ip) AS ip' : c === 'flags' ? 'array_to_json(flags) AS flags' : quoteIdent(c)))
      .join(', ')
    return {setup, copy: `COPY (SELECT ${cols} FROM ${table} WHERE ${condition} ORDER BY ${tableOrder(table, 'DESC')}) TO STDOUT`}
  }
  return {
    setup,
    copy: `COPY (SELECT ${columns.map(asText).join(', ')} FROM ${table} WHERE ${condition} ORDER BY ${tableOrder(table, 'DESC')}) TO STDOUT WITH (FORMAT csv, HEADER)`,
  }
}
