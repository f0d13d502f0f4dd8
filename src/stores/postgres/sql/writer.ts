import type {LogType} from '../../log-types.js'
import {LOG_TYPE} from '../../log-types.js'
import {rowHash, utcText} from './integrity.js'
import {quoteIdent} from './quote.js'
import type {Query} from './query.js'

/**
 * The rows of a batch: $1 is one JSON array of the batch's records (the journal's lines joined with commas,
 * each line one JSON object, as the journal and import give them). One statement parses it once, straight
 * into the table's columns (json, not jsonb). Against a staging table filled by COPY and read row by row
 * with json_populate_record, PostgreSQL spent 7–13 µs less on a GET request record, 29–48 µs less on an
 * access record and 71–101 µs less on a POST record with 6 KiB of bodies (bench/chain-sql.ts, chained or
 * not), and there is no temporary table to keep per connection.
 */
const fromArray = (table: string) => `json_populate_recordset(NULL::${quoteIdent(table)}, $1::json)`

/** Idempotent on (id, created_at): a batch written twice leaves one copy of each row. */
export const insertFromArray = (table: string, records: Buffer): Query => ({
  text: `INSERT INTO ${quoteIdent(table)} SELECT * FROM ${fromArray(table)} ON CONFLICT DO NOTHING`,
  values: [records],
})

/**
 * insertFromArray for the integrity chain (integrity.ts): the same rows, parsed once, inserted, and each
 * row's id, time and canonical hash returned with the number inserted. The hash is of the typed row as it
 * is stored (json_populate_recordset gives the table's own types), computed from the source so that the
 * writer needs no SELECT on the table: RETURNING 1 needs none, RETURNING a column would.
 */
export const insertFromArrayChained = (logType: LogType, records: Buffer): Query => {
  const table = LOG_TYPE[logType].table
  return {
    text: `WITH src AS MATERIALIZED (SELECT * FROM ${fromArray(table)}),
      ins AS (INSERT INTO ${quoteIdent(table)} SELECT * FROM src ON CONFLICT DO NOTHING RETURNING 1)
      SELECT (SELECT count(*) FROM ins)::int AS inserted, src.id::text AS id, ${utcText('src.created_at')} AS at, ${rowHash(logType, 'src')} AS h
      FROM src`,
    values: [records],
  }
}
