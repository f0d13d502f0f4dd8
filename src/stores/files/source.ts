import {type FileHandle, open, stat} from 'node:fs/promises'
import path from 'node:path'
import {Readable} from 'node:stream'
import {StringDecoder} from 'node:string_decoder'
import {usageError} from '../../errors.js'
import type {Filter} from '../../filters/parse.js'
import {toPredicate} from '../../filters/predicate.js'
import {pause} from '../follow.js'
import {LOG_TYPE, LOG_TYPES} from '../log-types.js'
import {countRecords, summarizeEvents} from '../event-summary.js'
import {
  type ExportFormat,
  type ExportInput,
  type LogType,
  type QueryOptions,
  type RecordSource,
  type Row,
  type StatsOptions,
} from '../source.js'
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

  async query(f: Filter, options: QueryOptions) {
    return queryFiles(filesOf(this.dir, f.logType), f, options)
  }

  async get(id: string): Promise<{logType: LogType; record: Row} | undefined> {
    const types = LOG_TYPES.filter((t) => logFiles(this.dir, t).length > 0)
    if (types.length === 0)
      throw usageError(
        `The log directory ${this.dir} holds none of ${LOG_TYPES.map((t) => LOG_TYPE[t].file).join(', ')} (nor rotated ones)`,
      )
    for (const logType of types) {
      for await (const record of readRecords(logFiles(this.dir, logType))) if (record.id === id) return {logType, record}
    }
    return undefined
  }

  eventSummary(f: Filter, options: {top: number}) {
    const files = filesOf(this.dir, f.logType)
    const matching = (g: Filter) => {
      const match = toPredicate(g)
      return (async function* () {
        for await (const r of readRecords(files)) if (match(r)) yield r
      })()
    }
    return summarizeEvents(countRecords(matching), f, options.top)
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
 * its last lines are read, so none is missed at a rotation. Two rotations
 * between two looks leave a file this never opened as `file.1`, until it is
 * gzipped: it is read whole then; once gzipped it is passed over (a
 * `--interval` shorter than a rotation's time avoids it). A file cut short
 * in place (`logrotate copytruncate`, the sink's own repair after a crash)
 * is read again from its start.
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
  let read = 0 // bytes read by the last round: a busy file is read again without a pause
  const buffer = Buffer.alloc(1 << 16)
  const openFile = async (name: string, atEnd: boolean) => {
    try {
      handle = await open(name, 'r')
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
      read += bytesRead
      position += bytesRead
      const lines = (partial + decoder.write(buffer.subarray(0, bytesRead))).split('\n')
      partial = lines.pop()!
      for (const line of lines) {
        const r = parseLine(line)
        if (r && match(r)) yield r
      }
    }
  }
  await openFile(file, true)
  try {
    do {
      read = 0
      yield* drain()
      const now = await stat(file).catch(() => undefined)
      if (now && now.ino === ino && now.size < position) {
        await openFile(file, false) // cut short in place: what it holds now is new
        yield* drain()
      } else if (now && now.ino !== ino) {
        yield* drain() // what was written before the rename
        const seen = ino
        await handle?.close()
        // a file rotated in and out again between two looks: still plain as file.1 until gzipped
        const between = await stat(`${file}.1`).catch(() => undefined)
        if (between && seen !== -1 && between.ino !== seen && between.ino !== now.ino) {
          await openFile(`${file}.1`, false)
          yield* drain()
          await handle?.close()
        }
        await openFile(file, false)
        yield* drain()
      }
    } while (await pause(read > 0 ? 0 : options.intervalMs, options.signal))
  } finally {
    await handle?.close()
  }
}
