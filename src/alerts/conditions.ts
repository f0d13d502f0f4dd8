import {formatBytes} from '../util/bytes.js'

/** What the evaluator reads from the primary on each tick (see server/alerts.ts): state, never record contents. */
export type AlertSample = {
  /** ms since the epoch */
  at: number
  sinks: Array<{name: string; lastError?: string; failures: number; rejected: number; lagBytes: number; lagMs?: number}>
  /** records dropped since the run started */
  dropped: number
  /** what the sinks still lack, against the journal's bound (none without capture) */
  journal?: {pendingBytes: number; maxBytes: number}
}

export type AlertCondition = 'sink_failing' | 'records_dropped' | 'records_dead_lettered' | 'journal_fill'

/** One alert: a condition that started, is still on (a digest), or ended. */
export type AlertItem = {
  condition: AlertCondition
  sink?: string
  state: 'started' | 'ongoing' | 'ended'
  /** when the condition started (ISO 8601) */
  since: string
  /** when this alert was made (ISO 8601) */
  at: string
  /** one line for people */
  text: string
  /** the figures behind the text: since the last alert on this condition, and since it started */
  counts: Record<string, number>
}

export type AlertThresholds = {sinkFailedMs: number; journalFillPercent: number; digestMs: number}

/** An episode of one condition, from its start alert to its end alert. */
type Episode = {since: number; reportedAt: number; base: number; reported: number; lastChangeAt: number; peak: number}

const iso = (ms: number) => new Date(ms).toISOString()
const minutes = (ms: number) => (ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`)
/** A sink's error as the alert shows it: already redacted by the shipper; cut short, as one line. */
const errorLine = (e: string | undefined) => (e ? e.replace(/\s+/g, ' ').slice(0, 300) : 'no error recorded')

/**
 * Turns samples of the primary's state into alerts, with the storm rules: one alert when a condition
 * starts, a digest at most every digestMs while it lasts, one when it ends. Pure (time comes with the
 * sample), for tests. Conditions:
 * - sink_failing (per sink): its deliveries have failed without a success for sinkFailedMs; ends at its next delivery;
 * - records_dropped, records_dead_lettered (per sink): the counter grew; ends once it has not grown for
 *   digestMs (so a condition that comes and goes alerts at most twice a period);
 * - journal_fill: what the sinks lack reached journalFillPercent of the bound; ends below 90% of that level.
 */
export class AlertEvaluator {
  private readonly failingSince = new Map<string, {at: number; failures: number}>()
  private readonly episodes = new Map<string, Episode>()
  private readonly last = new Map<string, number>() // counters as last sampled

  constructor(private readonly t: AlertThresholds) {}

  /** The conditions on now, by key (condition or condition:sink). */
  active(): string[] {
    return [...this.episodes.keys()]
  }

  sample(s: AlertSample): AlertItem[] {
    const out: AlertItem[] = []
    for (const sink of s.sinks) out.push(...this.sinkFailing(s.at, sink))
    out.push(...this.counter(s.at, 'records_dropped', undefined, s.dropped))
    for (const sink of s.sinks) out.push(...this.counter(s.at, 'records_dead_lettered', sink.name, sink.rejected))
    if (s.journal && s.journal.maxBytes > 0) out.push(...this.journalFill(s.at, s.journal))
    return out
  }

  private item(key: string, e: Episode, at: number, state: AlertItem['state'], text: string, counts: Record<string, number>): AlertItem {
    const [condition, sink] = key.split(':') as [AlertCondition, string | undefined]
    if (state === 'ended') this.episodes.delete(key)
    else e.reportedAt = at
    return {condition, ...(sink ? {sink} : {}), state, since: iso(e.since), at: iso(at), text, counts}
  }

  private sinkFailing(at: number, sink: AlertSample['sinks'][number]): AlertItem[] {
    const key = `sink_failing:${sink.name}`
    const e = this.episodes.get(key)
    if (!sink.lastError) {
      const started = this.failingSince.get(sink.name)
      this.failingSince.delete(sink.name)
      if (!e || !started) return []
      const failed = sink.failures - started.failures
      return [
        this.item(
          key,
          e,
          at,
          'ended',
          `sink ${sink.name} delivers again, after failing for ${minutes(at - e.since)} (${failed} failed attempts)`,
          {
            failedAttempts: failed,
            failedMs: at - e.since,
          },
        ),
      ]
    }
    let started = this.failingSince.get(sink.name)
    if (!started) this.failingSince.set(sink.name, (started = {at, failures: Math.max(0, sink.failures - 1)}))
    const lag = `${formatBytes(sink.lagBytes)} wait in the journal${sink.lagMs ? `, the oldest for ${minutes(sink.lagMs)}` : ''}`
    if (!e) {
      if (at - started.at < this.t.sinkFailedMs) return []
      const episode: Episode = {
        since: started.at,
        reportedAt: at,
        base: started.failures,
        reported: sink.failures,
        lastChangeAt: at,
        peak: 0,
      }
      this.episodes.set(key, episode)
      const failed = sink.failures - started.failures
      return [
        this.item(
          key,
          episode,
          at,
          'started',
          `sink ${sink.name} has been failing for ${minutes(at - started.at)}: ${errorLine(sink.lastError)}; ${failed} failed attempts; ${lag}`,
          {
            failedAttempts: failed,
            failedMs: at - started.at,
            lagBytes: sink.lagBytes,
          },
        ),
      ]
    }
    if (at - e.reportedAt < this.t.digestMs) return []
    const recent = sink.failures - e.reported
    e.reported = sink.failures
    return [
      this.item(
        key,
        e,
        at,
        'ongoing',
        `sink ${sink.name} is still failing, for ${minutes(at - e.since)}: ${errorLine(sink.lastError)}; ${recent} failed attempts since the last alert (${sink.failures - e.base} in all); ${lag}`,
        {failedAttempts: sink.failures - e.base, failedAttemptsSinceLast: recent, failedMs: at - e.since, lagBytes: sink.lagBytes},
      ),
    ]
  }

  private counter(
    at: number,
    condition: 'records_dropped' | 'records_dead_lettered',
    sink: string | undefined,
    value: number,
  ): AlertItem[] {
    const key = sink ? `${condition}:${sink}` : condition
    // the counters start at 0 with the run: whatever they hold was dropped or refused in this run
    const before = this.last.get(key) ?? 0
    this.last.set(key, value)
    const what = (n: number) =>
      condition === 'records_dropped' ? `${n} record(s) dropped` : `${n} record(s) refused by sink ${sink} and kept in its dead-letter file`
    const e = this.episodes.get(key)
    if (!e) {
      if (value <= before) return []
      const episode: Episode = {since: at, reportedAt: at, base: before, reported: value, lastChangeAt: at, peak: 0}
      this.episodes.set(key, episode)
      return [this.item(key, episode, at, 'started', what(value - before), {records: value - before})]
    }
    if (value > before) e.lastChangeAt = at
    const recent = value - e.reported
    const total = value - e.base
    if (at - e.lastChangeAt >= this.t.digestMs)
      return [
        this.item(key, e, at, 'ended', `no more for ${minutes(at - e.lastChangeAt)}: ${what(total)} since ${iso(e.since)}`, {
          records: total,
          recordsSinceLast: recent,
        }),
      ]
    if (at - e.reportedAt < this.t.digestMs) return []
    e.reported = value
    return [
      this.item(key, e, at, 'ongoing', `${what(recent)} since the last alert (${total} since ${iso(e.since)})`, {
        records: total,
        recordsSinceLast: recent,
      }),
    ]
  }

  private journalFill(at: number, j: {pendingBytes: number; maxBytes: number}): AlertItem[] {
    const key = 'journal_fill'
    const percent = Math.round((j.pendingBytes / j.maxBytes) * 1000) / 10
    const level = this.t.journalFillPercent
    const held = `${formatBytes(j.pendingBytes)} of its ${formatBytes(j.maxBytes)} bound`
    const e = this.episodes.get(key)
    if (!e) {
      if (percent < level) return []
      const episode: Episode = {since: at, reportedAt: at, base: 0, reported: 0, lastChangeAt: at, peak: percent}
      this.episodes.set(key, episode)
      return [
        this.item(key, episode, at, 'started', `the journal is ${percent}% full (${held}; alert level ${level}%): the sinks are behind`, {
          percent,
          pendingBytes: j.pendingBytes,
          maxBytes: j.maxBytes,
        }),
      ]
    }
    e.peak = Math.max(e.peak, percent)
    if (percent < level * 0.9)
      return [
        this.item(key, e, at, 'ended', `the journal is below ${level}% again: ${percent}% (${held}; ${e.peak}% at most)`, {
          percent,
          peakPercent: e.peak,
          pendingBytes: j.pendingBytes,
          maxBytes: j.maxBytes,
        }),
      ]
    if (at - e.reportedAt < this.t.digestMs) return []
    const peak = e.peak
    e.peak = percent
    return [
      this.item(key, e, at, 'ongoing', `the journal is still ${percent}% full (${held}; ${peak}% at most since the last alert)`, {
        percent,
        peakPercent: peak,
        pendingBytes: j.pendingBytes,
        maxBytes: j.maxBytes,
      }),
    ]
  }
}
