import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {Worker} from 'node:worker_threads'
import {Counter, Gauge, type Registry} from 'prom-client'
import type {ResolvedConfig} from '../config/resolve.js'
import {retentionDays} from '../config/stores.js'
import {AuditLogsError, ExitCode} from '../errors.js'
import {LOG_TYPES} from '../stores/log-types.js'
import type {MongoTarget} from '../stores/mongo/target.js'
import {redactText} from '../util/redact.js'
import {loadPrivateKey} from '../stores/postgres/integrity.js'
import type {Deadline} from './lifecycle.js'
import type {FromMaintenance, ToMaintenance} from './maintenance-thread.js'
import type {MaintenanceOutcome, MaintenanceSettings} from './maintenance-work.js'

const here = fileURLToPath(import.meta.url)
const ENTRY = path.join(path.dirname(here), here.endsWith('.ts') ? 'maintenance-thread.ts' : 'maintenance-thread.js')

/** What /health and the metrics say of maintenance. */
export type MaintenanceState = {
  intervalMs: number
  /** done: this instance did a period's work; skipped: another instance held the lock or had done it */
  runs: {done: number; skippedLocked: number; skippedDone: number; failed: number}
  lastSuccess: string | null
  lastDurationMs: number | null
  lastPeriod: string | null
  lastError: string | null
  partitionsCreated: number
  partitionsDropped: number
  rowsRemoved: number
  documentsRemoved: number
}

/** Prometheus series of maintenance, read at scrape time from the state. */
function registerMetrics(registry: Registry, state: MaintenanceState): void {
  new Gauge({
    name: 'audit_logs_maintenance_last_success_timestamp_seconds',
    help: 'When this instance last finished a period of maintenance (partitions premade, retention applied); 0: never',
    registers: [registry],
    collect() {
      this.set(state.lastSuccess ? Date.parse(state.lastSuccess) / 1000 : 0)
    },
  })
  new Gauge({
    name: 'audit_logs_maintenance_last_duration_seconds',
    help: "How long this instance's last period of maintenance took",
    registers: [registry],
    collect() {
      this.set((state.lastDurationMs ?? 0) / 1000)
    },
  })
  const seen: Record<string, number> = {}
  const counter = (name: string, help: string, labels: string[], values: () => Array<[Record<string, string>, number]>) =>
    new Counter({
      name,
      help,
      labelNames: labels,
      registers: [registry],
      collect() {
        for (const [l, v] of values()) {
          const key = JSON.stringify(l)
          this.inc(l, v - (seen[name + key] ?? 0))
          seen[name + key] = v
        }
      },
    })
  counter(
    'audit_logs_maintenance_runs_total',
    'Periods of maintenance by outcome: done by this instance, skipped (another instance held the lock, or had done the period), failed',
    ['outcome'],
    () => [
      [{outcome: 'done'}, state.runs.done],
      [{outcome: 'skipped_locked'}, state.runs.skippedLocked],
      [{outcome: 'skipped_done'}, state.runs.skippedDone],
      [{outcome: 'failed'}, state.runs.failed],
    ],
  )
  counter('audit_logs_maintenance_partitions_created_total', 'Partitions premade by maintenance on this instance', [], () => [
    [{}, state.partitionsCreated],
  ])
  counter('audit_logs_maintenance_partitions_dropped_total', 'Expired partitions dropped by maintenance on this instance', [], () => [
    [{}, state.partitionsDropped],
  ])
  counter(
    'audit_logs_maintenance_removed_total',
    'Rows (PostgreSQL, dropped partitions included) and documents (MongoDB) removed by retention on this instance',
    ['store'],
    () => [
      [{store: 'postgres'}, state.rowsRemoved],
      [{store: 'mongo'}, state.documentsRemoved],
    ],
  )
}

function describe(o: MaintenanceOutcome): string | undefined {
  if (o.kind === 'skipped') return undefined // every instance but one skips every period: not worth a line each
  if (o.kind === 'failed')
    return `maintenance${o.periodStart ? ` of the period from ${o.periodStart}` : ''} failed: ${o.error}; tried again within the period`
  return (
    `maintenance of the period from ${o.periodStart} done in ${o.durationMs} ms: ${o.partitionsCreated} partition(s) created, ` +
    `${o.partitionsDropped} dropped, ${o.rowsRemoved} row(s)${o.documentsRemoved ? ` and ${o.documentsRemoved} MongoDB document(s)` : ''} removed` +
    (o.integrityBatchesPruned ? `, ${o.integrityBatchesPruned} integrity batch row(s) pruned` : '')
  )
}

/**
 * integrityKey, to sign the retention cutoffs the maintenance applies (stores/postgres/integrity.ts signRetention). A key
 * that cannot be used does not stop maintenance (with the chain off, run does not check it): its cutoffs go unsigned.
 */
function signingKeyPem(config: ResolvedConfig, log: (m: string) => void): string | undefined {
  if (!config.integrityKey) return undefined
  try {
    return loadPrivateKey(config.integrityKey).pem
  } catch {
    log(
      'maintenance: integrityKey is set but cannot be used as the Ed25519 private key (run `audit-logs doctor`): retention cutoffs are recorded unsigned',
    )
    return undefined
  }
}

/**
 * Starts the maintenance thread (maintenance-thread.ts) of `run --maintenance`. It needs a database
 * store: PostgreSQL (the work is shared between instances under an advisory lock), or MongoDB only
 * (every instance cleans, see maintenance-work.ts). A thread that dies is started again at the next
 * period; the work of a period it left undone is done then, by it or another instance.
 */
export function startMaintenance(
  config: ResolvedConfig,
  where: {databaseUrl?: string; mongo?: MongoTarget; instance: string},
  registry: Registry,
  log: (m: string) => void,
): {state(): MaintenanceState; stop(deadline: Deadline): Promise<void>} {
  if (!where.databaseUrl && !where.mongo)
    throw new AuditLogsError('--maintenance (AUDIT_LOGS_MAINTENANCE) needs a database store to maintain, and this run writes none.', {
      exit: ExitCode.usage,
      suggestions: [
        'Run it with the database sink on (not --no-database, not --no-capture), PostgreSQL or MongoDB (--stores)',
        'Or run `audit-logs partitions create` and `audit-logs cleanup` from cron instead',
      ],
    })
  const settings: MaintenanceSettings = {
    ...where,
    intervalMs: config.maintenanceIntervalMs,
    partitionInterval: config.partitionInterval,
    premake: config.premake,
    retention: LOG_TYPES.map((logType) => ({logType, days: retentionDays(config, logType)})),
    integrityKeyPem: signingKeyPem(config, log),
    batchSize: config.cleanupBatchSize,
    nice: config.backgroundNice,
  }
  const state: MaintenanceState = {
    intervalMs: settings.intervalMs,
    runs: {done: 0, skippedLocked: 0, skippedDone: 0, failed: 0},
    lastSuccess: null,
    lastDurationMs: null,
    lastPeriod: null,
    lastError: null,
    partitionsCreated: 0,
    partitionsDropped: 0,
    rowsRemoved: 0,
    documentsRemoved: 0,
  }
  registerMetrics(registry, state)
  const record = (o: MaintenanceOutcome) => {
    if (o.kind === 'skipped') {
      if (o.reason === 'locked') state.runs.skippedLocked++
      else state.runs.skippedDone++
    } else if (o.kind === 'failed') {
      state.runs.failed++
      // a failure that repeats (a role without the rights, a database down) is logged once, not at every retry
      if (o.error === state.lastError) return
      state.lastError = o.error
    } else {
      state.runs.done++
      state.lastSuccess = new Date().toISOString()
      state.lastDurationMs = o.durationMs
      state.lastPeriod = o.periodStart
      state.lastError = null
      state.partitionsCreated += o.partitionsCreated
      state.partitionsDropped += o.partitionsDropped
      state.rowsRemoved += o.rowsRemoved
      state.documentsRemoved += o.documentsRemoved
    }
    const line = describe(o)
    if (line) log(line)
    // a cutoff left unsigned, a prune refused: as `cleanup` prints them (a failure logged once, its notes with it)
    if (o.kind !== 'skipped') for (const note of o.notes ?? []) log(`maintenance: ${note}`)
  }

  let thread: Worker | undefined
  let stopping = false
  let stopped: (() => void) | undefined
  const spawn = () => {
    const t = new Worker(ENTRY, {workerData: settings, resourceLimits: {maxYoungGenerationSizeMb: 4}})
    thread = t
    let failure: Error | undefined
    t.on('message', (msg: FromMaintenance) => {
      if (msg.type === 'outcome') record(msg.outcome)
      else if (msg.type === 'stopped') stopped?.()
    })
    t.on('error', (error) => (failure = error))
    t.on('exit', (code) => {
      if (thread === t) thread = undefined
      if (stopping) return stopped?.()
      log(`maintenance stopped (${redactText(failure?.message ?? `exit code ${code}`)}); starting it again in ${settings.intervalMs} ms`)
      setTimeout(() => !stopping && spawn(), settings.intervalMs).unref()
    })
  }
  spawn()
  log(`maintenance every ${settings.intervalMs} ms (partitions premade, retention applied; one instance per period)`)
  return {
    state: () => state,
    async stop(deadline) {
      stopping = true
      const t = thread
      if (!t) return
      // retention stops between two batches; past the deadline the thread is ended (the lock goes with its connection)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline.left())
        stopped = () => {
          clearTimeout(timer)
          resolve()
        }
        t.postMessage({type: 'stop'} satisfies ToMaintenance)
      })
      await t.terminate()
    },
  }
}
