import cluster, {type Worker} from 'node:cluster'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import type {ResolvedConfig} from '../base-command.js'
import {AuditLogsError, ExitCode} from '../errors.js'
import {claimDirectory} from '../util/claim.js'
import {writableDir} from '../util/dirs.js'
import {shareFailpoints} from '../util/failpoints.js'
import {MODES} from '../util/files.js'
import {canRestorePriority, processThreadsAt} from '../util/priority.js'
import {probePort} from '../util/process.js'
import {journalBytes} from '../pipeline/journal.js'
import {journalBound} from '../pipeline/journal-bound.js'
import {formatBytes} from '../util/parse.js'
import {Metrics} from '../pipeline/metrics.js'
import type {AppProcess} from './app-process.js'
import {ForegroundLoad} from './foreground.js'
import {LagPacer} from './pacing.js'
import {prepareDatabase} from './database.js'
import {assertDistinctAddresses, parseHostPort, workerSettings} from './settings.js'
import {type Shipping, startShipping} from './shipping.js'
import type {ToPrimary, ToWorker} from './worker.js'

export type RunSummary = {exitCode: number; requests: number; captured: number; dropped: number; refused: number; written: Record<string, number>; rejected: Record<string, number>}

/**
 * How far the proxy workers' nice value goes up while the sinks catch up: at 15 (weight 36 against
 * 1024) the shipping thread and the app win a contended core, while the proxy still runs whenever
 * they wait (measured: the PostgreSQL sink's lag then stays flat under a saturating POST load).
 */
const PROXY_YIELD_NICE = 15

const here = fileURLToPath(import.meta.url)
const WORKER_ENTRY = path.join(path.dirname(here), here.endsWith('.ts') ? 'worker-main.ts' : 'worker-main.js')

async function assertPortFree(host: string, port: number, what: string): Promise<void> {
  const probe = await probePort(port, host)
  if ('error' in probe) {
    const {error} = probe
    throw new AuditLogsError(`Cannot listen on ${host}:${port} (${what}): ${error.code === 'EADDRINUSE' ? 'the port is already in use' : error.message}`, {exit: ExitCode.usage, suggestions: [`Choose another with --${what === 'bind' ? 'bind' : 'admin-bind'} HOST:PORT`]})
  }
}

/**
 * The primary process of `audit-logs run`: spawns the app (optional), forks
 * the proxy workers, ships the journal to the sinks, serves /metrics and
 * /health, and shuts everything down in order. Resolves with the exit code.
 */
export async function runServer(config: ResolvedConfig, log: (m: string) => void): Promise<RunSummary> {
  const settings = workerSettings(config)
  const admin = parseHostPort('adminBind', config.adminBind)
  if (!settings.upstream && !config.command?.length) {
    throw new AuditLogsError('Nothing to proxy: give --upstream URL, or the app to spawn after --', {exit: ExitCode.usage, suggestions: ['audit-logs run --upstream http://127.0.0.1:3000', 'audit-logs run -- node server.js']})
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
  // the lag past which the sinks catch up (and under which the intake is never paced)
  const catchUpBytes = Math.min(config.catchUpLagBytes, Math.floor(journalMax / 4))
  // with no sink, nothing ever empties the journal: holding requests at its bound would hold them for good
  const whenFull = config.fileSink || config.databaseSink ? config.whenFull : 'drop'
  settings.whenFull = whenFull

  const releasers: Array<() => Promise<void> | void> = []
  // SIGINT/SIGTERM from here on stop gracefully, one that comes while starting too (once started). A
  // signal during the shutdown does not cut it short: `timeout`, systemd and a terminal may signal the
  // primary and its process group both, and the second one used to kill the primary before the journal
  // was flushed and the sinks drained.
  let stopping = false
  let signalled = false
  let stopped: (code: number) => void = () => {}
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return log(`${signal}: already shutting down (at most ${Math.ceil(config.shutdownTimeoutMs / 1000)} s more; SIGKILL stops at once, the journal keeps what the sinks lack)`)
    signalled = true
    stopping = true
    log(`${signal}: shutting down (in-flight requests finish, the journal is flushed)`)
    stopped(0)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  releasers.push(() => {
    // released last: from then on a signal ends the process again
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  })
  const release = async () => {
    for (const r of releasers.reverse()) await Promise.resolve(r()).catch((e) => log(`shutdown: ${(e as Error).message}`))
    releasers.length = 0
  }
  try {
    releasers.push(shareFailpoints())
    if (settings.capture) {
      // One run per journal and per log directory: a second run on the journal would ship the first
      // one's records to its own sinks; two on one log directory would rotate and cut each other's files.
      const taken = (what: string, dir: string, setting: string) => ({pid}: {pid: number}): never => {
        throw new AuditLogsError(`The ${what} ${dir} is in use by another audit-logs run (pid ${pid})`, {exit: ExitCode.usage, suggestions: [`Give each run its own ${setting}`]})
      }
      releasers.push(claimDirectory(settings.journalDir, 'owner.pid', taken('journal directory', settings.journalDir, journalSetting)))
      if (config.fileSink) releasers.push(claimDirectory(logDir, '.audit-logs-owner.pid', taken('log directory', logDir, logSetting)))
    }
    const workers = () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => Boolean(w))
    let app: AppProcess | undefined
    if (config.command?.length) {
      // loaded only here: a proxy in front of a running app (--upstream) needs none of execa's 130 modules in its heap
      const {spawnApp} = await import('./app-process.js')
      app = await spawnApp(config.command, {log})
      settings.upstream = `http://127.0.0.1:${app.port}`
      releasers.push(async () => {
        await app!.stop('SIGTERM', config.shutdownTimeoutMs)
      })
    }

    // While the sinks catch up (catchUpLagBytes behind), the proxy workers yield the CPU to them: their
    // nice value PROXY_YIELD_NICE above the primary's, back to it once the sinks have caught up. So
    // under a sustained saturating load the proxy is served at the rate the sinks keep, and their lag
    // stays bounded. Only where the priority can be given back (root, CAP_SYS_NICE, RLIMIT_NICE):
    // raising a nice value needs no privilege, lowering it does, and a proxy left slowed would lose
    // against the app for good.
    const base = os.getPriority(process.pid)
    const mayYield = canRestorePriority()
    let catchingUp = false
    let proxyYields = false
    let told = false
    const yieldProxy = (now: boolean) => {
      if (now && !mayYield && !told && (told = true)) log('the sinks are catching up; the proxy workers are not made to yield to them: this user cannot give them their priority back afterwards (it needs CAP_SYS_NICE or RLIMIT_NICE)')
      catchingUp = now
      if (!mayYield || now === proxyYields) return
      proxyYields = now
      for (const w of workers()) if (w.process.pid) processThreadsAt(w.process.pid, now ? base + PROXY_YIELD_NICE : base)
    }
    // sinks and shippers (on the shipping thread): the journal is the durability point, each sink has its own checkpoint
    const sinkNames: string[] = []
    let shipping: Shipping | undefined
    if (settings.capture && (config.fileSink || config.databaseSink)) {
      let databaseUrl: string | undefined
      if (config.databaseSink) {
        const db = await prepareDatabase(config, log)
        releasers.push(() => db.target.release())
        releasers.push(() => db.stop())
        databaseUrl = db.target.databaseUrl
      }
      const files = config.fileSink ? {dir: logDir, maxBytes: config.logMaxBytes, backupCount: config.logBackupCount} : undefined
      if (files) sinkNames.push('files')
      if (databaseUrl) sinkNames.push('postgres')
      shipping = await startShipping(
        {journalDir: settings.journalDir, files, databaseUrl, nice: config.backgroundNice, catchUpBytes, defer: {ms: config.shippingDeferMs}},
        log,
        (catchingUp) => yieldProxy(catchingUp),
      )
      releasers.push(() => shipping!.stop(config.shutdownTimeoutMs))
    }
    const sinkStats = () => shipping?.stats() ?? []

    // journal housekeeping: enforce the disk bound (the shipping thread deletes what every sink has).
    // Checked four times a second; the journal counts as full again below 90% of the bound, so it
    // does not flap between the two states. At the bound, whenFull decides: the workers hold new
    // requests (block) or drop their records (drop). Either way the log says which sinks hold it.
    let full = false
    const broadcast = (msg: ToWorker) => workers().forEach((w) => w.isConnected() && w.send(msg))
    const behind = () => sinkStats().filter((s) => s.lagBytes > 0).map((s) => `${s.name} ${formatBytes(s.lagBytes)} behind${s.lastError ? ` (${s.lastError})` : ''}`).join(', ') || 'none behind'
    // What some sink still lacks, from the shipping thread's figures while they are fresh (a second);
    // else the journal's size on disk, which counts delivered records too but is never stale.
    const freshStats = () => (shipping && Date.now() - shipping.statsAt() < 1000 ? sinkStats() : undefined)
    const pendingBytes = () => {
      const stats = freshStats()
      return stats ? Math.max(0, ...stats.map((s) => s.lagBytes)) : journalBytes(settings.journalDir)
    }
    // whenFull: block also paces the intake by the sinks' lag in time (see LagPacer)
    const pacer = new LagPacer(whenFull === 'block' ? config.maxSinkLagMs : 0, catchUpBytes)
    let pacedSince = 0
    let pacedTimes = 0
    // shipping steps aside while the proxy is saturated (see ShippingSettings.defer)
    const foreground = new ForegroundLoad()
    const housekeeping = setInterval(() => {
      if (foreground.update()) shipping?.foreground(foreground.busy)
      if (!settings.capture) return
      // what fills the journal is what some sink still lacks: bytes already delivered wait in a segment
      // that is still being written (up to 16 MiB a worker) and are freed when it is sealed, which under
      // backpressure could never happen
      const stats = freshStats()
      if (stats && pacer.update(stats)) {
        broadcast({type: 'sinks-behind', behind: pacer.paced})
        const w = pacer.worst
        if (pacer.paced) pacedTimes++
        if (pacer.paced && Date.now() - pacedSince > 60_000) {
          log(`the sink ${w?.name} is ${Math.round((w?.lagMs ?? 0) / 1000)} s behind at its pace (${formatBytes(w?.lagBytes ?? 0)}; maxSinkLagMs ${config.maxSinkLagMs}): new requests are paced to the rate the sinks keep (logged at most once a minute; ${pacedTimes} time(s) so far)`)
          pacedSince = Date.now()
        }
      }
      const bytes = pendingBytes()
      const nowFull = full ? bytes >= journalMax * 0.9 : bytes >= journalMax
      if (nowFull !== full) {
        full = nowFull
        const held = `the journal holds ${formatBytes(bytes)}, its bound (${formatBytes(journalMax)}); sinks: ${behind()}`
        if (!full) log(`the journal is below 90% of its bound again (${formatBytes(bytes)}); ${whenFull === 'block' ? 'new requests are let in' : 'records are kept'}`)
        else if (whenFull === 'block') log(`ALERT: ${held}. New requests WAIT until the sinks make room (whenFull: block; after ${config.blockTimeoutMs} ms a waiting request gets 503)`)
        else log(`ALERT: ${held}. New records are DROPPED and counted until the sinks catch up (whenFull: drop)`)
        broadcast({type: 'journal-full', full})
      }
    }, 250)
    releasers.push(() => clearInterval(housekeeping))

    const waiting = new Map<number, number>() // requests waiting at each worker's gate, as last reported
    const metrics = new Metrics(sinkStats, () => (settings.capture ? journalBytes(settings.journalDir) : 0), () => workers().length, {
      journalMax,
      full: () => full,
      paced: () => pacer.paced,
      waiting: () => [...waiting.values()].reduce((a, b) => a + b, 0),
    })
    const adminServer = http.createServer(async (req, res) => {
      if (req.url === '/metrics') {
        res.writeHead(200, {'content-type': metrics.registry.contentType})
        res.end(await metrics.registry.metrics())
      } else if (req.url === '/health') {
        // a sink holding more than half the journal when it is full is the one that keeps it full (down, or too slow)
        const bytes = settings.capture ? journalBytes(settings.journalDir) : 0
        const pending = settings.capture ? pendingBytes() : 0
        const sinksState = Object.fromEntries(
          sinkStats().map((s) => [s.name, {lagBytes: s.lagBytes, deferred: s.deferred, rejected: s.rejected, lastError: s.lastError ?? null, fillingJournal: full && s.lagBytes >= pending / 2}]),
        )
        const up = workers().length > 0
        const status = !up ? 'starting' : full ? (whenFull === 'block' ? 'blocking' : 'dropping') : 'ok'
        res.writeHead(up ? 200 : 503, {'content-type': 'application/json'})
        res.end(JSON.stringify({status, workers: workers().length, journalFull: full, journal: {bytes, pendingBytes: pending, maxBytes: journalMax, whenFull}, requestsWaiting: metrics.waiting(), catchingUp, paced: pacer.paced, sinks: sinksState}))
      } else {
        res.writeHead(404).end()
      }
    })
    await new Promise<void>((resolve) => adminServer.listen(admin.port, admin.host, resolve))
    releasers.push(() => new Promise<void>((resolve) => adminServer.close(() => resolve())))

    // workers
    // A small young generation keeps each worker's RSS down; its scavenges are cheap at this size.
    cluster.setupPrimary({exec: WORKER_ENTRY, execArgv: [...process.execArgv, '--max-semi-space-size=2'], silent: false})
    let startupError: string | undefined
    let lastDropAlert = 0
    const fork = () => {
      const w = cluster.fork({AUDIT_LOGS_WORKER_SETTINGS: JSON.stringify(settings)})
      w.on('message', (msg: ToPrimary) => {
        if (msg.type === 'listening') {
          // the state as it is now (it may have changed since the fork): the new worker's gate, and its priority
          if (full) w.send({type: 'journal-full', full: true} satisfies ToWorker)
          if (pacer.paced) w.send({type: 'sinks-behind', behind: true} satisfies ToWorker)
          if (proxyYields && w.process.pid) processThreadsAt(w.process.pid, base + PROXY_YIELD_NICE)
        }
        if (msg.type === 'counts') {
          metrics.add(msg)
          waiting.set(w.id, msg.waiting)
          if (foreground.report(w.id, msg.elu)) shipping?.foreground(foreground.busy)
          // the journal-full alert is logged where it starts; drops of a builder behind its proxy are reported here, at most every 10 s
          if ((msg.dropped > 0 || msg.problem) && !full && Date.now() - lastDropAlert > 10_000) {
            lastDropAlert = Date.now()
            log(`ALERT: ${msg.dropped} records dropped: ${msg.problem ?? 'see the worker log'}; ${metrics.totals.dropped} dropped so far`)
          }
        }
        if (msg.type === 'listen-error') startupError = msg.message
      })
      return w
    }
    const listening = Array.from({length: config.workers}, () => fork()).map(
      (w) => new Promise<void>((resolve, reject) => {
        w.on('message', (msg: ToPrimary) => msg.type === 'listening' && resolve())
        w.on('exit', () => reject(new AuditLogsError(`A proxy worker could not start: ${startupError ?? 'it exited'}`, {exit: ExitCode.failure})))
      }),
    )
    let lastRestart = 0
    cluster.on('exit', (w, code, signal) => {
      waiting.delete(w.id)
      if (stopping) return
      log(`worker ${w.process.pid} died (${signal ?? `code ${code}`}); starting a replacement`)
      const wait = Date.now() - lastRestart < 1000 ? 1000 : 0 // a crash loop must not spin
      lastRestart = Date.now()
      setTimeout(() => !stopping && fork(), wait)
    })
    const stopWorkers = async () => {
      stopping = true
      const all = workers()
      broadcast({type: 'shutdown'})
      await Promise.all(all.map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve())))))
    }
    releasers.push(stopWorkers)
    await Promise.all(listening)
    const journalNote = bound.derived ? `, a quarter of the ${formatBytes(bound.derived.freeBytes)} free, within 1-64 GiB; journalMaxBytes sets it` : ''
    const capturing = `capturing to ${sinkNames.join(' and ') || 'the journal only'} (journal bound ${formatBytes(journalMax)}${journalNote}; when full: ${whenFull})`
    log(`listening on http://${settings.bind.host}:${settings.bind.port} → ${settings.upstream}; admin on http://${admin.host}:${admin.port} (/metrics, /health); ${settings.capture ? capturing : 'capture off'}`)

    // run until a signal (maybe one that came while starting), or until the app exits
    const exitCode = await new Promise<number>((resolve) => {
      if (signalled) return resolve(0)
      stopped = resolve
      process.on('SIGHUP', () => {
        log('SIGHUP: reopening log files')
        shipping?.reopen()
        app?.child.kill('SIGHUP')
      })
      app?.exited.then((code) => {
        if (stopping) return
        log(`the app exited with code ${code}; shutting down`)
        resolve(code)
      })
    })
    await release()
    const written = Object.fromEntries(sinkStats().map((s) => [s.name, s.written]))
    const rejected = Object.fromEntries(sinkStats().map((s) => [s.name, s.rejected]))
    return {exitCode, ...metrics.totals, written, rejected}
  } catch (error) {
    await release()
    throw error
  }
}
