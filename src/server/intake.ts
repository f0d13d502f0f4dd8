import type {Worker} from 'node:cluster'
import {journalBytes} from '../pipeline/journal.js'
import {Metrics} from '../pipeline/metrics.js'
import {formatBytes} from '../util/bytes.js'
import type {Delivery} from './delivery.js'
import {ForegroundLoad} from './foreground.js'
import {LagPacer} from './pacing.js'
import type {RunPlan} from './run-plan.js'
import type {ToPrimary, ToWorker} from './worker.js'
import {broadcast, liveWorkers} from './workers.js'

type Counts = Extract<ToPrimary, {type: 'counts'}>

/** What lets new requests in, as the primary sees it: the journal's bound, the sinks' pace, the proxy's load; and the workers' counts. */
export type Intake = {
  readonly metrics: Metrics
  /** the journal is at its bound */
  full(): boolean
  /** new requests are paced to the sinks' rate */
  paced(): boolean
  /** what the journal holds on disk (0 without capture) */
  journalBytes(): number
  /** what some sink still lacks (0 without capture) */
  pendingBytes(): number
  /** requests waiting at the workers' gates, as last reported */
  waiting(): number
  /** a worker that just started listening gets the gate's state as it is now (it may have changed since the fork) */
  greet(w: Worker): void
  /** a worker's report */
  counts(w: Worker, msg: Counts): void
  /** a worker exited */
  forget(w: Worker): void
  stop(): void
}

/**
 * Journal housekeeping: enforce the disk bound (the shipping thread deletes what every sink has).
 * Checked four times a second; the journal counts as full again below 90% of the bound, so it does
 * not flap between the two states. At the bound, whenFull decides: the workers hold new requests
 * (block) or drop their records (drop). Either way the log says which sinks hold it. whenFull: block
 * also paces the intake by the sinks' lag in time (see LagPacer), and shipping steps aside while the
 * proxy is saturated (see ShippingSettings.defer).
 */
export function watchIntake(
  plan: RunPlan,
  config: {maxSinkLagMs: number; blockTimeoutMs: number},
  delivery: Delivery,
  log: (m: string) => void,
): Intake {
  const {settings, journalMax, whenFull} = plan
  let full = false
  const behind = () =>
    delivery
      .stats()
      .filter((s) => s.lagBytes > 0)
      .map((s) => `${s.name} ${formatBytes(s.lagBytes)} behind${s.lastError ? ` (${s.lastError})` : ''}`)
      .join(', ') || 'none behind'
  // What some sink still lacks, from the shipping thread's figures while they are fresh (a second);
  // else the journal's size on disk, which counts delivered records too but is never stale.
  const pendingBytes = () => {
    const stats = delivery.fresh()
    return stats ? Math.max(0, ...stats.map((s) => s.lagBytes)) : journalBytes(settings.journalDir)
  }
  const pacer = new LagPacer(whenFull === 'block' ? config.maxSinkLagMs : 0, plan.catchUpBytes)
  let pacedSince = 0
  let pacedTimes = 0
  const foreground = new ForegroundLoad()
  const housekeeping = setInterval(() => {
    if (foreground.update()) delivery.foreground(foreground.busy)
    if (!settings.capture) return
    // what fills the journal is what some sink still lacks: bytes already delivered wait in a segment
    // that is still being written (up to 16 MiB a worker) and are freed when it is sealed, which under
    // backpressure could never happen
    const stats = delivery.fresh()
    if (stats && pacer.update(stats)) {
      broadcast({type: 'sinks-behind', behind: pacer.paced})
      const w = pacer.worst
      if (pacer.paced) pacedTimes++
      if (pacer.paced && Date.now() - pacedSince > 60_000) {
        log(
          `the sink ${w?.name} is ${Math.round((w?.lagMs ?? 0) / 1000)} s behind at its pace (${formatBytes(w?.lagBytes ?? 0)}; ` +
            `maxSinkLagMs ${config.maxSinkLagMs}): new requests are paced to the rate the sinks keep (logged at most ` +
            `once a minute; ${pacedTimes} time(s) so far)`,
        )
        pacedSince = Date.now()
      }
    }
    const bytes = pendingBytes()
    const nowFull = full ? bytes >= journalMax * 0.9 : bytes >= journalMax
    if (nowFull !== full) {
      full = nowFull
      const held = `the journal holds ${formatBytes(bytes)}, its bound (${formatBytes(journalMax)}); sinks: ${behind()}`
      if (!full)
        log(
          `the journal is below 90% of its bound again (${formatBytes(bytes)}); ${whenFull === 'block' ? 'new requests are let in' : 'records are kept'}`,
        )
      else if (whenFull === 'block')
        log(
          `ALERT: ${held}. New requests WAIT until the sinks make room (whenFull: block; after ${config.blockTimeoutMs} ms a waiting request gets 503)`,
        )
      else log(`ALERT: ${held}. New records are DROPPED and counted until the sinks catch up (whenFull: drop)`)
      broadcast({type: 'journal-full', full})
    }
  }, 250)

  const waiting = new Map<number, number>() // requests waiting at each worker's gate, as last reported
  const onDisk = () => (settings.capture ? journalBytes(settings.journalDir) : 0)
  const metrics = new Metrics(delivery.stats, onDisk, () => liveWorkers().length, {
    journalMax,
    full: () => full,
    paced: () => pacer.paced,
    waiting: () => [...waiting.values()].reduce((a, b) => a + b, 0),
  })
  let lastDropAlert = 0
  return {
    metrics,
    full: () => full,
    paced: () => pacer.paced,
    journalBytes: onDisk,
    pendingBytes: () => (settings.capture ? pendingBytes() : 0),
    waiting: metrics.waiting,
    greet(w) {
      if (full) w.send({type: 'journal-full', full: true} satisfies ToWorker)
      if (pacer.paced) w.send({type: 'sinks-behind', behind: true} satisfies ToWorker)
    },
    counts(w, msg) {
      metrics.add(msg)
      waiting.set(w.id, msg.waiting)
      if (foreground.report(w.id, msg.elu)) delivery.foreground(foreground.busy)
      // the journal-full alert is logged where it starts; drops of a builder behind its proxy are reported here, at most every 10 s
      if ((msg.dropped > 0 || msg.problem) && !full && Date.now() - lastDropAlert > 10_000) {
        lastDropAlert = Date.now()
        log(`ALERT: ${msg.dropped} records dropped: ${msg.problem ?? 'see the worker log'}; ${metrics.totals.dropped} dropped so far`)
      }
    },
    forget(w) {
      waiting.delete(w.id)
    },
    stop() {
      clearInterval(housekeeping)
    },
  }
}
