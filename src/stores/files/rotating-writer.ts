import {createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, statSync, unlinkSync} from 'node:fs'
import {open, type FileHandle} from 'node:fs/promises'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'
import {createGzip} from 'node:zlib'

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
  private gzipping: Promise<void> = Promise.resolve()

  constructor(
    readonly file: string,
    private readonly maxBytes: number,
    private readonly backupCount: number,
  ) {
    mkdirSync(path.dirname(file), {recursive: true})
  }

  private async ensureOpen(): Promise<FileHandle> {
    if (!this.handle) {
      this.handle = await open(this.file, 'a')
      this.size = (await this.handle.stat()).size
    }
    return this.handle
  }

  async write(data: Buffer): Promise<void> {
    if (this.size > 0 && this.size + data.length > this.maxBytes) await this.rotate()
    const handle = await this.ensureOpen()
    await handle.write(data)
    await handle.datasync()
    this.size += data.length
  }

  async reopen(): Promise<void> {
    await this.handle?.close()
    this.handle = undefined
  }

  private async rotate(): Promise<void> {
    await this.reopen()
    await this.gzipping
    if (this.backupCount === 0) {
      unlinkSync(this.file)
      return
    }
    for (let n = this.backupCount; n >= 1; n--) {
      const from = backupName(this.file, n)
      if (!existsSync(from)) continue
      if (n === this.backupCount) unlinkSync(from)
      else renameSync(from, backupName(this.file, n + 1))
    }
    const plain = `${this.file}.1`
    renameSync(this.file, plain)
    this.gzipping = pipeline(createReadStream(plain), createGzip(), createWriteStream(backupName(this.file, 1))).then(() => unlinkSync(plain))
  }

  async close(): Promise<void> {
    await this.reopen()
    await this.gzipping.catch(() => {})
  }

  currentSize(): number {
    return existsSync(this.file) ? statSync(this.file).size : 0
  }
}
