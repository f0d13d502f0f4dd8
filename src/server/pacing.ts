import type {ShipperStats} from '../pipeline/shipper.js'

/**
 * Admission control by the sinks' lag, measured in time (whenFull: block):
 * while a sink that is delivering would need more than `maxLagMs` at its own
 * measured pace to catch up, new requests wait at the proxy's gate, so under
 * a sustained load the proxy takes requests at the rate the trail is kept and
 * the lag stays bounded in seconds, not only by the journal's bytes. A sink
 * that fails (lastError) or delivers nothing (a write that hangs) is left to
 * the journal: an outage is what the journal is for. Lags under `minBytes`
 * never count (a sink just started has no meaningful pace).
 */
export class LagPacer {
  paced = false
  /** The sink that decided the last change, for the log and /health. */
  worst?: {name: string; lagBytes: number; lagMs: number}
  private readonly samples: Array<{t: number; delivered: Map<string, number>}> = []

  constructor(
    private readonly maxLagMs: number,
    private readonly minBytes: number,
    private readonly windowMs = 5000,
  ) {}

  /** Takes the sinks' stats as they are at `now`; true when `paced` changed. */
  update(stats: ShipperStats[], now = Date.now()): boolean {
    this.samples.push({t: now, delivered: new Map(stats.map((s) => [s.name, s.deliveredBytes]))})
    while (this.samples.length > 2 && now - this.samples[1].t >= this.windowMs) this.samples.shift()
    const first = this.samples[0]
    const seconds = (now - first.t) / 1000
    if (this.maxLagMs <= 0 || seconds < 1) return false // no pace known yet
    let worst: LagPacer['worst']
    for (const s of stats) {
      if (s.lastError || s.lagBytes < this.minBytes) continue
      const pace = (s.deliveredBytes - (first.delivered.get(s.name) ?? s.deliveredBytes)) / seconds // bytes a second
      if (pace <= 0) continue
      const lagMs = (s.lagBytes / pace) * 1000
      if (!worst || lagMs > worst.lagMs) worst = {name: s.name, lagBytes: s.lagBytes, lagMs}
    }
    const lagMs = worst?.lagMs ?? 0
    const paced = this.paced ? lagMs > this.maxLagMs * 0.8 : lagMs > this.maxLagMs
    if (paced === this.paced) return false
    this.paced = paced
    this.worst = worst
    return true
  }
}

/** Lags under this never start a catch-up by time: at a trickle of traffic a few records are "seconds" behind. */
const CATCH_UP_FLOOR_BYTES = 1024 * 1024

/**
 * When shipping stops deferring to the proxy and runs at the normal priority (catching up): once a
 * sink that is delivering lacks `bytes` of the journal, or as much as the journal took in over the
 * last `ms` (its intake rate measured over a few seconds), until every such sink is back under a
 * quarter of both. The bound in time is what a sustained load meets first, whatever the size of
 * its records: 32 MiB is 8 s of small GET records, and a pacer that holds the door at 5 s of lag
 * then acted while the sinks were still deferred (the knee of bench/RESULTS.md, issue 16).
 */
export class CatchUpTrigger {
  catchingUp = false
  /** The worst lag as last measured, for the log. */
  lag = {bytes: 0, ms: 0}
  private readonly samples: Array<{t: number; total: number}> = []

  constructor(
    private readonly bytes: number,
    private readonly ms: number,
    private readonly windowMs = 5000,
  ) {}

  /** Whether catching up is called for by the sinks' stats at `now` (the caller applies the change). */
  wanted(stats: ShipperStats[], now = Date.now()): boolean {
    // what the journal took in: every byte a sink has delivered or still lacks
    const total = Math.max(0, ...stats.map((s) => s.deliveredBytes + s.lagBytes))
    this.samples.push({t: now, total})
    while (this.samples.length > 2 && now - this.samples[1].t >= this.windowMs) this.samples.shift()
    const first = this.samples[0]
    const seconds = (now - first.t) / 1000
    const rate = seconds >= 1 ? Math.max(0, total - first.total) / seconds : 0
    const bytes = Math.max(0, ...stats.filter((s) => !s.lastError).map((s) => s.lagBytes))
    const ms = rate > 0 ? (bytes / rate) * 1000 : 0
    this.lag = {bytes, ms}
    if (this.catchingUp) return bytes > this.bytes / 4 || (this.ms > 0 && ms > this.ms / 4 && bytes > CATCH_UP_FLOOR_BYTES / 4)
    return bytes >= this.bytes || (this.ms > 0 && ms >= this.ms && bytes >= CATCH_UP_FLOOR_BYTES)
  }
}
