import {closeSync, existsSync, fdatasyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync} from 'node:fs'
import path from 'node:path'
import {MODES, replaceFile} from '../util/files.js'
import {redactText} from '../util/redact.js'
import {backoffMs} from './backoff.js'
import {type Segment, listSegments, readLines, segmentExists} from './journal.js'
import type {Rejection, Sink} from './sinks.js'

export type ShipperStats = {
  name: string
  written: number
  deliveredBytes: number
  retried: number
  failures: number
  rejected: number
  catchUps: number
  lagBytes: number
  /** How long the oldest journal byte the sink lacks has waited (0: it lacks none), measured by the shipping thread every 250 ms. */
  lagMs?: number
  lastError?: string
  /** PostgreSQL: whether the integrity chain is written, why not, and failed digests (Sink.integrity) */
  integrity?: {chained: boolean; off?: string; digestErrors: number}
  caughtUp: boolean
  deferred: boolean
}
/** The stats that only grow (carried across a restart of the shipping thread). */
export const SHIPPER_COUNTERS = ['written', 'deliveredBytes', 'retried', 'failures', 'rejected', 'catchUps'] as const

/** Where a sink's refused records are kept: `<journal>/dead-letter/<sink>.jsonl`. */
export const deadLetterFile = (journalDir: string, sink: string) => path.join(journalDir, 'dead-letter', `${sink}.jsonl`)

/**
 * Appends the records a sink refused to its dead-letter file, one JSON line
 * each with when, why and the record as it was journaled, and syncs it:
 * the checkpoint that passes them is saved only after.
 */
function keepRejected(file: string, sink: string, rejected: Rejection[]): void {
  mkdirSync(path.dirname(file), {recursive: true, mode: MODES.privateDir})
  const at = new Date().toISOString()
  const out = rejected.map(({line, error}) => {
    const text = line.toString()
    let record: string
    try {
      JSON.parse(text)
      record = `"record":${text}`
    } catch {
      record = `"record_text":${JSON.stringify(text)}` // not JSON (a damaged journal line): kept as text
    }
    return `{"rejected_at":"${at}","sink":${JSON.stringify(sink)},"error":${JSON.stringify(error)},${record}}\n`
  })
  const fd = openSync(file, 'a', MODES.privateFile)
  try {
    writeSync(fd, out.join(''))
    fdatasyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
type Checkpoint = Record<string, number>

/**
 * Each sink's progress through the journal (segment key → bytes consumed),
 * and what the sink needs to undo a write the checkpoint does not cover
 * (state()), saved together, atomically and durably (synced before the
 * rename: the sinks' writes are synced too, so after a power loss the
 * checkpoint never claims less than a sink had, nor more).
 */
class CheckpointFile {
  readonly file: string
  data: Checkpoint = {}
  sinkState: unknown

  constructor(dir: string, name: string, log: (msg: string) => void) {
    mkdirSync(path.join(dir, 'checkpoints'), {recursive: true, mode: MODES.privateDir})
    this.file = path.join(dir, 'checkpoints', `${name}.json`)
    if (!existsSync(this.file)) return
    try {
      const saved = JSON.parse(readFileSync(this.file, 'utf8'))
      // the first format held the offsets alone
      const current = isObject(saved) && isObject(saved.offsets)
      const offsets = current ? saved.offsets : saved
      if (!isObject(offsets) || !Object.values(offsets).every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) {
        throw new Error('not a map of journal segments to byte offsets')
      }
      this.data = offsets as Checkpoint
      this.sinkState = current ? saved.sink : undefined
    } catch (error) {
      // A damaged checkpoint (a disk or a hand that broke it) must not keep the proxy from starting: it is
      // kept aside for inspection and the sink gets again what the journal still holds (nothing is lost).
      const aside = `${this.file}.damaged-${Date.now()}`
      try {
        renameSync(this.file, aside)
      } catch {
        // it stays; the first save replaces it
      }
      log(
        `ALERT: the checkpoint of sink ${name} (${this.file}) cannot be read (${(error as Error).message}); it is kept as ${aside}. ` +
          `The sink receives again every record the journal still holds: PostgreSQL keeps each once (idempotent on id), the JSONL files may get some lines twice.`,
      )
    }
  }

  save(): void {
    replaceFile(this.file, JSON.stringify({offsets: this.data, sink: this.sinkState}), MODES.privateFile)
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

export type ShipperOptions = {
  batchLines?: number
  batchBytes?: number
  pollMs?: number
  log?: (msg: string) => void
  /** Whether to deliver now (false: wait; the journal holds the records). drain() does not wait. */
  mayShip?: () => boolean
}

/**
 * Delivers the journal to one sink, from its own checkpoint. A failing sink
 * is retried with exponential backoff and jitter; the checkpoint advances
 * only after the sink took the batch, so a crash replays and never skips;
 * a sink is idempotent (PostgreSQL, on id) or undoes at start what it wrote
 * after the checkpoint (the files, through state() and restore()).
 */
export class Shipper {
  readonly stats: ShipperStats
  private readonly checkpoint: CheckpointFile
  private stopping = false
  private draining = false
  private wake?: () => void
  private loop?: Promise<void>
  private readonly o: Required<ShipperOptions>
  /** The last checkpoint save failed (a full disk). */
  private unsaved = false
  /** One read buffer for every batch, reused (fresh buffers per batch kept the thread's garbage collector busy). */
  private readonly batchBuffer: Buffer

  constructor(
    private readonly dir: string,
    readonly sink: Sink,
    options: ShipperOptions = {},
  ) {
    // 1 MiB a batch: about 130 POST records of 8 KiB or 1,000 GET records, over which a statement's own cost is
    // spread thin already; the shipping thread keeps about four buffers of a batch's size (this read buffer, the
    // files' join, a PostgreSQL connection's array and pg's message buffer), and 4 MiB batches held 16 MB more.
    this.o = {batchLines: 10_000, batchBytes: 1024 * 1024, pollMs: 50, log: () => {}, mayShip: () => true, ...options}
    this.batchBuffer = Buffer.allocUnsafeSlow(this.o.batchBytes)
    this.checkpoint = new CheckpointFile(dir, sink.name, this.o.log)
    this.stats = {
      name: sink.name,
      written: 0,
      deliveredBytes: 0,
      retried: 0,
      failures: 0,
      rejected: 0,
      catchUps: 0,
      lagBytes: 0,
      caughtUp: false,
      deferred: false,
    }
  }

  start(): void {
    this.loop ??= this.run()
  }

  /** Ends a wait (a poll interval, a deferral) now. */
  poke(): void {
    this.wake?.()
  }

  offset(key: string): number {
    return this.checkpoint.data[key] ?? 0
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopping) return resolve()
      const t = setTimeout(resolve, ms)
      this.wake = () => {
        clearTimeout(t)
        resolve()
      }
    })
  }

  /** The next batch: lines across segments in write order. */
  private async nextBatch(segments: Segment[]): Promise<{lines: Buffer[]; advance: Checkpoint}> {
    const lines: Buffer[] = []
    const advance: Checkpoint = {}
    let bytes = 0
    let used = 0 // of the batch buffer: the previous batch's lines are no longer needed (its write returned)
    for (const seg of segments) {
      const from = this.offset(seg.key)
      if (from >= seg.size) continue
      const r = await readLines(seg, from, this.o.batchLines - lines.length, this.o.batchBytes - bytes, this.batchBuffer.subarray(used))
      used += r.used
      if (r.skipped) this.o.log(`journal: skipped a torn line at the end of ${seg.key} (written by a process that crashed mid-write)`)
      if (r.next !== from) advance[seg.key] = r.next
      for (const l of r.lines) {
        lines.push(l)
        bytes += l.length
      }
      if (lines.length >= this.o.batchLines || bytes >= this.o.batchBytes) break
    }
    return {lines, advance}
  }

  private async run(): Promise<void> {
    let attempt = 0
    let restored = !this.sink.restore
    while (!this.stopping) {
      if (!restored) {
        try {
          // a write after the last checkpoint (a crash between the two) is undone before it is sent again
          await this.sink.restore!(this.checkpoint.sinkState)
          restored = true
        } catch (error) {
          this.o.log(`sink ${this.sink.name}: ${redactText((error as Error).message)} (restoring its state; retrying)`)
          await this.sleep(backoffMs(++attempt))
          continue
        }
      }
      const segments = listSegments(this.dir)
      this.measureLag(segments)
      this.stats.deferred = this.stats.lagBytes > 0 && !this.draining && !this.o.mayShip()
      if (this.stats.deferred) {
        await this.sleep(this.o.pollMs * 4)
        continue
      }
      const {lines, advance} = await this.nextBatch(segments)
      if (Object.keys(advance).length === 0) {
        this.stats.caughtUp = true
        await this.sleep(this.o.pollMs)
        continue
      }
      this.stats.caughtUp = false
      let rejected = 0
      try {
        const outcome = lines.length ? await this.sink.write(lines) : undefined
        if (outcome?.rejected.length) {
          const file = deadLetterFile(this.dir, this.sink.name)
          keepRejected(file, this.sink.name, outcome.rejected)
          rejected = outcome.rejected.length
          this.o.log(
            `ALERT: sink ${this.sink.name} refused ${rejected} record(s) (${redactText(outcome.rejected[0].error)}); they are kept in ${file}, the rest of the batch was delivered`,
          )
        }
      } catch (error) {
        attempt++
        this.stats.retried++
        this.stats.failures++
        const message = redactText((error as Error).message)
        if (message !== this.stats.lastError || attempt % 20 === 1)
          this.o.log(`sink ${this.sink.name}: ${message} (attempt ${attempt}, retrying)`)
        this.stats.lastError = message
        await this.sleep(backoffMs(attempt))
        continue
      }
      if (attempt > 0) this.o.log(`sink ${this.sink.name}: recovered after ${attempt} failed attempt(s)`)
      attempt = 0
      this.stats.lastError = undefined
      Object.assign(this.checkpoint.data, advance)
      if (this.sink.state) this.checkpoint.sinkState = this.sink.state()
      // forget collected segments only: one missed by a listing that raced a rename must keep its offset
      const live = new Set(segments.map((seg) => seg.key))
      for (const key of Object.keys(this.checkpoint.data))
        if (!live.has(key) && !segmentExists(this.dir, key)) delete this.checkpoint.data[key]
      this.stats.written += lines.length - rejected
      if (this.sink.integrity) this.stats.integrity = this.sink.integrity()
      for (const l of lines) this.stats.deliveredBytes += l.length + 1
      this.stats.rejected += rejected
      try {
        this.checkpoint.save()
        if (this.unsaved) this.o.log(`sink ${this.sink.name}: its checkpoint is saved again`)
        this.unsaved = false
      } catch (error) {
        // The sink has the batch; the checkpoint on disk stays behind until a save succeeds (a crash
        // meanwhile sends again what it does not cover: the sinks are idempotent or cut back to it).
        if (!this.unsaved)
          this.o.log(
            `sink ${this.sink.name}: cannot save its checkpoint (${redactText((error as Error).message)}); shipping goes on and saves it when the disk allows`,
          )
        this.unsaved = true
      }
    }
  }

  /** The journal bytes this sink lacks, from a listing of the segments (also called from outside the loop: a write that hangs must not leave the figure stale). */
  measureLag(segments: Segment[]): void {
    this.stats.lagBytes = segments.reduce((n, s) => n + Math.max(0, s.size - this.offset(s.key)), 0)
  }

  /** Resolves once every line written so far reached the sink, or after timeoutMs. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.draining = true // a deferral ends: everything goes now
    const end = Date.now() + timeoutMs
    for (;;) {
      const segments = listSegments(this.dir)
      if (segments.every((s) => this.offset(s.key) >= s.size)) return true
      if (Date.now() > end) return false
      this.poke()
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  /**
   * Stops the loop and closes the sink. A write still running after
   * `graceMs` (a lock or a server that stopped answering holds it) is cut by
   * closing the sink under it: a shutdown never waits on a sink, and the
   * journal keeps what the sink did not confirm.
   */
  async stop(graceMs = 1000): Promise<void> {
    this.stopping = true
    this.wake?.()
    const within = (p: Promise<unknown> | undefined) =>
      Promise.race([(p ?? Promise.resolve()).then(() => true), new Promise<boolean>((r) => setTimeout(r, graceMs, false).unref())])
    const ended = await within(this.loop)
    if (!ended)
      this.o.log(
        `sink ${this.sink.name}: a write did not end within ${graceMs} ms of the shutdown; it is cut (the journal keeps its records)`,
      )
    await this.sink.close()
    if (!ended) await within(this.loop)
  }
}

/** Deletes sealed segments every shipper has passed, and forgets them in the checkpoints. */
export function collectSegments(dir: string, shippers: Shipper[]): number {
  let removed = 0
  for (const seg of listSegments(dir)) {
    if (!seg.sealed || !shippers.every((s) => s.offset(seg.key) >= seg.size)) continue
    try {
      unlinkSync(seg.file)
      removed++
    } catch {
      // already gone
    }
  }
  return removed
}
