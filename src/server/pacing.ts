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
