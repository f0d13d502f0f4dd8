import type {LogType} from '../../log-types.js'
import {LOG_TYPE} from '../../log-types.js'
import {rowHash, utcText} from './integrity.js'
import {quoteIdent} from './quote.js'
import type {Query} from './query.js'

export const STAGING = 'audit_logs_staging'

/**
 * The session's staging table. Its documents are stored uncompressed
 * (STORAGE EXTERNAL): they live for one transaction, and compressing a
 * record's bodies there, then again in the log table, cost PostgreSQL about a
 * third of its time per record with 6 KiB of bodies.
 */
export const createStaging = (): Query => ({
  text: `CREATE TEMP TABLE IF NOT EXISTS ${STAGING} (doc text NOT NULL) ON COMMIT DELETE ROWS;
    ALTER TABLE ${STAGING} ALTER COLUMN doc SET STORAGE EXTERNAL`,
})

/**
 * COPY of whole JSON lines into one text column. CSV with quote and
 * delimiter bytes that JSON text never contains raw (\x01, \x02) means
 * PostgreSQL does the parsing and Node escapes nothing.
 */
export const copyStaging = (): string => `COPY ${STAGING} (doc) FROM STDIN WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')`

/**
 * Idempotent on (id, created_at): a batch written twice leaves one copy of each row.
 * json (not jsonb) because each document is parsed once, straight into columns.
 */
export const insertFromStaging = (table: string): Query => ({
  text: `INSERT INTO ${quoteIdent(table)}
    SELECT r.* FROM ${STAGING} s CROSS JOIN LATERAL json_populate_record(NULL::${quoteIdent(table)}, s.doc::json) r
    ON CONFLICT DO NOTHING`,
})

/**
 * insertFromStaging for the integrity chain (integrity.ts): the same rows, parsed once, inserted, and each
 * row's id, time and canonical hash returned with the number inserted. The hash is of the typed row as it
 * is stored (json_populate_record gives the table's own types), computed from the source so that the
 * writer needs no SELECT on the table: RETURNING 1 needs none, RETURNING a column would.
 */
export const insertFromStagingChained = (logType: LogType): Query => {
  const table = quoteIdent(LOG_TYPE[logType].table)
  return {
    text: `WITH src AS MATERIALIZED (
        SELECT r.* FROM ${STAGING} s CROSS JOIN LATERAL json_populate_record(NULL::${table}, s.doc::json) r),
      ins AS (INSERT INTO ${table} SELECT * FROM src ON CONFLICT DO NOTHING RETURNING 1)
      SELECT (SELECT count(*) FROM ins)::int AS inserted, src.id::text AS id, ${utcText('src.created_at')} AS at, ${rowHash(logType, 'src')} AS h
      FROM src`,
  }
}
