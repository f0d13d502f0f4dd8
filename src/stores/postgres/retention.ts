import {type LogType, LOG_TABLES, cutoffFor} from './periods.js'
import {type PartitionInfo, ddlTransaction, listPartitions} from './partitions.js'
import * as sql from './sql/retention.js'
import {
  chainHeads,
  insertRetention,
  integrityInstalled,
  prunedReadiness,
  retentionCutoffs,
  retentionSignable,
  signRetentionRow,
  utcText,
} from './sql/integrity.js'
import {signRetention} from './integrity.js'
import {type CutoffRow, type PruneReport, pgPruneIO, pruneAfterCleanup, usText} from './prune.js'

import type {KeyObject} from 'node:crypto'
import type {Db} from './db.js'

export type CleanupAction = {
  table: string
  partition: string
  action: 'drop' | 'delete'
  rows: number
  bytes: number
}

export type CleanupReport = {
  dryRun: boolean
  interrupted: boolean
  targets: Array<{logType: LogType; table: string; days: number; cutoff: string}>
  actions: CleanupAction[]
  totalRows: number
  totalBytes: number
  /** the integrity chains' batch rows pruned after the records (prune.ts); absent without migration 0007 or when interrupted */
  integrity?: PruneReport
  /** what went otherwise than it should and did not stop the cleanup (a cutoff left unsigned) */
  notes?: string[]
}

/** A cutoff whose record changed before it could be signed (its statement set, or the row gone): verify bounds it by the configured retention. */
export const unsignedNote = (logType: string, cutoff: Date) =>
  `the ${logType} cutoff ${cutoff.toISOString()} was recorded but not signed: its record in integrity_retention changed meanwhile ` +
  '(verify bounds it by the retention configured then, as an unsigned one)'

/**
 * What a cleanup report (PostgreSQL's or MongoDB's) says beside its figures, each line naming where it applies:
 * `cleanup` prints these, and `run --maintenance` logs them. `where`: '' for PostgreSQL, ` (MongoDB <database>)`.
 */
export const cleanupNotes = (report: {notes?: string[]; integrity?: {notes: string[]}}, where = '') => [
  ...(report.integrity?.notes ?? []).map((n) => `integrity_batches${where}: ${n}`),
  ...(report.notes ?? []).map((n) => `integrity_retention${where}: ${n}`),
]

export type CleanupOptions = {
  retention: Array<{logType: LogType; days: number}>
  dryRun: boolean
  batchSize: number
  now?: Date
  signal?: AbortSignal
  /**
   * The configured retention (days per type) that bounds the recorded cutoffs the integrity chains are pruned by, as
   * verify bounds them [default: `retention`'s days]: a shorter `--days` removes records but not their batch rows.
   */
  configuredDays?: Partial<Record<LogType, number>>
  /**
   * integrityKey (the private key): each cutoff of the configured retention (configuredDays, when given) is recorded
   * with a statement of the retention it was applied under, signed, which verify honours should the configured
   * retention be raised later (integrity.ts signRetention). A shorter `--days` is not the policy: it goes unsigned.
   */
  signingKey?: KeyObject
  onProgress?: (event: {partition: string; action: 'drop' | 'delete'; rows: number}) => void
}

/** Whether a cutoff applied with `days` is the configured retention of its type (signed, when a key is given). */
export const signable = (o: {configuredDays?: Partial<Record<LogType, number>>}, logType: LogType, days: number) =>
  days === (o.configuredDays?.[logType] ?? days)

/** Whole partitions older than the cutoff are dropped; the boundary and the default partition lose rows in batches. */
function classify(p: PartitionInfo, cutoff: Date): 'drop' | 'delete' | 'keep' {
  if (p.isDefault) return 'delete'
  if (p.to && new Date(p.to) <= cutoff) return 'drop'
  if (p.from && new Date(p.from) < cutoff) return 'delete'
  return 'keep'
}

async function dropWithRetry(db: Db, partition: string): Promise<void> {
  // A drop needs a brief exclusive lock on the parent; writers hold it only for
  // their short transactions, so wait a little and retry rather than queue forever.
  for (let attempt = 1; ; attempt++) {
    try {
      await ddlTransaction(db, async () => {
        await db.query(sql.setLockTimeout(5000))
        await db.query(sql.dropPartition(partition))
      })
      return
    } catch (error) {
      if ((error as {code?: string}).code !== '55P03' || attempt >= 6) throw error
    }
  }
}

export async function cleanup(db: Db, options: CleanupOptions): Promise<CleanupReport> {
  const now = options.now ?? new Date()
  // the database's clock as the cleanup starts: only batch rows written before it may be pruned (see pruneChainsOf)
  const startedAt = String((await db.query(`SELECT ${utcText('now()')} AS t`)).rows[0].t)
  const report: CleanupReport = {dryRun: options.dryRun, interrupted: false, targets: [], actions: [], totalRows: 0, totalBytes: 0}
  // a database before migration 0008 records its cutoffs unsigned
  const signingKey = options.signingKey && (await db.query(retentionSignable())).rows[0].ok ? options.signingKey : undefined
  for (const {logType, days} of options.retention) {
    const table = LOG_TABLES[logType]
    const cutoff = cutoffFor(now, days)
    report.targets.push({logType, table, days, cutoff: cutoff.toISOString()})
    let recorded = false
    let heads: Record<string, number> | undefined
    for (const p of await listPartitions(db, [table])) {
      if (options.signal?.aborted) {
        report.interrupted = true
        break
      }
      const kind = classify(p, cutoff)
      if (kind === 'keep') continue
      const counted = (await db.query(kind === 'drop' ? sql.countWhole(p.name) : sql.countOlder(p.name, cutoff))).rows[0]
      if (counted.rows === 0 && kind === 'delete') continue
      const action: CleanupAction = {table, partition: p.name, action: kind, rows: counted.rows, bytes: counted.bytes}
      if (!options.dryRun) {
        // said before anything goes (an interrupted cleanup removed some): verify counts the integrity
        // chain's records older than the cutoff as removed on purpose (integrity.ts)
        if (!recorded) {
          await db.query(insertRetention(logType, cutoff, `cleanup: ${days} days, partitions dropped or rows deleted`))
          // the batches whose records this cleanup removes: the statement signed once they are gone covers those only
          if (signingKey && signable(options, logType, days)) heads = await chainHeadsOf(db)
        }
        recorded = true
        if (kind === 'drop') {
          await dropWithRetry(db, p.name)
          options.onProgress?.({partition: p.name, action: kind, rows: counted.rows})
        } else {
          action.rows = await deleteInBatches(db, p.name, cutoff, options)
          action.bytes = counted.rows > 0 ? Math.round((counted.bytes * action.rows) / counted.rows) : 0
          if (options.signal?.aborted) report.interrupted = true
        }
      }
      report.actions.push(action)
      report.totalRows += action.rows
      report.totalBytes += action.bytes
      if (report.interrupted) break
    }
    if (report.interrupted) break
    if (signingKey && heads) {
      const signed = signRetention(signingKey, {store: 'postgres', logType, cutoff, days, at: now, heads})
      if (!(await db.query(signRetentionRow(logType, cutoff, signed))).rowCount) (report.notes ??= []).push(unsignedNote(logType, cutoff))
    }
  }
  if (!report.interrupted) report.integrity = await pruneIntegrity(db, options, report, now, startedAt)
  if (report.integrity?.interrupted) report.interrupted = true
  return report
}

/**
 * The integrity chains' batch rows whose records this cleanup (or an earlier one) removed (prune.ts). Only for the
 * types this cleanup applied, by their latest recorded cutoff that the configured retention allows, and not after
 * this cleanup's own cutoff. A dry run counts as if this cleanup had recorded its cutoffs where it found rows to remove.
 */
async function pruneIntegrity(
  db: Db,
  options: CleanupOptions,
  report: CleanupReport,
  now: Date,
  startedAt: string,
): Promise<PruneReport | undefined> {
  if (!(await db.query(prunedReadiness())).rows[0].exists) return undefined
  const rows = (await db.query(retentionCutoffs())).rows as CutoffRow[]
  if (options.dryRun)
    for (const t of report.targets)
      if (report.actions.some((a) => a.table === t.table))
        rows.push({log_type: t.logType, cutoff: usText(new Date(t.cutoff)), written_at: now.toISOString()})
  return pruneAfterCleanup(pgPruneIO(db), {
    ...options,
    rows,
    targets: report.targets,
    own: (t) => usText(new Date(t.cutoff)),
    store: 'postgres',
    now,
    writtenBefore: startedAt,
    // the records are gone and the tables consistent: a role that may not prune leaves the batch rows, and says so
    refused: (error) =>
      (error as {code?: string}).code === '42501'
        ? `${(error as Error).message} (run cleanup as the owner, as setup-db sets it up)`
        : undefined,
  })
}

/** Each instance's chain head as the cleanup begins (none without the chain's table). */
async function chainHeadsOf(db: Db): Promise<Record<string, number>> {
  if (!(await db.query(integrityInstalled())).rows[0].ok) return {}
  return Object.fromEntries((await db.query(chainHeads())).rows.map((r: {instance: string; head: string}) => [r.instance, Number(r.head)]))
}

/** Deletes in batches, each its own transaction; stops between batches when the signal aborts. */
async function deleteInBatches(db: Db, partition: string, cutoff: Date, options: CleanupOptions): Promise<number> {
  let deleted = 0
  while (!options.signal?.aborted) {
    const n = (await db.query(sql.deleteBatch(partition, cutoff, options.batchSize))).rowCount ?? 0
    deleted += n
    if (n > 0) options.onProgress?.({partition, action: 'delete', rows: deleted})
    if (n < options.batchSize) break
  }
  return deleted
}
