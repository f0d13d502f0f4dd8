import {createPrivateKey} from 'node:crypto'
// One period's maintenance of `run --maintenance`: premake the partitions and
// apply retention (PostgreSQL, and MongoDB when it is configured), done by one
// instance per period however many run against the database. It runs on the
// maintenance thread (maintenance-thread.ts).
import type pg from 'pg'
import type {MongoTarget} from '../stores/mongo/target.js'
import {connect} from '../stores/postgres/connection.js'
import {ddlTransaction, partitionInterval, premake, TABLES} from '../stores/postgres/partitions.js'
import {type Interval, LOG_TABLES, type LogType} from '../stores/postgres/periods.js'
import {cleanup, cleanupNotes} from '../stores/postgres/retention.js'
import * as sql from '../stores/postgres/sql/maintenance.js'
import {tableExists} from '../stores/postgres/sql/partitions.js'
import {localBackend} from '../pipeline/sinks.js'
import {niceProcess} from '../util/priority.js'
import {redactText} from '../util/redact.js'

export type MaintenanceSettings = {
  databaseUrl?: string
  mongo?: MongoTarget
  instance: string
  intervalMs: number
  /** the partition period when setup-db recorded none */
  partitionInterval: Interval
  premake: number
  retention: Array<{logType: LogType; days: number}>
  /** integrityKey (PEM): each retention cutoff is recorded signed (stores/postgres/integrity.ts signRetention) */
  integrityKeyPem?: string
  batchSize: number
  /** the background priority, for the thread and its database backend (when local) */
  nice: number
}

const keyOf = (s: MaintenanceSettings) => (s.integrityKeyPem ? createPrivateKey(s.integrityKeyPem) : undefined)

export type MaintenanceWork = {
  periodStart: string
  durationMs: number
  partitionsCreated: number
  partitionsDropped: number
  rowsRemoved: number
  documentsRemoved: number
  /** the integrity chains' batch rows pruned after the records (prune.ts) */
  integrityBatchesPruned: number
  /** what cleanup says beside its figures, each naming its store: a cutoff left unsigned, a prune refused (as `cleanup` prints them) */
  notes: string[]
}

/**
 * What one attempt came to. `nextAt` (ms since the epoch, this host's clock): when the next period
 * begins by the database's clock (with MongoDB only, this host's), so that instances whose clocks
 * differ from the database's still wake in the period they mean to do; a period's work that
 * overran into the next one finds it due at once.
 */
export type MaintenanceOutcome = {nextAt: number} & (
  | ({kind: 'done'} & MaintenanceWork)
  | {kind: 'skipped'; reason: 'locked' | 'done'; periodStart: string}
  | {kind: 'failed'; error: string; durationMs: number; periodStart?: string; notes?: string[]}
)

/** The retention of the log types whose tables exist (a later migration's table may be missing: its records wait in the journal). */
async function existingRetention(client: pg.Client, s: MaintenanceSettings) {
  const tables: string[] = []
  for (const t of TABLES) if ((await client.query(tableExists(t))).rows[0].exists) tables.push(t)
  return {tables, retention: s.retention.filter((r) => tables.includes(LOG_TABLES[r.logType]))}
}

async function cleanMongo(s: MaintenanceSettings, signal: AbortSignal): Promise<{documents: number; batches: number; notes: string[]}> {
  if (!s.mongo) return {documents: 0, batches: 0, notes: []}
  const {connectMongo} = await import('../stores/mongo/connection.js')
  const {cleanupMongo} = await import('../stores/mongo/retention.js')
  const store = await connectMongo(s.mongo)
  try {
    const report = await cleanupMongo(store, {retention: s.retention, dryRun: false, batchSize: s.batchSize, signal, signingKey: keyOf(s)})
    if (report.interrupted) throw new Error('interrupted by the shutdown (MongoDB)')
    return {
      documents: report.totalDocuments,
      batches: report.integrity?.batches ?? 0,
      notes: cleanupNotes(report, ` (MongoDB ${report.database})`),
    }
  } finally {
    await store.close()
  }
}

/**
 * With MongoDB only there is no advisory lock to take: every instance cleans every period.
 * That is safe (a document is deleted for being older than the cutoff, so two instances
 * deleting at once delete each document once, and the second finds little left), and costs
 * one count and one empty find per collection per instance and period.
 */
async function maintainMongoOnly(s: MaintenanceSettings, signal: AbortSignal): Promise<MaintenanceOutcome> {
  const started = Date.now()
  const periodStart = new Date(Math.floor(started / s.intervalMs) * s.intervalMs).toISOString()
  const nextAt = started + s.intervalMs - (started % s.intervalMs)
  try {
    const mongo = await cleanMongo(s, signal)
    const durationMs = Date.now() - started
    return {
      kind: 'done',
      nextAt,
      periodStart,
      durationMs,
      partitionsCreated: 0,
      partitionsDropped: 0,
      rowsRemoved: 0,
      documentsRemoved: mongo.documents,
      integrityBatchesPruned: mongo.batches,
      notes: mongo.notes,
    }
  } catch (error) {
    return {kind: 'failed', nextAt, periodStart, error: redactText((error as Error).message), durationMs: Date.now() - started}
  }
}

/**
 * The work of the current period, if no other instance holds the lock and the period is not
 * done yet: the instance that takes the lock checks maintenance_runs for a successful row of
 * the period, does the work, and records it (a failure is recorded too, with its error, and
 * the period stays open for the next attempt). The lock is released after.
 */
export async function maintain(s: MaintenanceSettings, signal: AbortSignal): Promise<MaintenanceOutcome> {
  if (!s.databaseUrl) return maintainMongoOnly(s, signal)
  const client = await connect(s.databaseUrl)
  let periodStart: Date | undefined
  const started = Date.now()
  let nextAt = started + s.intervalMs
  try {
    const backend = await localBackend(client, s.databaseUrl).catch(() => undefined)
    if (backend && s.nice > 0) niceProcess(backend, s.nice)
    const {rows} = await client.query(sql.currentPeriod(s.intervalMs))
    const start = rows[0].period_start as Date
    periodStart = start
    nextAt = Date.now() + Math.max(0, start.getTime() + s.intervalMs - (rows[0].now as Date).getTime())
    const period = start.toISOString()
    if (!(await client.query(sql.tryLock())).rows[0].locked) return {kind: 'skipped', reason: 'locked', periodStart: period, nextAt}
    try {
      if ((await client.query(sql.periodDone(start, s.intervalMs))).rows[0].done)
        return {kind: 'skipped', reason: 'done', periodStart: period, nextAt}
      const startedAt = new Date()
      const work = {partitionsCreated: 0, partitionsDropped: 0, rowsRemoved: 0, documentsRemoved: 0, integrityBatchesPruned: 0}
      const notes: string[] = []
      try {
        const {tables, retention} = await existingRetention(client, s)
        const interval = await partitionInterval(client, {configured: s.partitionInterval})
        work.partitionsCreated = (await premake(client, {interval, ahead: s.premake, tables})).length
        const report = await cleanup(client, {retention, dryRun: false, batchSize: s.batchSize, signal, signingKey: keyOf(s)})
        work.partitionsDropped = report.actions.filter((a) => a.action === 'drop').length
        work.rowsRemoved = report.totalRows
        work.integrityBatchesPruned = report.integrity?.batches ?? 0
        notes.push(...cleanupNotes(report))
        if (report.interrupted) throw new Error('interrupted by the shutdown')
        const mongo = await cleanMongo(s, signal)
        work.documentsRemoved = mongo.documents
        work.integrityBatchesPruned += mongo.batches
        notes.push(...mongo.notes)
        await client.query(sql.pruneRuns())
      } catch (error) {
        const message = redactText((error as Error).message)
        // recorded so that the table tells what happened; the period stays open (no row without an error)
        await ddlTransaction(client, () =>
          client.query(
            sql.recordRun({periodStart: start, intervalMs: s.intervalMs, instance: s.instance, startedAt, ...work, error: message}),
          ),
        ).catch(() => {})
        // what PostgreSQL's step said before a later step failed (MongoDB's) is not lost with it
        return {kind: 'failed', error: message, durationMs: Date.now() - started, periodStart: period, nextAt, notes}
      }
      await ddlTransaction(client, () =>
        client.query(sql.recordRun({periodStart: start, intervalMs: s.intervalMs, instance: s.instance, startedAt, ...work, error: null})),
      )
      return {kind: 'done', periodStart: period, durationMs: Date.now() - started, nextAt, ...work, notes}
    } finally {
      await client.query(sql.unlock()).catch(() => {})
    }
  } catch (error) {
    return {
      kind: 'failed',
      error: redactText((error as Error).message),
      durationMs: Date.now() - started,
      periodStart: periodStart?.toISOString(),
      nextAt,
    }
  } finally {
    await client.end().catch(() => {})
  }
}
