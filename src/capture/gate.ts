/** How a request's wait at a closed gate ended. */
export type GateOutcome = 'open' | 'timeout' | 'closing'

/**
 * Backpressure at the proxy's door (`whenFull: block`). While the gate is
 * closed (the journal is at its bound, or the record builder is far behind),
 * a new request waits before anything of it is read or sent to the app: its
 * body stays in the socket, so the client's sends slow down as TCP's window
 * fills, and the app is served at the rate the audit trail can be kept.
 * Requests already inside finish, and their records are kept. A request
 * waits at most `timeoutMs` (then it is refused with 503, not hung), and a
 * shutdown refuses every waiting one at once.
 */
export class IntakeGate {
  /** Why the gate is closed (several causes may hold at once). */
  private readonly reasons = new Set<string>()
  private readonly waiters = new Set<(outcome: GateOutcome) => void>()
  private closing = false
  /** Requests that had to wait, and those refused after waiting (counters, read and reset by the reporter). */
  waited = 0
  refused = 0

  constructor(private readonly timeoutMs: number) {}

  get isOpen(): boolean {
    return this.reasons.size === 0
  }

  get waiting(): number {
    return this.waiters.size
  }

  /** Closes the gate for `reason`, or opens it for that reason (it opens once no reason is left). */
  set(reason: string, closed: boolean): void {
    if (closed) this.reasons.add(reason)
    else if (this.reasons.delete(reason) && this.isOpen) this.release('open')
  }

  /**
   * Waits for the gate to open. `gone` is called by the caller when the
   * client leaves meanwhile: its place is given up and nothing is answered.
   */
  wait(): {outcome: Promise<GateOutcome>; gone: () => void} {
    if (this.isOpen) return {outcome: Promise.resolve('open'), gone: () => {}}
    this.waited++
    if (this.closing) {
      this.refused++
      return {outcome: Promise.resolve('closing'), gone: () => {}}
    }
    let settle!: (outcome: GateOutcome) => void
    let timer: NodeJS.Timeout | undefined
    const outcome = new Promise<GateOutcome>((resolve) => {
      settle = (o) => {
        clearTimeout(timer)
        if (!this.waiters.delete(settle)) return
        if (o !== 'open') this.refused++
        resolve(o)
      }
      timer = setTimeout(() => settle('timeout'), this.timeoutMs)
      this.waiters.add(settle)
    })
    const gone = () => {
      clearTimeout(timer)
      this.waiters.delete(settle)
    }
    return {outcome, gone}
  }

  /** The server is stopping: every waiting request (and any that comes while the gate is closed) is refused now. */
  shutdown(): void {
    this.closing = true
    this.release('closing')
  }

  private release(outcome: GateOutcome): void {
    for (const settle of [...this.waiters]) settle(outcome)
  }
}
