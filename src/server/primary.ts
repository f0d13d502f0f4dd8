import type {ResolvedConfig} from '../config/resolve.js'
import {AuditLogsError, ExitCode} from '../errors.js'
import {shareFailpoints} from '../util/failpoints.js'
import net from 'node:net'
import os from 'node:os'
import {alertSettings} from '../alerts/settings.js'
import {startAdmin} from './admin.js'
import {startAlerts} from './alerts.js'
import {eventIngest, eventsToken} from './events.js'
import {Masker} from '../capture/masking.js'
import type {Hooks} from '../capture/record.js'
import {ownRecords} from './own-records.js'
import type {ServerLog} from './server-log.js'
import {eventsUrl, parseHostPort} from './settings.js'
import {isLoopback} from '../util/net.js'
import {hooksFrom} from './hooks.js'
import type {AppProcess} from './app-process.js'
import type {RunPlan} from './run-plan.js'
import {startDelivery} from './delivery.js'
import {startMaintenance} from './maintenance.js'
import {watchIntake} from './intake.js'
import {Parts, type Stop} from './lifecycle.js'
import {proxyPriority} from './proxy-priority.js'
import {claimRunDirectories, describeRun, planRun} from './run-plan.js'
import {watchSignals} from './signals.js'
import {startViewer} from './viewer.js'
import {broadcast, startWorkers} from './workers.js'

export type RunSummary = {
  exitCode: number
  requests: number
  captured: number
  dropped: number
  refused: number
  written: Record<string, number>
  rejected: Record<string, number>
}

/**
 * The one limit of a shutdown is shutdownTimeoutMs and this much more: in-flight requests get
 * shutdownTimeoutMs (the workers' own bound), the journal's flush, the sinks' last deliveries and
 * the app's own shutdown share the rest; whatever has not stopped by then is killed (the journal
 * keeps what the sinks lack). The workers are killed half of it earlier, so that one that hangs
 * leaves time to the parts stopped after it.
 */
export const SHUTDOWN_MARGIN_MS = 5000
export const shutdownLimitMs = (config: Pick<ResolvedConfig, 'shutdownTimeoutMs'>): number => config.shutdownTimeoutMs + SHUTDOWN_MARGIN_MS

/** What the primary's own records (the app's output, its outbound calls) need: the journal's bound, the counts, the mask() hook. */
type OwnContext = {full: () => boolean; counts: (c: {captured: number; dropped: number}) => void; hooks: Hooks}

/**
 * Spawns the app given after --, if any: its stop sends SIGTERM, and SIGKILL at the deadline. Stopped
 * after the proxy workers and before the admin listener, the egress proxy and shipping: what it sends
 * while it shuts down (its last events, outbound calls, output lines) is still taken and delivered.
 */
async function startApp(
  config: ResolvedConfig,
  plan: RunPlan,
  log: (m: string) => void,
  env: Record<string, string>,
  own: OwnContext,
): Promise<{app: AppProcess; stop: Stop} | undefined> {
  if (!config.command?.length) return undefined
  // loaded only here: a proxy in front of a running app (--upstream) needs none of execa's 130 modules in its heap
  const {spawnApp} = await import('./app-process.js')
  const output =
    config.captureOutput && plan.settings.capture
      ? (await import('./app-output.js')).outputCapture(plan.settings, {
          maxLineBytes: config.outputMaxLineBytes,
          mask: own.hooks.mask,
          records: ownRecords(plan.settings.journalDir, 'app', {...own, log}),
        })
      : undefined
  // a pipe is not a terminal: Python would buffer its output in blocks, and lines would come late or be lost on a kill
  if (output && process.env.PYTHONUNBUFFERED === undefined) env.PYTHONUNBUFFERED = '1'
  const app = await spawnApp(config.command, {log, env, output: output?.write}).catch((error: Error) => {
    output?.close()
    throw error
  })
  return {
    app,
    async stop(deadline) {
      await app.stop('SIGTERM', deadline.left())
      output?.close() // its last, unfinished line too
    },
  }
}

/** The egress proxy (egressBind), recording the app's outbound calls into the journal; stopped after the app. */
/** The egress proxy's address, refused unless loopback: checked before anything starts (the embedded database, above all). */
function egressAddress(config: ResolvedConfig): {host: string; port: number} | undefined {
  if (!config.egressBind) return undefined
  const {host, port} = parseHostPort('egressBind', config.egressBind)
  // with no credentials to ask for, anyone who reaches it could relay through this host (to the admin listener, a cloud's metadata address)
  if (!isLoopback(host))
    throw new AuditLogsError(`egressBind ${config.egressBind} is not a loopback address: anyone who reached it could use it as a proxy`, {
      exit: ExitCode.usage,
      suggestions: ['Bind it to 127.0.0.1 or [::1], where the app runs: --egress-bind 127.0.0.1:9480'],
    })
  return {host, port}
}

async function startEgress(
  config: ResolvedConfig,
  plan: RunPlan,
  log: (m: string) => void,
  own: OwnContext,
): Promise<({address: string} & {stop: Stop}) | undefined> {
  const listen = egressAddress(config)
  if (!listen) return undefined
  const {host, port} = listen
  const {createEgressProxy} = await import('../capture/egress.js')
  const s = plan.settings
  const records = s.capture ? ownRecords(s.journalDir, 'egress', {...own, log}) : undefined
  const {server, closeTunnels} = createEgressProxy({
    masker: Masker.of(s),
    bodyLimit: s.bodyLimit,
    instance: s.instance,
    mask: own.hooks.mask,
    emit: (line) => records?.append(line),
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  }).catch((error: NodeJS.ErrnoException) => {
    records?.close()
    throw new AuditLogsError(
      `Cannot listen on ${config.egressBind} (egress-bind): ${error.code === 'EADDRINUSE' ? 'the port is already in use' : error.message}`,
      {exit: ExitCode.usage},
    )
  })
  const bound = server.address() as net.AddressInfo
  const address = `${net.isIPv6(bound.address) ? `[${bound.address}]` : bound.address}:${bound.port}`
  log(`egress proxy on http://${address}: the app's outbound calls are recorded (outbound records)`)
  return {
    address,
    async stop(deadline) {
      const cut = setTimeout(() => server.closeAllConnections(), deadline.left())
      closeTunnels() // and kept-alive connections: the app is gone
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      clearTimeout(cut)
      records?.close()
    },
  }
}

/**
 * The primary process of `audit-logs run`: spawns the app (optional), forks
 * the proxy workers, ships the journal to the sinks, serves /metrics and
 * /health, and shuts everything down in the reverse order (stop accepting and
 * drain the workers, flush the journal to the sinks, stop the app, release the
 * claims), within the one shutdown limit. Resolves with the exit code.
 */
export async function runServer(
  config: ResolvedConfig,
  log: (m: string) => void,
  serverLog?: Pick<ServerLog, 'toFile' | 'worker' | 'reopen'>,
): Promise<RunSummary> {
  const alerting = alertSettings(config, config.instance ?? os.hostname()) // refused before anything starts
  egressAddress(config) // so is an egress address that is not loopback
  const plan = await planRun(config)
  const shutdown = watchSignals(log, shutdownLimitMs(config))
  const parts = new Parts(log)
  parts.add('the signal handlers', () => shutdown.stop()) // stopped last: from then on a signal ends the process again
  try {
    parts.add('the failpoints', shareFailpoints())
    parts.add('the directory claims', claimRunDirectories(plan, config.fileSink))
    const priority = proxyPriority(log)
    const delivery = parts.add('shipping', await startDelivery(plan, config, log, (catchingUp) => priority.set(catchingUp)))
    const intake = parts.add('the journal housekeeping', watchIntake(plan, config, delivery, log))
    const maintenance = config.maintenance
      ? parts.add(
          'maintenance',
          startMaintenance(
            config,
            {databaseUrl: delivery.databaseUrl, mongo: delivery.mongo, instance: plan.settings.instance},
            intake.metrics.registry,
            log,
          ),
        )
      : undefined
    const hooks = await hooksFrom(plan.settings.configFile)
    // where the app sends its events (the admin listener), and the token they take: given to the app it spawns
    const token = eventsToken(config)
    const events = eventIngest(plan, config, {token, hooks, full: () => intake.full()})
    parts.add('the events journal', () => events.close())
    intake.metrics.watchEvents(() => events.counts())
    const alerts = alerting
      ? parts.add(
          'the alerts',
          await startAlerts(alerting, {intake, delivery, capture: plan.settings.capture, journalMax: plan.journalMax}, log),
        )
      : undefined
    parts.add('the admin listener', await startAdmin(plan, intake, delivery, priority, events, maintenance, alerts))
    const own: OwnContext = {
      full: () => intake.full(),
      counts: (c) => intake.metrics.add({requests: 0, ...c}),
      hooks,
    }
    const appEnv: Record<string, string> = {AUDIT_LOGS_EVENTS_URL: eventsUrl(config), ...(token ? {AUDIT_LOGS_EVENTS_TOKEN: token} : {})}
    const viewer = parts.add('the web viewer', await startViewer(config, {url: eventsUrl(config), token}, log))
    if (viewer) log(`web viewer on ${viewer.url}`)
    const egress = parts.add('the egress proxy', await startEgress(config, plan, log, own))
    if (egress) {
      const proxy = `http://${egress.address}`
      Object.assign(appEnv, {HTTP_PROXY: proxy, HTTPS_PROXY: proxy, http_proxy: proxy, https_proxy: proxy})
      // the app's calls to this host (its events, above all) go direct, unless its own NO_PROXY says otherwise
      if (process.env.NO_PROXY === undefined && process.env.no_proxy === undefined)
        Object.assign(appEnv, {NO_PROXY: 'localhost,127.0.0.1,::1', no_proxy: 'localhost,127.0.0.1,::1'})
    }
    const app = parts.add('the app', await startApp(config, plan, log, appEnv, own))?.app
    if (app) plan.settings.upstream = `http://127.0.0.1:${app.port}`
    const workers = startWorkers(
      plan.settings,
      config.workers,
      {
        log,
        stopping: () => shutdown.stopping,
        listening(w) {
          intake.greet(w)
          priority.greet(w.process.pid)
        },
        counts: intake.counts,
        exited: intake.forget,
      },
      serverLog?.toFile ? serverLog.worker : undefined,
    )
    parts.add('the proxy workers', async (deadline) => {
      await workers.stop(deadline.sooner(SHUTDOWN_MARGIN_MS / 2))
      // nothing reaches the app any more: it shuts down (the next part waits for it), then the sinks deliver what it left
      app?.terminate()
    })
    await workers.listening
    log(describeRun(plan, delivery.names))
    // run until a signal (maybe one that came while starting), or until the app exits
    const exitCode = await shutdown.running({
      app,
      onHangup() {
        delivery.reopen()
        serverLog?.reopen() // errorLog: the primary's lines and the workers' stderr (it passes them on)
        broadcast({type: 'reopen'}) // the workers' access log files (accessLog)
        app?.child.kill('SIGHUP')
      },
    })
    await parts.stop(shutdown.begin())
    const sinks = delivery.stats()
    return {
      exitCode,
      ...intake.metrics.totals,
      written: Object.fromEntries(sinks.map((s) => [s.name, s.written])),
      rejected: Object.fromEntries(sinks.map((s) => [s.name, s.rejected])),
    }
  } catch (error) {
    await parts.stop(shutdown.begin())
    throw error
  }
}
