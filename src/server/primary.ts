import type {ResolvedConfig} from '../config/resolve.js'
import {shareFailpoints} from '../util/failpoints.js'
import net from 'node:net'
import {startAdmin} from './admin.js'
import {eventIngest, eventsToken} from './events.js'
import {hooksFrom} from './hooks.js'
import type {AppProcess} from './app-process.js'
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
  log: (m: string) => void,
  env: Record<string, string>,
): Promise<{app: AppProcess; stop: Stop} | undefined> {
  if (!config.command?.length) return undefined
  // loaded only here: a proxy in front of a running app (--upstream) needs none of execa's 130 modules in its heap
  const {spawnApp} = await import('./app-process.js')
  const app = await spawnApp(config.command, {log, env})
  return {
    app,
    async stop(deadline) {
      await app.stop('SIGTERM', deadline.left())
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
    const app = parts.add('the app', await startApp(config, log, appEnv))?.app
    if (app) plan.settings.upstream = `http://127.0.0.1:${app.port}`
    const priority = proxyPriority(log)
    const delivery = parts.add('shipping', await startDelivery(plan, config, log, (catchingUp) => priority.set(catchingUp)))
    const intake = parts.add('the journal housekeeping', watchIntake(plan, config, delivery, log))
    const events = eventIngest(plan, config, {token, hooks: await hooksFrom(plan.settings.configFile), full: () => intake.full()})
    parts.add('the events journal', () => events.close())
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
