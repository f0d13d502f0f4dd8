import path from 'node:path'
import type {ResolvedConfig} from '../config/resolve.js'
import {AuditLogsError, ExitCode} from '../errors.js'
import {parseRoutes} from '../capture/logins.js'
import {journalBound} from '../pipeline/journal-bound.js'
import {claimDirectory} from '../util/claim.js'
import {writableDir} from '../util/dirs.js'
import {MODES} from '../util/files.js'
import {formatBytes} from '../util/bytes.js'
import {probePort} from '../util/process.js'
import {type WorkerSettings, assertDistinctAddresses, parseHostPort, workerSettings} from './settings.js'

/** What `run` is to do, checked before anything starts. */
export type RunPlan = {
  /** what each proxy worker is given */
  settings: WorkerSettings
  admin: {host: string; port: number}
  /** the setting that places the journal, for messages */
  journalSetting: string
  logDir: string
  logSetting: string
  /** the journal's bound, and how it was derived (for the log) */
  journalMax: number
  journalNote: string
  /** the lag past which the sinks catch up (and under which the intake is never paced) */
  catchUpBytes: number
  whenFull: 'block' | 'drop'
}

async function assertPortFree(host: string, port: number, what: string): Promise<void> {
  const probe = await probePort(port, host)
  if ('error' in probe) {
    const {error} = probe
    throw new AuditLogsError(
      `Cannot listen on ${host}:${port} (${what}): ${error.code === 'EADDRINUSE' ? 'the port is already in use' : error.message}`,
      {exit: ExitCode.usage, suggestions: [`Choose another with --${what === 'bind' ? 'bind' : 'admin-bind'} HOST:PORT`]},
    )
  }
}

/** Checks the configuration of `run` (addresses free and distinct, directories writable) and derives what it needs. */
export async function planRun(config: ResolvedConfig): Promise<RunPlan> {
  const settings = workerSettings(config)
  const admin = parseHostPort('adminBind', config.adminBind)
  if (!settings.upstream && !config.command?.length) {
    throw new AuditLogsError('Nothing to proxy: give --upstream URL, or the app to spawn after --', {
      exit: ExitCode.usage,
      suggestions: ['audit-logs run --upstream http://127.0.0.1:3000', 'audit-logs run -- node server.js'],
    })
  }
  if (settings.logins) {
    try {
      parseRoutes(settings.logins.routes, settings.logins.successStatus)
    } catch (error) {
      throw new AuditLogsError(`loginRoutes / loginSuccessStatus: ${(error as Error).message.replace('--status', 'the status')}`, {
        exit: ExitCode.usage,
      })
    }
  }
  assertDistinctAddresses(settings.bind, admin, settings.upstream)
  await assertPortFree(settings.bind.host, settings.bind.port, 'bind')
  await assertPortFree(admin.host, admin.port, 'admin-bind')
  const journalSetting = config.journalDir ? 'journalDir (AUDIT_LOGS_JOURNAL_DIR)' : 'dataDir (AUDIT_LOGS_DATA_DIR)'
  if (settings.capture) writableDir(settings.journalDir, 'journal directory', journalSetting, {mode: MODES.privateDir})
  const logDir = path.resolve(config.logDir)
  const logSetting = '--log-dir (AUDIT_LOGS_LOG_DIR)'
  if (settings.capture && config.fileSink) writableDir(logDir, 'log directory', logSetting, {mode: MODES.sharedDir})
  const bound = journalBound(config.journalMaxBytes, settings.journalDir)
  const journalMax = bound.bytes
  const catchUpBytes = Math.min(config.catchUpLagBytes, Math.floor(journalMax / 4))
  // with no sink, nothing ever empties the journal: holding requests at its bound would hold them for good
  const whenFull = config.fileSink || config.databaseSink ? config.whenFull : 'drop'
  settings.whenFull = whenFull
  const journalNote = bound.derived
    ? `, a quarter of the ${formatBytes(bound.derived.freeBytes)} free, within 1-64 GiB; journalMaxBytes sets it`
    : ''
  return {settings, admin, journalSetting, logDir, logSetting, journalMax, journalNote, catchUpBytes, whenFull}
}

/**
 * One run per journal and per log directory: a second run on the journal would ship the first one's
 * records to its own sinks; two on one log directory would rotate and cut each other's files. Returns
 * the release of the claims (none without capture).
 */
export function claimRunDirectories(plan: RunPlan, fileSink: boolean): () => void {
  if (!plan.settings.capture) return () => {}
  const taken =
    (what: string, dir: string, setting: string) =>
    ({pid}: {pid: number}): never => {
      throw new AuditLogsError(`The ${what} ${dir} is in use by another audit-logs run (pid ${pid})`, {
        exit: ExitCode.usage,
        suggestions: [`Give each run its own ${setting}`],
      })
    }
  const journal = claimDirectory(
    plan.settings.journalDir,
    'owner.pid',
    taken('journal directory', plan.settings.journalDir, plan.journalSetting),
    MODES.privateDir,
  )
  let logs: () => void = () => {}
  try {
    if (fileSink)
      logs = claimDirectory(plan.logDir, '.audit-logs-owner.pid', taken('log directory', plan.logDir, plan.logSetting), MODES.sharedDir)
  } catch (error) {
    journal()
    throw error
  }
  return () => {
    logs()
    journal()
  }
}

/** The line `run` logs once it listens. */
export function describeRun(plan: RunPlan, sinks: string[]): string {
  const {settings, admin} = plan
  const capturing = `capturing to ${sinks.join(' and ') || 'the journal only'} (journal bound ${formatBytes(plan.journalMax)}${plan.journalNote}; when full: ${plan.whenFull})`
  return (
    `listening on http://${settings.bind.host}:${settings.bind.port} → ${settings.upstream}; admin on http://${admin.host}:${admin.port} ` +
    `(/metrics, /health); ${settings.capture ? capturing : 'capture off'}`
  )
}
