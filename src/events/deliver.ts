import path from 'node:path'
import {AuditLogsError, ExitCode} from '../errors.js'
import type {ResolvedConfig} from '../config/resolve.js'
import {storesOf} from '../config/stores.js'
import {JournalWriter, listSegments} from '../pipeline/journal.js'
import {Shipper, collectSegments} from '../pipeline/shipper.js'
import {type SinkPlaces, sinksOf} from '../pipeline/sinks.js'
import {prepareDatabase} from '../server/database.js'
import {writerId} from '../server/own-records.js'
import {mongoTarget} from '../stores/mongo/target.js'
import {integrityOptions} from '../stores/postgres/integrity.js'
import {claimDirectory} from '../util/claim.js'
import {MODES} from '../util/files.js'

/** How one event from `audit-logs event` reached the stores. */
export type Delivery =
  {via: 'run'; url: string} | {via: 'journal'; journalDir: string; delivered: Record<string, boolean>; errors: Record<string, string>}

/**
 * Sends the event to a run that is up (its admin listener answers): the
 * run journals it as any app's. Undefined when nothing listens there (then
 * the caller writes the event itself); a run that refuses it is an error
 * that says why, never a silent fallback past its token.
 */
export async function sendToRun(url: string, token: string | undefined, line: string): Promise<{id: string} | undefined> {
  let res: Response
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {'content-type': 'application/x-ndjson', ...(token ? {authorization: `Bearer ${token}`} : {})},
      body: line + '\n',
      signal: AbortSignal.timeout(10_000),
    })
  } catch (error) {
    const code = (error as {cause?: {code?: string}}).cause?.code
    if (code === 'ECONNREFUSED') return undefined
    throw new AuditLogsError(`The run's events endpoint ${url} did not answer: ${(error as Error).message}`, {exit: ExitCode.database})
  }
  const body = (await res.json().catch(() => ({}))) as {ids?: string[]; refused?: Array<{error: string}>; error?: string}
  if (res.ok && body.ids?.length) return {id: body.ids[0]}
  const why = body.error ?? body.refused?.[0]?.error ?? `HTTP ${res.status}`
  throw new AuditLogsError(`The run at ${url} refused the event: ${why}`, {
    exit: ExitCode.usage,
    suggestions: res.status === 401 || res.status === 403 ? ['Give the run’s eventsToken: AUDIT_LOGS_EVENTS_TOKEN'] : [],
  })
}

/**
 * No run is up: the events go into the journal (synced) and from there to
 * every configured store, through the same shippers and checkpoints a run
 * uses, so the files and the databases stay as a run leaves them (and
 * whatever an earlier run left in the journal goes with it). A store that
 * is down keeps the event in the journal for the next run or event.
 */
export async function deliverDirectly(
  config: ResolvedConfig,
  lines: string[],
  options: {journalDir: string; timeoutMs: number; log: (m: string) => void},
): Promise<Delivery & {via: 'journal'}> {
  const {journalDir} = options
  const inUse = ({pid}: {pid: number}): never => {
    throw new AuditLogsError(
      `A run (pid ${pid}) holds the journal ${journalDir}, but its admin listener (${config.adminBind}) did not answer`,
      {exit: ExitCode.usage, suggestions: ['Give the run’s admin address: --admin-bind HOST:PORT (AUDIT_LOGS_ADMIN_BIND)']},
    )
  }
  const releases: Array<() => unknown> = [claimDirectory(journalDir, 'owner.pid', inUse, MODES.privateDir)]
  const shippers: Shipper[] = []
  try {
    const logDir = path.resolve(config.logDir)
    if (config.fileSink) releases.push(claimDirectory(logDir, '.audit-logs-owner.pid', inUse, MODES.sharedDir))
    const writer = new JournalWriter(journalDir, writerId('event'), {syncEveryFlush: true})
    try {
      await writer.appendDurable(lines)
    } finally {
      writer.close()
    }
    const places: SinkPlaces = {}
    if (config.fileSink) places.files = {dir: logDir, maxBytes: config.logMaxBytes, backupCount: config.logBackupCount}
    if (config.databaseSink) {
      const stores = storesOf(config)
      if (stores.postgres) {
        const db = await prepareDatabase(config, options.log)
        releases.push(
          () => db.target.release(),
          () => db.stop(),
        )
        places.databaseUrl = db.target.databaseUrl
        places.integrity = integrityOptions(config, logDir)
      }
      if (stores.mongo) {
        places.mongo = mongoTarget(config)
        places.integrity = integrityOptions(config, logDir) // MongoDB's batches are chained too
      }
    }
    for (const sink of sinksOf(places, 0, options.log)) shippers.push(new Shipper(journalDir, sink, {log: options.log}))
    for (const s of shippers) s.start()
    const drained = await Promise.all(shippers.map((s) => s.drain(options.timeoutMs)))
    const delivered = Object.fromEntries(shippers.map((s, i) => [s.sink.name, drained[i]]))
    const errors = Object.fromEntries(
      shippers.flatMap((s, i) => (drained[i] || !s.stats.lastError ? [] : [[s.sink.name, s.stats.lastError]])),
    )
    return {via: 'journal', journalDir, delivered, errors}
  } finally {
    for (const s of shippers) await s.stop()
    if (shippers.length) collectSegments(journalDir, shippers)
    listSegments(journalDir) // seals what this process left open (nothing, normally)
    for (const release of releases.reverse()) await release()
  }
}
