import http from 'node:http'
import type {Alerts} from './alerts.js'
import type {Delivery} from './delivery.js'
import type {EventIngest} from './events.js'
import type {Intake} from './intake.js'
import type {MaintenanceState} from './maintenance.js'
import type {Deadline} from './lifecycle.js'
import type {ProxyPriority} from './proxy-priority.js'
import type {RunPlan} from './run-plan.js'
import {liveWorkers} from './workers.js'

/** What /health reports: the state of the journal, the workers and each sink. */
function health(
  plan: RunPlan,
  intake: Intake,
  delivery: Delivery,
  priority: ProxyPriority,
  events: EventIngest,
  maintenance?: {state(): MaintenanceState},
  alerts?: Alerts,
): {code: number; body: Record<string, unknown>} {
  const {journalMax, whenFull} = plan
  const full = intake.full()
  // a sink holding more than half the journal when it is full is the one that keeps it full (down, or too slow)
  const bytes = intake.journalBytes()
  const pending = intake.pendingBytes()
  const sinksState = Object.fromEntries(
    delivery.stats().map((s) => [
      s.name,
      {
        lagBytes: s.lagBytes,
        lagSeconds: Math.floor((s.lagMs ?? 0) / 100) / 10, // at least (as the metric): tenths, rounded down
        deferred: s.deferred,
        rejected: s.rejected,
        lastError: s.lastError ?? null,
        ...(s.integrity ? {integrity: s.integrity} : {}),
        fillingJournal: full && s.lagBytes >= pending / 2,
      },
    ]),
  )
  const workers = liveWorkers().length
  const up = workers > 0
  const status = !up ? 'starting' : full ? (whenFull === 'block' ? 'blocking' : 'dropping') : 'ok'
  return {
    code: up ? 200 : 503,
    body: {
      status,
      workers,
      journalFull: full,
      journal: {bytes, pendingBytes: pending, maxBytes: journalMax, whenFull},
      requestsWaiting: intake.waiting(),
      catchingUp: priority.catchingUp,
      paced: intake.paced(),
      sinks: sinksState,
      events: events.counts(),
      ...(maintenance ? {maintenance: maintenance.state()} : {}),
      ...(alerts ? {alerts: alerts.state()} : {}),
    },
  }
}

/** Serves /metrics and /health on the admin address; stop closes it, its open connections at the deadline. */
export async function startAdmin(
  plan: RunPlan,
  intake: Intake,
  delivery: Delivery,
  priority: ProxyPriority,
  events: EventIngest,
  maintenance?: {state(): MaintenanceState},
  alerts?: Alerts,
): Promise<{stop(deadline: Deadline): Promise<void>}> {
  const {metrics} = intake
  const server = http.createServer(async (req, res) => {
    if (req.url === '/metrics') {
      res.writeHead(200, {'content-type': metrics.registry.contentType})
      res.end(await metrics.registry.metrics())
    } else if (req.url?.split('?', 1)[0] === '/_audit/events') {
      events.handle(req, res)
    } else if (req.url === '/health') {
      const {code, body} = health(plan, intake, delivery, priority, events, maintenance, alerts)
      res.writeHead(code, {'content-type': 'application/json'})
      res.end(JSON.stringify(body))
    } else {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>((resolve) => server.listen(plan.admin.port, plan.admin.host, resolve))
  return {
    async stop(deadline) {
      const cut = setTimeout(() => server.closeAllConnections(), deadline.left())
      await new Promise<void>((resolve) => server.close(() => resolve()))
      clearTimeout(cut)
    },
  }
}
