import type {ResolvedConfig} from '../config/resolve.js'
import {AuditLogsError, ExitCode} from '../errors.js'
import {shareFailpoints} from '../util/failpoints.js'
import net from 'node:net'
import {startAdmin} from './admin.js'
import {eventIngest, eventsToken} from './events.js'
import {hooksFrom} from './hooks.js'
import type {AppProcess} from './app-process.js'
import type {RunPlan} from './run-plan.js'
import {startDelivery} from './delivery.js'
import {watchIntake} from './intake.js'
import {Parts, type Stop} from './lifecycle.js'
import {proxyPriority} from './proxy-priority.js'
import {claimRunDirectories, describeRun, planRun} from './run-plan.js'
import {watchSignals} from './signals.js'
import {startWorkers} from './workers.js'

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

/** Spawns the app given after --, if any: its stop sends SIGTERM, and SIGKILL at the deadline. */
async function startApp(
  config: ResolvedConfig,
  plan: RunPlan,
  log: (m: string) => void,
  env: Record<string, string>,
): Promise<{app: AppProcess; stop: Stop} | undefined> {
  if (!config.command?.length) return undefined
  // loaded only here: a proxy in front of a running app (--upstream) needs none of execa's 130 modules in its heap
  const {spawnApp} = await import('./app-process.js')
  const output =
    config.captureOutput && plan.settings.capture
      ? (await import('./app-output.js')).outputCapture(plan.settings, {maxLineBytes: config.outputMaxLineBytes})
      : undefined
  const app = await spawnApp(config.command, {log, env, output: output?.write}).catch((error: Error) => {
    output?.close()
    throw error
  })
  // its last lines are recorded when it exits (while shipping still delivers, in a shutdown)
  if (output) void app.exited.then(() => output.close())
  return {
    app,
    async stop(deadline) {
      await app.stop('SIGTERM', deadline.left())
    },
  }
}

/** The egress proxy (egressBind), recording the app's outbound calls into the journal; stopped after the app. */
async function startEgress(
  config: ResolvedConfig,
  plan: RunPlan,
  log: (m: string) => void,
): Promise<({address: string} & {stop: Stop}) | undefined> {
  if (!config.egressBind) return undefined
  const {createEgressProxy} = await import('../capture/egress.js')
  const {Masker} = await import('../capture/masking.js')
  const {JournalWriter} = await import('../pipeline/journal.js')
  const {parseHostPort} = await import('./settings.js')
  const s = plan.settings
  const journal = s.capture ? new JournalWriter(s.journalDir, `${Date.now().toString(36)}-${process.pid}-egress`) : undefined
  const {server, closeTunnels} = createEgressProxy({
    masker: new Masker({fields: s.sensitiveFields, headers: s.sensitiveHeaders}),
    bodyLimit: s.bodyLimit,
    instance: s.instance,
    emit: (line) => journal?.append(line),
  })
  const {host, port} = parseHostPort('egressBind', config.egressBind)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  }).catch((error: NodeJS.ErrnoException) => {
    journal?.close()
    throw new AuditLogsError(
      `Cannot listen on ${config.egressBind} (egress-bind): ${error.code === 'EADDRINUSE' ? 'the port is already in use' : error.message}`,
      {
        exit: ExitCode.usage,
      },
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
      journal?.close()
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
export async function runServer(config: ResolvedConfig, log: (m: string) => void): Promise<RunSummary> {
  const plan = await planRun(config)
  const shutdown = watchSignals(log, shutdownLimitMs(config))
  const parts = new Parts(log)
  parts.add('the signal handlers', () => shutdown.stop()) // stopped last: from then on a signal ends the process again
  try {
    parts.add('the failpoints', shareFailpoints())
    parts.add('the directory claims', claimRunDirectories(plan, config.fileSink))
    // where the app sends its events (the admin listener), and the token they take: given to the app it spawns
    const token = eventsToken(config)
    const adminHost = ['0.0.0.0', '::', ''].includes(plan.admin.host) ? '127.0.0.1' : plan.admin.host
    const appEnv: Record<string, string> = {
      AUDIT_LOGS_EVENTS_URL: `http://${net.isIPv6(adminHost) ? `[${adminHost}]` : adminHost}:${plan.admin.port}/_audit/events`,
      ...(token ? {AUDIT_LOGS_EVENTS_TOKEN: token} : {}),
    }
    const egress = parts.add('the egress proxy', await startEgress(config, plan, log))
    if (egress) {
      const proxy = `http://${egress.address}`
      Object.assign(appEnv, {HTTP_PROXY: proxy, HTTPS_PROXY: proxy, http_proxy: proxy, https_proxy: proxy})
    }
    const app = parts.add('the app', await startApp(config, plan, log, appEnv))?.app
    if (app) plan.settings.upstream = `http://127.0.0.1:${app.port}`
    const priority = proxyPriority(log)
    const delivery = parts.add('shipping', await startDelivery(plan, config, log, (catchingUp) => priority.set(catchingUp)))
    const intake = parts.add('the journal housekeeping', watchIntake(plan, config, delivery, log))
    const events = eventIngest(plan, config, {token, hooks: await hooksFrom(plan.settings.configFile), full: () => intake.full()})
    parts.add('the events journal', () => events.close())
    intake.metrics.watchEvents(() => events.counts())
    parts.add('the admin listener', await startAdmin(plan, intake, delivery, priority, events))
    const workers = startWorkers(plan.settings, config.workers, {
      log,
      stopping: () => shutdown.stopping,
      listening(w) {
        intake.greet(w)
        priority.greet(w.process.pid)
      },
      counts: intake.counts,
      exited: intake.forget,
    })
    parts.add('the proxy workers', async (deadline) => {
      await workers.stop(deadline.sooner(SHUTDOWN_MARGIN_MS / 2))
      // nothing reaches the app any more: it shuts down while the sinks deliver, with the time left of the whole limit
      app?.terminate()
    })
    await workers.listening
    log(describeRun(plan, delivery.names))
    // run until a signal (maybe one that came while starting), or until the app exits
    const exitCode = await shutdown.running({
      app,
      onHangup() {
        delivery.reopen()
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
