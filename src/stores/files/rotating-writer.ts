import {createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync, truncateSync, unlinkSync} from 'node:fs'
import {open, type FileHandle} from 'node:fs/promises'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'
import {MODES} from '../../util/files.js'
import {createGzip} from 'node:zlib'

/**
 * Rotated files are compressed at gzip's level 3, not its default 6: on generated audit records
 * level 3 ran at 412 MB/s for a ratio of 9.8, level 6 at 199 MB/s for 11.6. At a busy proxy's
 * rate the default cost more CPU per record than building the record.
 */
const GZIP_LEVEL = 3
const GZIP_READ_BYTES = 64 * 1024

/** Where a rotating file stood: its inode (a rotation or an external move makes a new file) and length. */
export type FilePosition = {ino: number; size: number}

/** Names of a rotating file's backups: name.1.gz is the newest (pure). */
export const backupName = (file: string, n: number) => `${file}.${n}.gz`

/**
 * Appends to `file`; past maxBytes it is renamed to file.1 and gzipped to
 * file.1.gz, older backups shift up and those beyond backupCount are
 * deleted (the seeds' GUNICORN_LOG_MAX_BYTES × GUNICORN_LOG_BACKUP_COUNT).
 * reopen() serves SIGHUP, after an external logrotate moved the file.
 */
export class RotatingWriter {
  private handle?: FileHandle
  private size = 0
  private ino = 0
  private recovered = false
  private gzipping: Promise<void> = Promise.resolve()

  constructor(
    readonly file: string,
    private readonly maxBytes: number,
    private readonly backupCount: number,
  ) {
    mkdirSync(path.dirname(file), {recursive: true, mode: MODES.sharedDir})
  }

  private async ensureOpen(): Promise<FileHandle> {
    if (!this.recovered) {
      await this.recoverBackup()
      this.recovered = true
    }
    if (!this.handle) {
      this.handle = await open(this.file, 'a', MODES.sharedFile)
      const st = await this.handle.stat()
      this.size = st.size
      this.ino = st.ino
    }
    return this.handle
  }

  async write(data: Buffer): Promise<void> {
    await this.ensureOpen() // the size of a file from before a start or a reopen counts too
    if (this.size > 0 && this.size + data.length > this.maxBytes) await this.rotate()
    const handle = await this.ensureOpen()
    try {
      // one write() may take part of the data (a disk filling up): the rest follows until all of it is in
      for (let off = 0; off < data.length;) off += (await handle.write(data, off, data.length - off)).bytesWritten
      await handle.datasync()
    } catch (error) {
      // a write the disk refused halfway is cut back, so the batch sent again does not follow a torn line
      await handle.truncate(this.size).catch(() => {})
      throw error
    }
    this.size += data.length
  }

  /** The file and length written so far (after the last write); {ino: 0} when there is no file. */
  position(): FilePosition {
    if (this.handle) return {ino: this.ino, size: this.size}
    if (!existsSync(this.file)) return {ino: 0, size: 0}
    const st = statSync(this.file)
    return {ino: st.ino, size: st.size}
  }

  /**
   * Cuts what was written after `saved`: the same file longer than it was is
   * cut back to its length; a file made since (after a rotation or a move)
   * holds only later lines and is emptied. Nothing saved: nothing is cut.
   */
  async truncateTo(saved: FilePosition | undefined): Promise<void> {
    if (!saved || !existsSync(this.file)) return
    const st = statSync(this.file)
    const to = st.ino === saved.ino ? saved.size : 0
    if (st.size > to) {
      await this.reopen()
      truncateSync(this.file, to)
    }
  }

  async reopen(): Promise<void> {
    await this.handle?.close()
    this.handle = undefined
  }

  /** Backups shift up one place; the oldest beyond backupCount is deleted. */
  private shiftBackups(): void {
    for (let n = this.backupCount; n >= 1; n--) {
      const from = backupName(this.file, n)
      if (!existsSync(from)) continue
      if (n === this.backupCount) unlinkSync(from)
      else renameSync(from, backupName(this.file, n + 1))
    }
  }

  /**
   * file.1 → file.1.gz (at GZIP_LEVEL); one that fails (a full disk) leaves file.1 whole and no partial .gz.
   * The file is read into one buffer, reused chunk after chunk once gzip has taken it: a read stream's
   * fresh 64 KiB per chunk was garbage until the thread's next collection, and a busy proxy's
   * rotations made it the shipping thread's largest use of memory.
   */
  private async gzip(plain: string): Promise<void> {
    const out = backupName(this.file, 1)
    const input = await open(plain, 'r')
    const gz = createGzip({level: GZIP_LEVEL})
    const written = pipeline(gz, createWriteStream(out, {mode: MODES.sharedFile}))
    written.catch(() => {}) // settled below, on either path
    try {
      const chunk = Buffer.allocUnsafe(GZIP_READ_BYTES)
      for (;;) {
        const {bytesRead} = await input.read(chunk, 0, chunk.length, null)
        if (bytesRead === 0) break
        await new Promise<void>((resolve, reject) => gz.write(chunk.subarray(0, bytesRead), (error) => (error ? reject(error) : resolve())))
      }
      gz.end()
      await written
      unlinkSync(plain)
    } catch (error) {
      gz.destroy(error as Error)
      const cause = await written.then(
        () => undefined,
        (e: Error) => e,
      ) // the output's own failure (ENOSPC) if it failed first, else this one
      rmSync(out, {force: true})
      throw cause ?? error
    } finally {
      await input.close()
    }
  }

  /**
   * A rotation a crash interrupted, or whose gzip failed, left file.1 plain
   * (the backups had already shifted, so a file.1.gz is that gzip's
   * unfinished output): it is gzipped again now, rather than overwritten by
   * the next rotation. Throws while that cannot be done.
   */
  private async recoverBackup(): Promise<void> {
    const plain = `${this.file}.1`
    if (!existsSync(plain)) return
    rmSync(backupName(this.file, 1), {force: true})
    await this.gzip(plain)
  }

  private async rotate(): Promise<void> {
    await this.reopen()
    await this.gzipping.catch(() => {}) // one that failed left file.1 plain: gzipped below, before the backups shift
    if (this.backupCount === 0) {
      unlinkSync(this.file)
      return
    }
    await this.recoverBackup()
    this.shiftBackups()
    const plain = `${this.file}.1`
    renameSync(this.file, plain)
    this.gzipping = this.gzip(plain)
    this.gzipping.catch(() => {}) // seen by the next rotation (or the next start): not an unhandled rejection
  }

  async close(): Promise<void> {
    await this.reopen()
    await this.gzipping.catch(() => {})
  }
}
