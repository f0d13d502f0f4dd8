import {createReadStream, existsSync, readdirSync} from 'node:fs'
import path from 'node:path'
import {createInterface} from 'node:readline'
import {createGunzip} from 'node:zlib'
import {usageError} from '../../errors.js'
import type {Filter} from '../../filters/parse.js'
import {comparePositions, keysetPredicate, toPredicate} from '../../filters/predicate.js'
import {LOG_TYPE} from '../log-types.js'
import {type LogType, type QueryOptions, type Row, positionOf} from '../source.js'

/** The name of the current JSONL file of a log type; its rotated backups add `.N.gz`. */
export const fileName = (logType: LogType) => LOG_TYPE[logType].file

/** The JSONL files `run` writes, current and rotated (gzipped) ones, for one log type. */
export function logFiles(dir: string, logType: LogType): string[] {
  const base = fileName(logType)
  if (!existsSync(dir)) return []
  // the current file, then its backups newest first (.1.gz, .2.gz, …)
  const rank = (n: string) => (n === base ? 0 : Number(n.slice(base.length + 1, -3)) || Number.MAX_SAFE_INTEGER)
  return readdirSync(dir)
    .filter((n) => n === base || (n.startsWith(base + '.') && n.endsWith('.gz')))
    .sort((a, b) => rank(a) - rank(b))
    .map((n) => path.join(dir, n))
}

const HINT = ['Give the directory `run` writes its JSONL files to: --log-dir DIR (or logDir / AUDIT_LOGS_LOG_DIR)']

/** A log directory that does not exist is an error (a mistyped path must not read as "no matching records"). */
export function existingLogDir(dir: string): string {
  if (!existsSync(dir)) throw usageError(`The log directory ${dir} does not exist`, HINT)
  return dir
}

/** The same for a directory that holds none of this type's files. */
export function filesOf(dir: string, logType: LogType): string[] {
  existingLogDir(dir)
  const files = logFiles(dir, logType)
  if (files.length === 0)
    throw usageError(`The log directory ${dir} holds no ${fileName(logType)} (nor rotated ${fileName(logType)}.N.gz)`, HINT)
  return files
}

/** Parses one JSONL line; a torn or foreign line is skipped. The line's `log_type` is the file's, not a field. */
export function parseLine(line: string): Row | undefined {
  if (!line) return undefined
  try {
    const r = JSON.parse(line)
    if (r === null || typeof r !== 'object' || Array.isArray(r)) return undefined
    if (typeof r.created_at !== 'string' || Number.isNaN(Date.parse(r.created_at))) return undefined // not a record of ours
    delete r.log_type
    return r
  } catch {
    return undefined
  }
}

/** Streams every record of the files, parsed. */
export async function* readRecords(files: string[]): AsyncGenerator<Row> {
  for (const file of files) {
    const raw = createReadStream(file)
    const lines = createInterface({input: file.endsWith('.gz') ? raw.pipe(createGunzip()) : raw, crlfDelay: Infinity})
    for await (const line of lines) {
      const r = parseLine(line)
      if (r) yield r
    }
  }
}

type Kept = {at: number; id: string; r: Row}

/**
 * The `limit` newest (or oldest) matching records beyond `after`, in that order: (created_at, id), as the
 * databases order them, whatever the order of the lines. In bounded memory.
 */
export async function queryFiles(files: string[], f: Filter, options: QueryOptions): Promise<Row[]> {
  const {limit, order = 'newest', after} = options
  const match = toPredicate(f)
  const beyond = after ? keysetPredicate(positionOf(after), order) : () => true
  const sign = order === 'newest' ? -1 : 1
  const inOrder = (a: Kept, b: Kept) => sign * comparePositions(a, b)
  let kept: Kept[] = []
  for await (const r of readRecords(files)) {
    if (!match(r) || !beyond(r)) continue
    kept.push({at: Date.parse(String(r.created_at)), id: String(r.id), r})
    if (kept.length > limit * 2) kept = kept.sort(inOrder).slice(0, limit)
  }
  return kept
    .sort(inOrder)
    .slice(0, limit)
    .map((k) => k.r)
}

/** The log type a file's name says (requests.jsonl, access.jsonl.3.gz, a copy named events.jsonl.gz), or undefined. */
export function logTypeOfFile(file: string): LogType | undefined {
  const name = path.basename(file).replace(/(\.\d+)?\.gz$/, '')
  return (Object.keys(LOG_TYPE) as LogType[]).find((t) => LOG_TYPE[t].file === name)
}

/** One line of a file, numbered from 1: its text, or (past the cap) only its length; `bytes` is how much of the file (as stored) has been read. */
export type NumberedLine = {n: number; text?: string; tooLong?: number; bytes: number}

/**
 * Every line of a file (gunzipped when its name ends in .gz), numbered, in memory bounded by `maxLineBytes`: a longer
 * line is kept as its length only, whatever its size (readline would hold a line of any length whole).
 */
export async function* readNumberedLines(file: string, maxLineBytes: number): AsyncGenerator<NumberedLine> {
  const raw = createReadStream(file)
  let bytes = 0
  raw.on('data', (chunk) => (bytes += chunk.length))
  const input = file.endsWith('.gz') ? raw.pipe(createGunzip()) : raw
  raw.on('error', (error) => input.destroy(error))
  let parts: Buffer[] = []
  let length = 0
  let n = 0
  const take = (piece: Buffer) => {
    length += piece.length
    if (length <= maxLineBytes) parts.push(piece)
    else parts = []
  }
  const line = (): NumberedLine => {
    n++
    const out: NumberedLine =
      length > maxLineBytes ? {n, tooLong: length, bytes} : {n, text: Buffer.concat(parts).toString('utf8').replace(/\r$/, ''), bytes}
    parts = []
    length = 0
    return out
  }
  for await (const chunk of input as AsyncIterable<Buffer>) {
    let from = 0
    for (let nl = chunk.indexOf(10, from); nl >= 0; nl = chunk.indexOf(10, from)) {
      take(chunk.subarray(from, nl))
      yield line()
      from = nl + 1
    }
    if (from < chunk.length) take(chunk.subarray(from))
  }
  if (length > 0) yield line()
}
