import {LOG_TYPE, type LogType} from '../../log-types.js'
import {quoteIdent} from './quote.js'
import type {Query} from './query.js'

/** A timestamptz as fixed-width UTC text with microseconds, whatever the session's TimeZone and DateStyle. */
export const utcText = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

/** The columns whose text canonical text 2 frames by its length instead of escaping it into the jsonb array: the bodies. */
const FRAMED_COLUMNS = new Set(['request_body', 'response_body'])
/** Those of `logType`'s columns, in its order (none: its two canonical texts are the same). */
const framedColumns = (logType: LogType) => LOG_TYPE[logType].columns.filter((c) => FRAMED_COLUMNS.has(c))

/**
 * The canonical text of a stored row of `logType` (see integrity.ts), in one of two forms. Both start with a jsonb array
 * of the type's columns (LOG_TYPE columns, in that order), created_at as utcText and duration_ms as the hex of its 8 IEEE
 * bytes (float output follows extra_float_digits), every other column as jsonb renders it (its keys sorted, numbers
 * normalised: the same text for the same stored value). Functions, types and operators are pg_catalog's, so one of the
 * same name in another schema cannot stand in for them.
 * - 1 (records chained before canonical text 2): every column in the array.
 * - 2 (what the writer hashes now): the bodies (request_body, response_body) are left out of the array and follow it,
 *   each as its length in bytes (`-` for NULL), `:` and its text as stored. Escaping a JSON body into a jsonb string
 *   (a backslash before each of its quotes) was most of what hashing a POST cost PostgreSQL: with the capture
 *   benchmark's 6 KiB of JSON bodies the chain added 58 µs to a request row's insert, now 32 (bench/RESULTS.md). For a type
 *   without bodies the two are the same text.
 * Text 2 is one injective encoding of the row, and never a text 1: a text 1 is one JSON array, while a text 2 of a type
 * with bodies has more after its array. So verify, which takes a record's hash in either form (recordAnomalies), cannot
 * be made to accept another row than the one hashed.
 */
export function canonicalRow(logType: LogType, alias: string, form: 1 | 2 = 2): string {
  const a = quoteIdent(alias)
  const columns = LOG_TYPE[logType].columns
  const framed = form === 2 ? framedColumns(logType) : []
  const parts = columns
    .filter((c) => !framed.includes(c))
    .map((c) => {
      const col = `${a}.${quoteIdent(c)}`
      if (c === 'created_at') return `pg_catalog.to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
      if (c === 'duration_ms') return `pg_catalog.encode(pg_catalog.float8send(${col}), 'hex')`
      return col
    })
  const array = `pg_catalog.jsonb_build_array(${parts.join(', ')})::pg_catalog.text`
  if (framed.length === 0) return array
  // the length is of the very text that follows it, whatever the column's type (an owner who changed it to bytea, and
  // its output to escape, must not make the two differ)
  const frames = framed.flatMap((c) => {
    const text = `(${a}.${quoteIdent(c)})::pg_catalog.text`
    return [`COALESCE(pg_catalog.octet_length(${text})::pg_catalog.text, '-')`, `':'`, text]
  })
  return `pg_catalog.concat(${[array, ...frames].join(', ')})`
}

/** SHA-256 of the canonical text (form 2 unless said), computed by PostgreSQL over the row as stored. */
export const rowHash = (logType: LogType, alias: string, form: 1 | 2 = 2) =>
  `pg_catalog.sha256(pg_catalog.convert_to(${canonicalRow(logType, alias, form)}, 'UTF8'))`

/** `a` equals `b` by pg_catalog's bytea operator (not one a schema on the search path could put first); NULL: not equal. */
const sameBytes = (a: string, b: string) => `COALESCE(${a} OPERATOR(pg_catalog.=) ${b}, false)`

/** Whether the row `alias` does not hash to `stored` in either canonical form (form 2 tried first: what the writer makes). */
const rowHashDiffers = (logType: LogType, alias: string, stored: string) =>
  framedColumns(logType).length > 0
    ? `CASE WHEN ${sameBytes(rowHash(logType, alias, 2), stored)} THEN false ELSE NOT ${sameBytes(rowHash(logType, alias, 1), stored)} END`
    : `NOT ${sameBytes(rowHash(logType, alias, 2), stored)}`

export const chainHead = (instance: string): Query => ({
  text: `SELECT seq, hash, total FROM integrity_batches WHERE instance = $1 ORDER BY seq DESC LIMIT 1`,
  values: [instance],
})

export type BatchRow = {
  instance: string
  seq: number
  logType: LogType
  ids: string[]
  ats: string[]
  recordHashes: Buffer
  recordsHash: Buffer
  prevHash: Buffer
  hash: Buffer
  count: number
  total: number
  min: string
  max: string
}

export const insertBatch = (b: BatchRow): Query => ({
  text: `INSERT INTO integrity_batches
    (instance, seq, log_type, ids, created_ats, record_hashes, records_hash, prev_hash, hash, count, total, min_created_at, max_created_at)
    VALUES ($1, $2, $3, $4::uuid[], $5::timestamptz[], $6, $7, $8, $9, $10, $11, $12, $13)`,
  values: [b.instance, b.seq, b.logType, b.ids, b.ats, b.recordHashes, b.recordsHash, b.prevHash, b.hash, b.count, b.total, b.min, b.max],
})

export const insertDigest = (instance: string, seq: number, body: string, signature: string | null): Query => ({
  text: 'INSERT INTO integrity_digests (instance, seq, body, signature) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
  values: [instance, seq, body, signature],
})

export const insertRetention = (logType: LogType, cutoff: Date, how: string): Query => ({
  text: `INSERT INTO integrity_retention (log_type, cutoff, how) SELECT $1, $2, $3 WHERE to_regclass('integrity_retention') IS NOT NULL`,
  values: [logType, cutoff, how],
})

/** The signed statement (integrity.ts signRetention) of a cutoff recorded before its records went, once they are gone (migration 0008). */
export const signRetentionRow = (logType: LogType, cutoff: Date, signed: {statement: string; signature: string}): Query => ({
  text: `UPDATE integrity_retention SET statement = $3, signature = $4 WHERE log_type = $1 AND cutoff = $2 AND statement IS NULL`,
  values: [logType, cutoff, signed.statement, signed.signature],
})

/** Every instance with batches as `i`, by a loose scan of the primary key (one index probe per instance, not a scan of the table). */
const INSTANCES = `WITH RECURSIVE i AS (
      SELECT min(instance) AS instance FROM integrity_batches
      UNION ALL
      SELECT (SELECT min(b.instance) FROM integrity_batches b WHERE b.instance > i.instance) FROM i WHERE i.instance IS NOT NULL)`

/** Each instance's chain head (its last seq), by a loose scan of the primary key; none without the table. */
export const chainHeads = (): Query => ({
  text: `${INSTANCES}
    SELECT instance, (SELECT max(b.seq) FROM integrity_batches b WHERE b.instance = i.instance)::text AS head FROM i WHERE instance IS NOT NULL`,
})

/** Whether integrity_retention has the columns of a signed cutoff (migration 0008). */
export const retentionSignable = (): Query => ({
  text: `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
      WHERE attrelid = to_regclass('integrity_retention') AND attname = 'signature' AND NOT attisdropped) AS ok`,
})

export const integrityInstalled = (): Query => ({text: `SELECT to_regclass('integrity_batches') IS NOT NULL AS ok`})

/**
 * What the chain needs of the connected role: the tables (NULL: missing) and its privileges on them
 * (has_table_privilege of a NULL regclass is NULL, so a missing table never raises an error here).
 */
export const chainReadiness = (): Query => ({
  text: `SELECT to_regclass('integrity_batches') IS NOT NULL AS batches,
      to_regclass('integrity_digests') IS NOT NULL AS digests,
      pg_catalog.has_table_privilege(to_regclass('integrity_batches'), 'INSERT') AS batches_insert,
      pg_catalog.has_table_privilege(to_regclass('integrity_batches'), 'SELECT') AS batches_select,
      pg_catalog.has_table_privilege(to_regclass('integrity_digests'), 'INSERT') AS digests_insert`,
})

// --- verify (as the reader) ---

/** Instances with batches whose records reach `since`, their first such seq and their head; and instances with digests only. */
export const instancesSince = (since: Date): Query => ({
  text: `SELECT instance, min(seq) FILTER (WHERE max_created_at >= $1) AS first, max(seq) AS last
    FROM integrity_batches GROUP BY instance
    HAVING min(seq) FILTER (WHERE max_created_at >= $1) IS NOT NULL
    UNION
    SELECT d.instance, NULL, NULL FROM integrity_digests d
    WHERE d.written_at >= $1 AND NOT EXISTS (SELECT 1 FROM integrity_batches b WHERE b.instance = d.instance)`,
  values: [since],
})

/** Those of `instances` that have batches, with their head (by the primary key). */
export const instancesWithBatches = (instances: string[]): Query => ({
  text: `SELECT i AS instance, (SELECT max(b.seq) FROM integrity_batches b WHERE b.instance = i) AS head
    FROM unnest($1::text[]) i WHERE EXISTS (SELECT 1 FROM integrity_batches b WHERE b.instance = i)`,
  values: [instances],
})

/** The instance's batch rows from `fromSeq`, with keys_hash: keysHashOf (integrity.ts) of their ids and created_ats, for chainHash v2. */
export const batchesFrom = (instance: string, fromSeq: number, limit: number): Query => ({
  text: `SELECT seq, log_type, count, total, ${utcText('min_created_at')} AS min, ${utcText('max_created_at')} AS max,
      record_hashes, records_hash, prev_hash, hash, (extract(epoch FROM written_at) * 1000)::float8 AS written_ms,
      pg_catalog.sha256(pg_catalog.convert_to(coalesce((
        SELECT pg_catalog.string_agg(x.id::text || ' ' || ${utcText('x.ca')}, E'\n' ORDER BY x.ord)
        FROM unnest(ids, created_ats) WITH ORDINALITY AS x(id, ca, ord)), ''), 'UTF8')) AS keys_hash
    FROM integrity_batches WHERE instance = $1 AND seq >= $2 ORDER BY seq LIMIT $3`,
  values: [instance, fromSeq, limit],
})

/**
 * Each chained record of the instance's batches in [from, to] of `logType` that is missing from its table
 * or whose row no longer hashes to what was chained; nothing for records that are intact.
 */
export const recordAnomalies = (logType: LogType, instance: string, from: number, to: number): Query => ({
  text: `SELECT b.seq, x.id::text AS id, ${utcText('x.ca')} AS at, (r.id IS NULL) AS missing
    FROM integrity_batches b
    CROSS JOIN LATERAL unnest(b.ids, b.created_ats) WITH ORDINALITY AS x(id, ca, ord)
    LEFT JOIN ${quoteIdent(LOG_TYPE[logType].table)} r ON r.id = x.id AND r.created_at = x.ca
    WHERE b.instance = $1 AND b.log_type = $2 AND b.seq BETWEEN $3 AND $4
      AND (r.id IS NULL OR ${rowHashDiffers(logType, 'r', 'substring(b.record_hashes FROM (x.ord::int - 1) * 32 + 1 FOR 32)')})
    ORDER BY b.seq, x.ord`,
  values: [instance, logType, from, to],
})

/** Rows since `since` that no batch of any instance chained: written around the writer. */
export const unchained = (logType: LogType, since: Date, limit: number): Query => ({
  text: `WITH chained AS (
      SELECT x.id, x.ca FROM integrity_batches b CROSS JOIN LATERAL unnest(b.ids, b.created_ats) AS x(id, ca)
      WHERE b.log_type = $2 AND b.max_created_at >= $1)
    SELECT r.id::text AS id, ${utcText('r.created_at')} AS at
    FROM ${quoteIdent(LOG_TYPE[logType].table)} r LEFT JOIN chained c ON c.id = r.id AND c.ca = r.created_at
    WHERE r.created_at >= $1 AND c.id IS NULL ORDER BY r.created_at LIMIT $3`,
  values: [since, logType, limit],
})

export const digestsOf = (instance: string): Query => ({
  text: 'SELECT seq, body, signature FROM integrity_digests WHERE instance = $1 ORDER BY seq',
  values: [instance],
})

/** Each cutoff retention recorded, with when it was recorded (verify bounds each by the configured retention). */
export const retentionCutoffs = (): Query => ({
  // the signed statement through to_jsonb: a database before migration 0008 has no such columns (NULL then)
  text: `SELECT log_type, ${utcText('cutoff')} AS cutoff, ${utcText('written_at')} AS written_at, how,
      pg_catalog.to_jsonb(r) ->> 'statement' AS statement, pg_catalog.to_jsonb(r) ->> 'signature' AS signature
    FROM integrity_retention r ORDER BY log_type, cutoff`,
})

// --- pruning (prune.ts, by cleanup as the owner) ---

/** Whether integrity_pruned exists (migration 0007) and the connected role may read it (NULL-safe as chainReadiness). */
export const prunedReadiness = (): Query => ({
  text: `SELECT to_regclass('integrity_pruned') IS NOT NULL AS exists,
      coalesce(pg_catalog.has_table_privilege(to_regclass('integrity_pruned'), 'SELECT'), false) AS readable`,
})

/** Every instance with batches, by a loose scan of the primary key (one index probe per instance, not a scan of the table). */
export const chainInstances = (): Query => ({
  text: `${INSTANCES}
    SELECT instance FROM i WHERE instance IS NOT NULL`,
})

/** The next batches of an instance's chain after `afterSeq`, oldest first, without their per-record arrays. */
export const pruneCandidates = (instance: string, afterSeq: number, limit: number): Query => ({
  text: `SELECT seq, log_type, count, total, hash, ${utcText('max_created_at')} AS max, ${utcText('written_at')} AS written
    FROM integrity_batches WHERE instance = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
  values: [instance, afterSeq, limit],
})

export const prunedRowForUpdate = (instance: string): Query => ({
  text: 'SELECT through_seq, newest FROM integrity_pruned WHERE instance = $1 FOR UPDATE',
  values: [instance],
})

export const deleteBatchesThrough = (instance: string, fromSeq: number, toSeq: number): Query => ({
  text: 'DELETE FROM integrity_batches WHERE instance = $1 AND seq BETWEEN $2 AND $3',
  values: [instance, fromSeq, toSeq],
})

export type PrunedRow = {instance: string; throughSeq: number; hash: Buffer; total: number; newest: Record<string, string>}

export const upsertPruned = (p: PrunedRow): Query => ({
  text: `INSERT INTO integrity_pruned (instance, through_seq, hash, total, newest) VALUES ($1, $2, $3, $4, $5::jsonb)
    ON CONFLICT (instance) DO UPDATE SET through_seq = EXCLUDED.through_seq, hash = EXCLUDED.hash, total = EXCLUDED.total,
      newest = EXCLUDED.newest, pruned_at = now()`,
  values: [p.instance, p.throughSeq, p.hash, p.total, JSON.stringify(p.newest)],
})

/** Where each instance's chain starts after pruning (verify), with when that was recorded. */
export const prunedChains = (): Query => ({
  text: `SELECT instance, through_seq, hash, total, newest, ${utcText('pruned_at')} AS pruned_at FROM integrity_pruned ORDER BY instance`,
})
