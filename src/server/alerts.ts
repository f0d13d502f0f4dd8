import {Counter, Gauge} from 'prom-client'
import {AlertEvaluator, type AlertSample} from '../alerts/conditions.js'
import {type Channel, Outbox, emailChannel, webhookChannel} from '../alerts/channels.js'
import type {AlertSettings} from '../alerts/settings.js'
import {redactText} from '../util/redact.js'
import type {Delivery} from './delivery.js'
import type {Intake} from './intake.js'
import {type Deadline, settledBy} from './lifecycle.js'

/** How often the primary's state is sampled: conditions are seen within a second, and a tick costs a directory listing at most. */
export const ALERT_TICK_MS = 1000

export type Alerts = {
  /** for /health: the conditions on now, and each channel's counts */
  state(): {active: string[]; sent: Record<string, number>; failures: Record<string, number>}
  stop(deadline: Deadline): Promise<void>
}

/**
 * The alerts of `run` (alertWebhookUrl, alertSmtpUrl): sampled in the primary on a timer, from the
 * state /health and /metrics report (the sinks' stats, the drop counter, the journal's fill), never in
 * a request's path. Each channel sends one message at a time, once; what comes meanwhile is folded
 * into its next message; a failure is logged (the address as scheme://host only) and counted, not retried.
 */
export async function startAlerts(
  settings: AlertSettings,
  sources: {intake: Intake; delivery: Delivery; capture: boolean; journalMax: number},
  log: (m: string) => void,
): Promise<Alerts | undefined> {
  const channels: Channel[] = []
  if (settings.webhook) channels.push(webhookChannel(settings.webhook.url, settings.webhook.format, settings.instance, settings.timeoutMs))
  if (settings.email)
    channels.push(await emailChannel(settings.email.smtpUrl, settings.email.from, settings.email.to, settings.instance, settings.timeoutMs))
  if (channels.length === 0) return undefined

  const {registry} = sources.intake.metrics
  const sent = new Counter({
    name: 'audit_logs_alerts_sent_total',
    help: 'Alert messages sent',
    labelNames: ['channel'],
    registers: [registry],
  })
  const failed = new Counter({
    name: 'audit_logs_alert_failures_total',
    help: 'Alert messages that could not be sent (logged; not retried: the next alert goes out as usual)',
    labelNames: ['channel'],
    registers: [registry],
  })
  const counts = {sent: {} as Record<string, number>, failures: {} as Record<string, number>}
  const outboxes = channels.map((channel) => {
    sent.inc({channel: channel.name}, 0) // the series exist from the start, at 0
    failed.inc({channel: channel.name}, 0)
    counts.sent[channel.name] = 0
    counts.failures[channel.name] = 0
    return new Outbox(channel, (ok, error) => {
      if (ok) {
        sent.inc({channel: channel.name})
        counts.sent[channel.name]++
        return
      }
      failed.inc({channel: channel.name})
      const n = ++counts.failures[channel.name]
      log(
        `alerts: the ${channel.name} alert to ${channel.shown} failed: ${redactText(error?.message ?? 'unknown error')}; ` +
          `not sent again (${n} failure(s) so far; the next alert is sent as usual)`,
      )
    })
  })

  const evaluator = new AlertEvaluator({
    sinkFailedMs: settings.sinkFailedMs,
    journalFillPercent: settings.journalFillPercent,
    digestMs: settings.digestMs,
  })
  new Gauge({
    name: 'audit_logs_alert_conditions',
    help: 'Alert conditions on now (a sink failing, records dropped or dead-lettered, the journal past its alert level)',
    registers: [registry],
    collect() {
      this.set(evaluator.active().length)
    },
  })
  const sample = (): AlertSample => ({
    at: Date.now(),
    sinks: sources.delivery.stats().map((s) => ({
      name: s.name,
      lastError: s.lastError,
      failures: s.failures,
      rejected: s.rejected,
      lagBytes: s.lagBytes,
      lagMs: s.lagMs,
    })),
    dropped: sources.intake.metrics.totals.dropped,
    journal: sources.capture ? {pendingBytes: sources.intake.pendingBytes(), maxBytes: sources.journalMax} : undefined,
  })
  const timer = setInterval(() => {
    try {
      const items = evaluator.sample(sample())
      if (items.length) for (const o of outboxes) o.add(items)
    } catch (error) {
      log(`alerts: ${redactText((error as Error).message)}`) // an alert must never take the run down
    }
  }, ALERT_TICK_MS)
  timer.unref()
  log(`alerts to ${channels.map((c) => `${c.name} ${c.shown}`).join(' and ')}`)
  return {
    state: () => ({active: evaluator.active(), ...counts}),
    async stop(deadline) {
      clearInterval(timer)
      // a message on its way gets the rest of its timeout (within the deadline); nothing new is sent
      await settledBy(Promise.all(outboxes.map((o) => o.idle())), deadline)
      for (const c of channels) c.close()
    },
  }
}
