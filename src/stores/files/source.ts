import {type FileHandle, open, stat} from 'node:fs/promises'
import path from 'node:path'
import {Readable} from 'node:stream'
import {StringDecoder} from 'node:string_decoder'
import {usageError} from '../../errors.js'
import type {Filter} from '../../filters/parse.js'
import {toPredicate} from '../../filters/predicate.js'
import {pause} from '../follow.js'
import {type ExportFormat, type ExportInput, type LogType, type Order, type RecordSource, type Row, type StatsOptions} from '../source.js'
import {existingLogDir, fileName, filesOf, logFiles, queryFiles, readRecords, parseLine} from './reader.js'
import {statsOfRecords} from './stats.js'

/**
 * The JSONL files `run` writes (current and rotated, gzipped ones) as a
 * source of records: every read is one streaming pass, in bounded memory.
 * A directory that does not exist, or holds none of the files asked for,
 * is an error, never "no matching records".
 */
export class FilesSource implements RecordSource {
  readonly kind = 'files'
  constructor(readonly dir: string) {
    existingLogDir(dir)
  }

  query(f: Filter, options: {limit: number; order?: Order}) {
    return queryFiles(filesOf(this.dir, f.logType), f, options.limit, options.order)
  }

  async get(id: string): Promise<{logType: LogType; record: Row} | undefined> {
    const types = (['request', 'access'] as const).filter((t) => logFiles(this.dir, t).length > 0)
    if (types.length === 0) throw usageError(`The log directory ${this.dir} holds no requests.jsonl nor access.jsonl (nor rotated ones)`)
    for (const logType of types) {
      for await (const record of readRecords(logFiles(this.dir, logType))) if (record.id === id) return {logType, record}
    }
    return undefined
  }

  stats(f: Filter, options: StatsOptions) {
    return statsOfRecords(readRecords(filesOf(this.dir, f.logType)), f, options)
  }

  /** The files' records in the files' order (the current file first, then the backups, each oldest line first). */
  async export(f: Filter, _format: ExportFormat): Promise<ExportInput> {
    const match = toPredicate(f)
    const records = readRecords(filesOf(this.dir, f.logType))
    return {
      rows: Readable.from(
        (async function* () {
          for await (const r of records) if (match(r)) yield r
        })(),
      ),
    }
  }

  follow(f: Filter, options: {intervalMs: number; signal: AbortSignal}) {
    return followFile(path.join(this.dir, fileName(f.logType)), toPredicate(f), options)
  }
}

/**
 * `tail -F` for one JSONL file: the lines appended from now on. Rotation
 * renames the file and starts a new one; the old one stays open here until
 * its last lines are read, so none is missed at a rotation.
 */
async function* followFile(
  file: string,
  match: (r: Row) => boolean,
  options: {intervalMs: number; signal: AbortSignal},
): AsyncGenerator<Row> {
  let handle: FileHandle | undefined
  let ino = -1
  let position = 0
  let decoder = new StringDecoder('utf8')
  let partial = ''
  const buffer = Buffer.alloc(1 << 16)
  const openCurrent = async (atEnd: boolean) => {
    try {
      handle = await open(file, 'r')
      const s = await handle.stat()
      ino = s.ino
      position = atEnd ? s.size : 0
    } catch {
      handle = undefined // not written yet: tried again on the next round
    }
    decoder = new StringDecoder('utf8')
    partial = ''
  }
  async function* drain(): AsyncGenerator<Row> {
    if (!handle) return
    for (;;) {
      const {bytesRead} = await handle.read(buffer, 0, buffer.length, position)
      if (bytesRead === 0) return
      position += bytesRead
      const lines = (partial + decoder.write(buffer.subarray(0, bytesRead))).split('\n')
      partial = lines.pop()!
      for (const line of lines) {
        const r = parseLine(line)
        if (r && match(r)) yield r
      }
    }
  }
  await openCurrent(true)
  try {
    do {
      yield* drain()
      const now = await stat(file).catch(() => undefined)
      if (now && now.ino !== ino) {
        yield* drain() // what was written before the rename
        await handle?.close()
        await openCurrent(false)
        yield* drain()
      }
    } while (await pause(options.intervalMs, options.signal))
  } finally {
    await handle?.close()
  }
}
