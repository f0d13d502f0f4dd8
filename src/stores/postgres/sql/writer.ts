import type {LogType} from '../../log-types.js'
import {insertReturning} from './integrity.js'
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
 * With `chained`, returns each inserted row's id, time and hash for the integrity chain (integrity.ts).
 */
export const insertFromStaging = (table: string, chained?: LogType): Query => ({
  text: `INSERT INTO ${quoteIdent(table)} AS stored
    SELECT r.* FROM ${STAGING} s CROSS JOIN LATERAL json_populate_record(NULL::${quoteIdent(table)}, s.doc::json) r
    ON CONFLICT DO NOTHING${chained ? ' ' + insertReturning(chained, 'stored') : ''}`,
})
