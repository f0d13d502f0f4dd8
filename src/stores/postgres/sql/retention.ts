import {quoteIdent} from './quote.js'
import type {Query} from './query.js'

export const countWhole = (partition: string): Query => ({
  text: `SELECT count(*) AS rows, pg_total_relation_size(to_regclass($1)) AS bytes FROM ${quoteIdent(partition)}`,
  values: [partition],
})

/** Rows older than the cutoff and the bytes they take (row data, not index share). */
export const countOlder = (partition: string, cutoff: Date): Query => ({
  text: `SELECT count(*) AS rows, coalesce(sum(pg_column_size(t.*)), 0)::bigint AS bytes
    FROM ${quoteIdent(partition)} t WHERE created_at < $1`,
  values: [cutoff],
})

export const dropPartition = (partition: string): Query => ({text: `DROP TABLE ${quoteIdent(partition)}`})

/** One short batch: the ctid sub-select bounds the work and the locks of each transaction. */
export const deleteBatch = (partition: string, cutoff: Date, limit: number): Query => ({
  text: `DELETE FROM ${quoteIdent(partition)} WHERE ctid = ANY (ARRAY(
      SELECT ctid FROM ${quoteIdent(partition)} WHERE created_at < $1 LIMIT $2))`,
  values: [cutoff, limit],
})

export const setLockTimeout = (ms: number): Query => ({text: `SET LOCAL lock_timeout = ${Math.trunc(ms)}`})
