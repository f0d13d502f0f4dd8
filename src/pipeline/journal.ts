import {
  close as closeFd,
  closeSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs'
import {open} from 'node:fs/promises'
import path from 'node:path'
import {MODES} from '../util/files.js'
import {isAlive} from '../util/process.js'

/**
 * The journal: append-only segment files, one writer per worker process.
 * A writer appends to `<writer>.<seq>.open` and renames it to
 * `<writer>.<seq>.jsonl` (sealed) when it rotates or closes; the segment's
 * key `<writer>.<seq>` stays the same, so checkpoints survive the rename.
 * A record is durable once its line is written; fsync runs in groups.
 */
export const OPEN = '.open'
export const SEALED = '.jsonl'
const NEWLINE = Buffer.from('\n')

export type JournalWriterOptions = {
  segmentBytes?: number
  flushMs?: number
  fsyncMs?: number
  maxBufferBytes?: number
  /**
   * The disk refused a write or a sync (full, failing): `lost` lines were not
   * written (0 for a sync). The writer never throws for it: the caller counts
   * and reports; the next write goes to a new segment.
   */
  onError?: (lost: number, error: NodeJS.ErrnoException) => void
  /** `lines` reached the segment file (they are in the journal). */
  onWritten?: (lines: number) => void
  /**
   * Every write is synced before flush() returns (and before a full segment is sealed): a writer whose
   * callers wait for durability (appendDurable) must not resolve while a sync runs in the thread pool.
   */
  syncEveryFlush?: boolean
}

export class JournalWriter {
  private fd = -1
  private seq = 0
  private segmentSize = 0
  /** Lines are encoded straight into this buffer (no joined string, no buffer per line) and written with one write(). */
  private buffer: Buffer
  private used = 0
  /** Lines in the buffer. */
  private pending = 0
  /** A write or sync failed since the last good write. */
  private failing = false
  /**
   * The first failure of a streak moves the next write to a fresh segment (the current one may end in a torn line,
   * or its file be unusable); once per streak, so a full disk does not fill the directory with empty segments.
   */
  private rotateNext = false
  private timer?: NodeJS.Timeout
  private lastSync = Date.now()
  private dirty = false
  private syncing = false
  private closed = false
  private readonly o: Required<JournalWriterOptions>
  /** Failures so far, and the last one: appendDurable() tells its callers whether their lines survived. */
  private failures = 0
  private lastFailure?: Error
  /** Callers of appendDurable() waiting for the next group commit. */
  private durable: Array<{resolve: () => void; reject: (e: Error) => void}> = []
  private durableFailures = 0

  constructor(
    private readonly dir: string,
    readonly writerId: string,
    options: JournalWriterOptions = {},
  ) {
    this.o = {
      segmentBytes: 16 * 1024 * 1024,
      flushMs: 10,
      fsyncMs: 100,
      maxBufferBytes: 256 * 1024,
      onError: () => {},
      onWritten: () => {},
      syncEveryFlush: false,
      ...options,
    }
    this.buffer = Buffer.allocUnsafeSlow(this.o.maxBufferBytes + 64 * 1024) // room past the flush mark for the last line
    mkdirSync(dir, {recursive: true, mode: MODES.privateDir})
    this.nextSegment()
  }

  private name(seq: number, suffix: string) {
    return path.join(this.dir, `${this.writerId}.${String(seq).padStart(6, '0')}${suffix}`)
  }

  /** Opens the next segment and seals the current one; when the open fails, nothing changed. */
  private nextSegment() {
    const fd = openSync(this.name(this.seq + 1, OPEN), 'a', MODES.privateFile)
    if (this.o.syncEveryFlush) {
      // the new file's name is durable too: a synced segment that a power cut left out of the directory would be lost
      const dir = openSync(this.dir, 'r')
      try {
        fsyncSync(dir)
      } finally {
        closeSync(dir)
      }
    }
    if (this.fd >= 0) this.seal()
    this.seq++
    this.fd = fd
    this.segmentSize = 0
  }

  /** Seals the current segment; off the event loop unless `now` (at close). A segment left open is sealed by the next scan after this process exits. */
  private seal(now = false) {
    const {fd} = this
    const from = this.name(this.seq, OPEN)
    const to = this.name(this.seq, SEALED)
    if (now) {
      try {
        fdatasyncSync(fd)
      } finally {
        closeSync(fd)
      }
      renameSync(from, to)
      return
    }
    fdatasync(fd, () =>
      closeFd(fd, () => {
        try {
          renameSync(from, to)
        } catch {
          // the directory is gone or refuses: the segment stays open until a scan after this process
        }
      }),
    )
  }

  private failed(lost: number, error: unknown) {
    this.failures++
    this.lastFailure = error as Error
    if (!this.failing) this.rotateNext = true
    this.failing = true
    this.o.onError(lost, error as NodeJS.ErrnoException)
  }

  /** Buffers a line (a string, or its UTF-8 bytes, copied here); it reaches the file within flushMs (the request never waits for it). */
  append(line: string | Uint8Array): void {
    if (this.closed) return
    const worst = typeof line === 'string' ? line.length * 3 + 1 : line.length + 1 // UTF-8 bytes at most
    if (worst > this.buffer.length - this.used) {
      this.flush()
      if (worst > this.buffer.length) {
        this.writeOut(Buffer.concat([typeof line === 'string' ? Buffer.from(line) : line, NEWLINE]), 1) // a line longer than the buffer goes alone
        this.flush()
        return
      }
    }
    if (typeof line === 'string') this.used += this.buffer.write(line, this.used, 'utf8')
    else {
      this.buffer.set(line, this.used)
      this.used += line.length
    }
    this.buffer[this.used++] = 10
    this.pending++
    if (this.used >= this.o.maxBufferBytes) this.flush()
    else this.timer ??= setTimeout(() => this.flush(), this.o.flushMs)
  }

  /**
   * Writes `lines` whole lines, or none and reports them lost: a write the
   * disk cut short is truncated back (best effort). After a failure, the
   * first write goes to a fresh segment.
   */
  private writeOut(data: Buffer, lines: number): void {
    let off = 0
    try {
      if (this.rotateNext) {
        this.rotateNext = false
        this.nextSegment()
      }
      while (off < data.length) off += writeSync(this.fd, data, off)
    } catch (error) {
      if (off > 0) {
        try {
          ftruncateSync(this.fd, this.segmentSize)
        } catch {
          // the torn line stays at the end of this segment, which is sealed at the next write: readers skip it
        }
      }
      this.failed(lines, error)
      return
    }
    this.segmentSize += data.length
    this.dirty = true
    this.failing = false
    this.o.onWritten(lines)
  }

  /** One write() for the whole buffer; fsync at most every fsyncMs. A disk error loses the buffered lines (reported through onError), never the writer. */
  flush(forceSync = false): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    if (this.used) {
      this.writeOut(this.buffer.subarray(0, this.used), this.pending)
      this.used = 0
      this.pending = 0
    }
    if (this.dirty && (forceSync || this.o.syncEveryFlush)) {
      this.dirty = false
      try {
        fdatasyncSync(this.fd)
      } catch (error) {
        this.failed(0, error)
      }
    } else if (this.dirty && !this.syncing && Date.now() - this.lastSync >= this.o.fsyncMs) {
      // group commit, in the thread pool: the proxy's event loop never waits for the disk
      this.syncing = true
      this.dirty = false
      this.lastSync = Date.now()
      fdatasync(this.fd, (error) => {
        this.syncing = false
        if (error) this.failed(0, error)
      })
    } else if (this.dirty) {
      this.timer = setTimeout(() => this.flush(), this.o.fsyncMs)
    }
    if (this.segmentSize >= this.o.segmentBytes && !this.failing) {
      try {
        this.nextSegment()
      } catch (error) {
        this.failed(0, error)
      }
    }
  }

  /**
   * Appends lines and resolves once they are on disk (written and fdatasync'd), for a caller that
   * answers "durable" (the events endpoint); rejects when the disk refused them. Callers in the same
   * turn of the event loop share one write and one sync (group commit). Only for a writer made with
   * syncEveryFlush: a line that filled the buffer was flushed (and synced) on the way.
   */
  appendDurable(lines: Array<string | Uint8Array>): Promise<void> {
    if (!this.o.syncEveryFlush) throw new Error('appendDurable needs a JournalWriter made with syncEveryFlush')
    if (this.closed) return Promise.reject(new Error('the journal is closed (the server is stopping)'))
    return new Promise((resolve, reject) => {
      if (this.durable.length === 0) {
        this.durableFailures = this.failures
        setImmediate(() => this.commitDurable())
      }
      this.durable.push({resolve, reject})
      for (const line of lines) this.append(line)
    })
  }

  private commitDurable(): void {
    const waiting = this.durable
    this.durable = []
    if (!this.closed) this.flush()
    const failed = this.failures !== this.durableFailures
    const error = new Error(`the journal could not be written: ${this.lastFailure?.message ?? 'closed'}`)
    for (const w of waiting) {
      if (failed || this.closed) w.reject(error)
      else w.resolve()
    }
  }

  close(): void {
    if (this.closed) return
    if (this.durable.length) this.commitDurable()
    this.flush(true)
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    try {
      this.seal(true)
    } catch (error) {
      this.o.onError(0, error as NodeJS.ErrnoException)
    }
  }
}

export type Segment = {key: string; file: string; sealed: boolean; size: number}

const writerPid = (key: string) => Number(key.split('.')[0].split('-')[1])

/** Segments in write order. An open segment whose writer died is sealed here (its process is gone). */
export function listSegments(dir: string): Segment[] {
  if (!existsSync(dir)) return []
  const out: Segment[] = []
  for (const name of readdirSync(dir).sort()) {
    let file = path.join(dir, name)
    let sealed = name.endsWith(SEALED)
    if (!sealed && !name.endsWith(OPEN)) continue
    const key = name.slice(0, name.lastIndexOf('.'))
    if (!sealed && !isAlive(writerPid(key))) {
      const to = path.join(dir, key + SEALED)
      try {
        renameSync(file, to)
        file = to
        sealed = true
      } catch {
        // sealed by its writer or another scan meanwhile: found under its sealed name below
      }
    }
    // The writer may seal (rename) the segment between readdir and stat: then it is under its sealed name.
    const found = statSegment(file) ?? (sealed ? undefined : statSegment(path.join(dir, key + SEALED)))
    if (found) out.push({key, ...found})
  }
  // A segment renamed while the directory was read can be listed under both names: keep the sealed one.
  const byKey = new Map<string, Segment>()
  for (const seg of out) if (!byKey.get(seg.key)?.sealed) byKey.set(seg.key, seg)
  return byKey.size === out.length ? out : [...byKey.values()]
}

function statSegment(file: string): {file: string; sealed: boolean; size: number} | undefined {
  try {
    return {file, sealed: file.endsWith(SEALED), size: statSync(file).size}
  } catch {
    return undefined // deleted (collected) under us: the next scan does not list it
  }
}

/** Whether a segment still exists under either of its names. */
export function segmentExists(dir: string, key: string): boolean {
  return existsSync(path.join(dir, key + OPEN)) || existsSync(path.join(dir, key + SEALED))
}

export function journalBytes(dir: string): number {
  return listSegments(dir).reduce((n, s) => n + s.size, 0)
}

/**
 * Whole lines from `offset`, at most about `maxBytes` (a longer single line
 * is still returned whole), as views of one read buffer without their line
 * breaks: the shipper hands the sinks bytes, never strings. The bytes are
 * read into `into` when it is large enough (the shipper reuses one buffer
 * per batch: the views are valid until it reads again), else into a new one.
 */
export async function readLines(
  segment: Segment,
  offset: number,
  maxLines: number,
  maxBytes: number,
  into?: Buffer,
): Promise<{lines: Buffer[]; next: number; skipped: number; used: number}> {
  const handle = await open(segment.file, 'r').catch(() => undefined)
  if (!handle) return {lines: [], next: offset, skipped: 0, used: 0}
  try {
    const size = (await handle.stat()).size
    let want = Math.min(maxBytes, size - offset)
    for (;;) {
      if (want <= 0) return {lines: [], next: offset, skipped: 0, used: 0}
      const buf = into && into.length >= want ? into.subarray(0, want) : Buffer.allocUnsafe(want)
      const {bytesRead} = await handle.read(buf, 0, want, offset)
      const end = buf.lastIndexOf(10, bytesRead - 1)
      if (end < 0) {
        if (offset + bytesRead < size) {
          want = Math.min(want * 2, size - offset) // one line longer than maxBytes
          continue
        }
        // A torn last line (a crash mid-write) in a sealed segment can never complete.
        return segment.sealed ? {lines: [], next: size, skipped: 1, used: 0} : {lines: [], next: offset, skipped: 0, used: 0}
      }
      const lines: Buffer[] = []
      let start = 0
      while (start <= end && lines.length < maxLines) {
        const nl = buf.indexOf(10, start)
        if (nl > start) lines.push(buf.subarray(start, nl))
        start = nl + 1
      }
      return {lines, next: offset + start, skipped: 0, used: buf.buffer === into?.buffer ? start : 0}
    }
  } finally {
    await handle.close()
  }
}
