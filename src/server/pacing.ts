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
/**
 * The samples of a measure over the last `windowMs` (at least two kept): adds `sample` taken at `now`,
 * and gives the oldest one kept and the seconds since it, from which a rate follows.
 */
class Window<T> {
  private readonly samples: Array<{t: number; value: T}> = []
  constructor(private readonly windowMs: number) {}

  add(value: T, now: number): {first: T; seconds: number} {
    this.samples.push({t: now, value})
    while (this.samples.length > 2 && now - this.samples[1].t >= this.windowMs) this.samples.shift()
    return {first: this.samples[0].value, seconds: (now - this.samples[0].t) / 1000}
  }
}

export class LagPacer {
  paced = false
  /** The sink that decided the last change, for the log and /health. */
  worst?: {name: string; lagBytes: number; lagMs: number}
  private readonly delivered: Window<Map<string, number>>

  constructor(
    private readonly maxLagMs: number,
    private readonly minBytes: number,
    windowMs = 5000,
  ) {
    this.delivered = new Window(windowMs)
  }

  /** Takes the sinks' stats as they are at `now`; true when `paced` changed. */
  update(stats: ShipperStats[], now = Date.now()): boolean {
    const {first, seconds} = this.delivered.add(new Map(stats.map((s) => [s.name, s.deliveredBytes])), now)
    if (this.maxLagMs <= 0 || seconds < 1) return false // no pace known yet
    let worst: LagPacer['worst']
    for (const s of stats) {
      if (s.lastError || s.lagBytes < this.minBytes) continue
      const pace = (s.deliveredBytes - (first.get(s.name) ?? s.deliveredBytes)) / seconds // bytes a second
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
  /** Whether shipping runs at the normal priority for a sink whose oldest missing byte is old (see behind); the caller applies it. */
  behind = false
  /** The worst lag as last measured, for the log; ageMs: how long the oldest byte a delivering sink lacks has waited, at least. */
  lag = {bytes: 0, ms: 0, ageMs: 0}
  /** Per sink, as behindWanted last measured it: how long the oldest journal byte it lacks has waited (see ages). */
  sinkAges = new Map<string, number>()
  private readonly intake: Window<number>
  /**
   * Per sink, when the journal (as the sink counts it: what it delivered plus what it lacks) grew past each size: the
   * byte a sink lacks first was written by the first sample past its position. Samples it has delivered are dropped.
   */
  private readonly grown = new Map<string, Growth>()

  constructor(
    private readonly bytes: number,
    private readonly ms: number,
    windowMs = 5000,
  ) {
    this.intake = new Window(windowMs)
  }

  /** Whether catching up is called for by the sinks' stats at `now` (the caller applies the change). */
  wanted(stats: ShipperStats[], now = Date.now()): boolean {
    // what the journal took in: every byte a sink has delivered or still lacks
    const total = Math.max(0, ...stats.map((s) => s.deliveredBytes + s.lagBytes))
    const {first, seconds} = this.intake.add(total, now)
    const rate = seconds >= 1 ? Math.max(0, total - first) / seconds : 0
    const bytes = Math.max(0, ...stats.filter((s) => !s.lastError).map((s) => s.lagBytes))
    const ms = rate > 0 ? (bytes / rate) * 1000 : 0
    this.lag = {bytes, ms, ageMs: this.lag.ageMs}
    if (this.catchingUp) return bytes > this.bytes / 4 || (this.ms > 0 && ms > this.ms / 4 && bytes > CATCH_UP_FLOOR_BYTES / 4)
    return bytes >= this.bytes || (this.ms > 0 && ms >= this.ms && bytes >= CATCH_UP_FLOOR_BYTES)
  }

  /**
   * Whether shipping should run at the normal priority because a delivering sink lacks a byte that has been in the
   * journal for `ms` or longer, measured (not estimated from the intake rate, which is 0 when no traffic comes), until
   * every such byte is under a quarter of that old. At the background priority (the idle class where the system
   * allows it) shipping gets no CPU at all while other work keeps every core busy: an app's own jobs, another
   * program, or a test polling its server. Then a backlog under the floor, or one left by a crash that a restart
   * replays with no traffic coming, waited for as long as the cores stayed busy. Only the shipping threads and the
   * sinks' backends move: the proxy is not made to yield for it (that is catching up, `wanted`).
   */
  behindWanted(stats: ShipperStats[], now = Date.now()): boolean {
    const ages = (this.sinkAges = this.ages(stats, now))
    const age = Math.max(0, ...stats.filter((s) => !s.lastError).map((s) => ages.get(s.name) ?? 0))
    this.lag.ageMs = age
    if (this.ms <= 0) return false
    return this.behind ? age > this.ms / 4 : age >= this.ms
  }

  /**
   * Per sink, how long the oldest journal byte it lacks has waited at `now` (0: it lacks none), measured from the
   * samples of the journal's growth taken at each call. It is a lower bound: by up to the interval between two calls, or
   * between two samples kept when a long outage thinned them (thin), and for bytes already in the journal when this
   * process started, counted from its first call. A sink that is down counts too (its age is how far behind in time
   * the store is), though not for behindWanted.
   */
  private ages(stats: ShipperStats[], now: number): Map<string, number> {
    const out = new Map<string, number>()
    for (const s of stats) {
      const total = s.deliveredBytes + s.lagBytes
      let growth = this.grown.get(s.name)
      if (!growth) this.grown.set(s.name, (growth = {samples: [], gap: 0}))
      const {samples} = growth
      const last = samples.at(-1)
      // the journal as this sink counts it shrank (a torn line skipped, not delivered): what was there is as old as it was
      if (last && total < last.total) {
        const shrank = last.total - total
        for (const x of samples) x.total -= shrank
      }
      // (growth within `gap` of the last sample waits for the next one: dated later, its age is under, never over)
      if (!last || (total > last.total && now - last.t >= growth.gap)) samples.push({t: now, total})
      while (samples.length > 0 && samples[0].total <= s.deliveredBytes) samples.shift()
      if (samples.length > MAX_GROWTH_SAMPLES) thin(growth)
      if (samples.length <= 1) growth.gap = 0 // caught up (or nearly): sampled at every call again
      out.set(s.name, samples.length > 0 ? now - samples[0].t : 0)
    }
    return out
  }
}

/** Samples of the journal's growth kept per sink (a sink down for days thins them: see thin). */
const MAX_GROWTH_SAMPLES = 4096

/** A sink's samples of the journal's growth, and the least time between two of them (0 until a long outage thins them). */
type Growth = {samples: Array<{t: number; total: number}>; gap: number}

/**
 * Halves the samples, keeping every other one, and doubles the least time between two from now on, so that they stay
 * evenly spread over an outage however long: once the sink delivers part of its backlog, the age of what it still lacks
 * is within one gap of the truth (about 1/2,000 of the outage). Dropping only the second oldest, as before, kept the
 * recent minutes alone, and a sink an hour behind read as minutes behind.
 */
function thin(growth: Growth): void {
  const {samples} = growth
  let kept = 0
  for (let i = 0; i < samples.length; i += 2) samples[kept++] = samples[i]
  samples.length = kept
  growth.gap = Math.max(growth.gap * 2, samples.length > 1 ? (samples.at(-1)!.t - samples[0].t) / (samples.length - 1) : 0)
}
