import {quoteIdent, quoteLiteral} from './quote.js'
import type {Query} from './query.js'

/** Partitions of a table with their ranges (NULL for the default one), estimated rows and size. */
export const listPartitions = (table: string): Query => ({
  text: `SELECT c.relname AS name,
      c.relpartbound IS NOT NULL AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default,
      (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz AS range_from,
      (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS range_to,
      greatest(c.reltuples, 0)::bigint AS estimated_rows,
      pg_total_relation_size(c.oid) AS bytes
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = to_regclass($1)
    ORDER BY range_from NULLS FIRST`,
  values: [table],
})

export const tableExists = (table: string): Query => ({text: 'SELECT to_regclass($1) IS NOT NULL AS exists', values: [table]})

export const hasRowsBetween = (partition: string, from: Date, to: Date): Query => ({
  text: `SELECT EXISTS (SELECT 1 FROM ${quoteIdent(partition)} WHERE created_at >= $1 AND created_at < $2) AS exists`,
  values: [from, to],
})

export const lockTable = (table: string): Query => ({text: `LOCK TABLE ${quoteIdent(table)} IN ACCESS EXCLUSIVE MODE`})

const bound = (d: Date) => quoteLiteral(d.toISOString())

export const createPartitionOf = (table: string, name: string, from: Date, to: Date): Query => ({
  text: `CREATE TABLE ${quoteIdent(name)} PARTITION OF ${quoteIdent(table)} FOR VALUES FROM (${bound(from)}) TO (${bound(to)})`,
})

export const createDetached = (table: string, name: string): Query => ({
  text: `CREATE TABLE ${quoteIdent(name)} (LIKE ${quoteIdent(table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`,
})

/** Moves a range's rows out of the default partition in one statement. */
export const moveRows = (source: string, target: string, from: Date, to: Date): Query => ({
  text: `WITH moved AS (DELETE FROM ${quoteIdent(source)} WHERE created_at >= $1 AND created_at < $2 RETURNING *)
    INSERT INTO ${quoteIdent(target)} SELECT * FROM moved`,
  values: [from, to],
})

export const attachPartition = (table: string, name: string, from: Date, to: Date): Query => ({
  text: `ALTER TABLE ${quoteIdent(table)} ATTACH PARTITION ${quoteIdent(name)} FOR VALUES FROM (${bound(from)}) TO (${bound(to)})`,
})

/** Periods (by their start) that have rows in the default partition. */
export const periodsInDefault = (partition: string, interval: string): Query => ({
  text: `SELECT DISTINCT date_trunc($1, created_at) AS period FROM ${quoteIdent(partition)} ORDER BY 1`,
  values: [interval],
})

export const defaultHasRows = (partition: string): Query => ({
  text: `SELECT count(*) AS rows FROM ${quoteIdent(partition)}`,
})

export const getSetting = (key: string): Query => ({text: 'SELECT value FROM audit_logs_settings WHERE key = $1', values: [key]})

export const putSetting = (key: string, value: string): Query => ({
  text: 'INSERT INTO audit_logs_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value',
  values: [key, value],
})

/** Switch to the owner role for DDL when one is recorded and we may act as it. */
export const ownerRoleToAssume = (): Query => ({
  text: `SELECT s.value AS role FROM audit_logs_settings s
    WHERE s.key = 'owner_role' AND s.value <> current_user
      AND EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = s.value)
      AND pg_has_role(current_user, s.value, 'MEMBER')`,
})
