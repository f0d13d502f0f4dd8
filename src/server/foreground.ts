/**
 * Whether the proxy workers are saturated, from the event-loop utilisation
 * each reports twice a second: busy once any worker's loop was busy at
 * least `enter` of the time, idle again once every worker is below `leave`
 * (apart, so the state does not flap); a worker that stopped reporting (it
 * died) counts as idle after `staleMs`.
 */
export class ForegroundLoad {
  busy = false
  private readonly latest = new Map<number, {elu: number; at: number}>()

  constructor(
    private readonly enter = 0.85,
    private readonly leave = 0.6,
    private readonly staleMs = 2000,
  ) {}

  /** Takes a worker's report; true when the state changed. */
  report(worker: number, elu: number, now = Date.now()): boolean {
    this.latest.set(worker, {elu, at: now})
    return this.update(now)
  }

  /** Re-evaluates (reports age); true when the state changed. */
  update(now = Date.now()): boolean {
    let max = 0
    for (const [worker, r] of this.latest) {
      if (now - r.at > this.staleMs) this.latest.delete(worker)
      else max = Math.max(max, r.elu)
    }
    const busy = this.busy ? max >= this.leave : max >= this.enter
    const changed = busy !== this.busy
    this.busy = busy
    return changed
  }
}
