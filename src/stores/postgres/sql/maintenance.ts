import type {Query} from './query.js'

/**
 * The advisory lock of run's maintenance: one key for the whole database (advisory locks are
 * per database already), derived from a fixed text so that no other tool's numbers collide by
 * chance. Session-level: held across the work's own transactions, released after it, and by
 * the server when the connection drops (an instance killed mid-work leaves no lock behind).
 */
const KEY = "hashtextextended('audit-logs run maintenance', 0)"
export const tryLock = (): Query => ({text: `SELECT pg_try_advisory_lock(${KEY}) AS locked`})
export const unlock = (): Query => ({text: `SELECT pg_advisory_unlock(${KEY}) AS unlocked`})

/** The period of the database's clock (not this host's: instances on hosts whose clocks differ agree on it). */
export const currentPeriod = (intervalMs: number): Query => ({
  text: `SELECT to_timestamp(floor(extract(epoch FROM clock_timestamp()) * 1000 / $1) * $1 / 1000.0) AS period_start,
    clock_timestamp() AS now`,
  values: [intervalMs],
})

export const periodDone = (periodStart: Date, intervalMs: number): Query => ({
  text: 'SELECT EXISTS (SELECT 1 FROM maintenance_runs WHERE period_start = $1 AND interval_ms = $2 AND error IS NULL) AS done',
  values: [periodStart, intervalMs],
})

export type RunRow = {
  periodStart: Date
  intervalMs: number
  instance: string
  startedAt: Date
  partitionsCreated: number
  partitionsDropped: number
  rowsRemoved: number
  documentsRemoved: number
  error: string | null
}

export const recordRun = (r: RunRow): Query => ({
  text: `INSERT INTO maintenance_runs (period_start, interval_ms, instance, started_at, finished_at,
      partitions_created, partitions_dropped, rows_removed, documents_removed, error)
    VALUES ($1, $2, $3, $4, clock_timestamp(), $5, $6, $7, $8, $9)`,
  values: [
    r.periodStart,
    r.intervalMs,
    r.instance,
    r.startedAt,
    r.partitionsCreated,
    r.partitionsDropped,
    r.rowsRemoved,
    r.documentsRemoved,
    r.error,
  ],
})

/** Its own history is kept a year. */
export const pruneRuns = (): Query => ({text: "DELETE FROM maintenance_runs WHERE started_at < now() - interval '365 days'"})
