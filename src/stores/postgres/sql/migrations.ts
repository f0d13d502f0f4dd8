import type {Query} from './query.js'

/** Any fixed 64-bit key; all audit-logs schema changes serialise on it. */
export const SCHEMA_LOCK_KEY = 7_260_401_337

export const lockSchema = (): Query => ({text: 'SELECT pg_advisory_xact_lock($1)', values: [SCHEMA_LOCK_KEY]})

export const createMigrationsTable = (): Query => ({
  text: `CREATE TABLE IF NOT EXISTS audit_logs_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`,
})

export const migrationsTableExists = (): Query => ({
  text: `SELECT to_regclass('audit_logs_migrations') IS NOT NULL AS exists`,
})

export const listApplied = (): Query => ({
  text: 'SELECT version, name, checksum, applied_at FROM audit_logs_migrations ORDER BY version',
})

export const recordApplied = (version: number, name: string, checksum: string): Query => ({
  text: 'INSERT INTO audit_logs_migrations (version, name, checksum) VALUES ($1, $2, $3)',
  values: [version, name, checksum],
})
