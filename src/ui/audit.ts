import type {ResolvedConfig} from '../config/resolve.js'
import {deliverDirectly, sendToRun} from '../events/deliver.js'
import {type EventInput, eventLine} from '../events/record.js'
import {Masker} from '../capture/masking.js'
import {eventsUrl, workerSettings} from '../server/settings.js'
import {redactText} from '../util/redact.js'

/** Events waiting to be sent, at most; past it the oldest go, counted and said once per burst. */
const MAX_WAITING = 10_000
const FLUSH_MS = 1000

/**
 * The viewer's own trail: every page a user opens, every export, every login
 * and logout is an event (action VIEW, EXPORT, LOGIN, LOGIN_FAILED, LOGOUT;
 * actor the viewer's user). They go as any app's events do: to the run's
 * events endpoint when a run is up (`run --ui` gives its URL and token), else
 * through the journal into the configured stores, as `audit-logs event` does.
 * The viewer never writes to a store itself: it sends events, which the run's
 * pipeline (or the journal's shippers) writes as the writer role.
 */
export class ViewerAudit {
  /** each event twice: as the run's endpoint takes it (with its id and time), and as the journal holds it */
  private waiting: Array<{input: string; line: string}> = []
  private timer?: NodeJS.Timeout
  private flushing?: Promise<void>
  private dropped = 0
  private readonly masker: Masker
  private readonly url: string
  private readonly settings: ReturnType<typeof workerSettings>
  sent = 0

  constructor(
    private readonly config: ResolvedConfig,
    private readonly log: (message: string) => void,
  ) {
    this.settings = workerSettings(config)
    this.masker = Masker.of(this.settings)
    this.url = process.env.AUDIT_LOGS_EVENTS_URL ?? eventsUrl(config)
  }

  record(event: EventInput): void {
    const {line} = eventLine({...event}, {masker: this.masker, instance: this.settings.instance})
    const {id, created_at: createdAt} = JSON.parse(line) as {id: string; created_at: string}
    if (this.waiting.length >= MAX_WAITING) {
      this.waiting.shift()
      if (this.dropped++ === 0) this.log(`warning: the viewer's own events cannot be delivered; dropping the oldest past ${MAX_WAITING}`)
    }
    this.waiting.push({input: JSON.stringify({...event, id, created_at: createdAt}), line})
    this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS)
  }

  /** Sends what waits; what cannot be sent waits for the next try. */
  flush(): Promise<void> {
    this.flushing ??= this.send().finally(() => {
      this.flushing = undefined
      this.timer = undefined
      // a backlog goes on at once while sends succeed; after a failure, the next try waits a while
      if (this.waiting.length && !this.closed) this.timer = setTimeout(() => void this.flush(), this.failing ? FLUSH_MS * 5 : 0)
    })
    return this.flushing
  }

  private closed = false

  private failing = false

  /** The oldest waiting events, within the run's bounds on a batch (its count and bytes, halved for margin). */
  private nextBatch(): Array<{input: string; line: string}> {
    const maxCount = Math.max(1, Math.min(500, this.config.eventsMaxBatch))
    const maxBytes = Math.max(1024, this.config.eventsMaxBatchBytes / 2)
    const batch: Array<{input: string; line: string}> = []
    let bytes = 0
    for (const e of this.waiting) {
      bytes += Buffer.byteLength(e.input) + 1
      if (batch.length && (batch.length >= maxCount || bytes > maxBytes)) break
      batch.push(e)
    }
    return batch
  }

  private async send(): Promise<void> {
    const batch = this.nextBatch()
    if (!batch.length) return
    try {
      const token = process.env.AUDIT_LOGS_EVENTS_TOKEN ?? this.config.eventsToken
      // the run validates and masks them again, as any app's; with their ids and times, they are the same events
      const viaRun = await sendToRun(this.url, token, batch.map((e) => e.input).join('\n'))
      if (!viaRun) {
        const lines = batch.map((e) => e.line)
        const delivery = await deliverDirectly(this.config, lines, {journalDir: this.settings.journalDir, timeoutMs: 30_000, log: this.log})
        const missed = Object.entries(delivery.delivered).filter(([, ok]) => !ok)
        for (const [sink] of missed) this.log(`warning: ${sink} did not take the viewer's events yet; they wait in the journal`)
      }
      this.waiting.splice(0, batch.length)
      this.sent += batch.length
      if (this.dropped) this.log(`the viewer's events are delivered again (${this.dropped} were dropped)`)
      this.dropped = 0
      this.failing = false
    } catch (error) {
      if (!this.failing) this.log(`warning: the viewer's events could not be delivered: ${redactText((error as Error).message)}`)
      this.failing = true
    }
  }

  /** Sends all that waits at shutdown, batch after batch, while sends succeed. */
  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    await this.flushing
    this.failing = false
    while (this.waiting.length && !this.failing) await this.flush()
  }
}
