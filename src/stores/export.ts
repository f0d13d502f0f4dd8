import {createWriteStream, renameSync, rmSync} from 'node:fs'
import {Readable, Transform, type Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createGzip} from 'node:zlib'
import type pg from 'pg'
import QueryStream from 'pg-query-stream'
import type {Filter} from '../filters/parse.js'
import {toPredicate} from '../filters/predicate.js'
import {HAR_TAIL, harEntry, harHead} from '../render/har.js'
import {csvLine} from '../render/records.js'
import {MODES} from '../util/files.js'
import {readRecords} from './files/reader.js'
import {columnsOf, prepareCopyExport, selectJson, selectRecords} from './postgres/reader.js'
import {to as copyTo} from 'pg-copy-streams'
import {copyTextToNdjson} from './postgres/copy-text.js'

export const EXPORT_FORMATS = ['csv', 'ndjson', 'json', 'har'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]
export type ExportResult = {rows: number; bytes: number; seconds: number; file: string | null}

/** Rows → text in the chosen format, one row at a time (constant memory). */
function encoder(format: ExportFormat, columns: string[], version: string): Transform {
  let first = true
  return new Transform({
    writableObjectMode: true,
    transform(row: Record<string, unknown>, _enc, done) {
      delete row.log_type
      // a row rendered by PostgreSQL arrives as {j: '{...}'}; one from the files is an object
      const json = typeof row.j === 'string' && Object.keys(row).length === 1 ? row.j : undefined
      let out = ''
      if (format === 'csv') out = (first ? csvLine(columns) : '') + csvLine(columns.map((c) => row[c]))
      else if (format === 'ndjson') out = (json ?? JSON.stringify(row)) + '\n'
      else if (format === 'json') out = (first ? '[\n' : ',\n') + (json ?? JSON.stringify(row))
      else out = (first ? harHead(version) : ',') + JSON.stringify(harEntry(row))
      first = false
      done(null, out)
    },
    flush(done) {
      if (format === 'csv' && first) return done(null, csvLine(columns))
      if (format === 'json') return done(null, first ? '[]\n' : '\n]\n')
      if (format === 'har') return done(null, (first ? harHead(version) : '') + HAR_TAIL)
      done()
    },
  })
}

/**
 * Streams every matching record to `out` (a file, or stdout when null):
 * rows come from a server-side cursor (or the JSONL files), so memory stays
 * flat whatever the size. A file is written under a temporary name and
 * renamed at the end; on failure or abort it is removed.
 */
export async function exportRecords(options: {
  source: {db: pg.ClientBase} | {logDir: string}
  filter: Filter
  format: ExportFormat
  out: string | null
  gzip: boolean
  version: string
  signal?: AbortSignal
  onProgress?: (rows: number) => void
}): Promise<ExportResult> {
  const started = performance.now()
  const columns = columnsOf(options.filter.logType)
  let rows = 0
  let input: Readable
  if ('db' in options.source && (options.format === 'csv' || options.format === 'ndjson')) {
    return copyExport(options.source.db, options, columns, started)
  }
  if ('db' in options.source) {
    // JSON comes rendered by PostgreSQL as text; HAR needs the values
    const q = options.format === 'json' ? selectJson(options.filter, columns, Number.MAX_SAFE_INTEGER) : selectRecords(options.filter, columns, Number.MAX_SAFE_INTEGER)
    input = options.source.db.query(new QueryStream(q.text, q.values as unknown[], {batchSize: 5000}))
  } else {
    const match = toPredicate(options.filter)
    const source = readRecords(options.source.logDir, options.filter.logType)
    input = Readable.from((async function* () {
      for await (const r of source) if (match(r)) yield r
    })())
  }
  const count = new Transform({
    objectMode: true,
    transform(row, _e, done) {
      rows++
      if (rows % 5000 === 0) options.onProgress?.(rows)
      done(null, row)
    },
  })
  const written = await writeOut([input, count, encoder(options.format, columns, options.version)], options)
  return {rows, bytes: written.bytes, seconds: (performance.now() - started) / 1000, file: written.file}
}

/**
 * Runs the stages into the output: `FILE.partial`, renamed when complete and
 * removed on failure or abort, or stdout. Gzips when asked; counts the bytes written.
 */
async function writeOut(
  stages: Array<NodeJS.ReadableStream | NodeJS.ReadWriteStream>,
  options: {out: string | null; gzip: boolean; signal?: AbortSignal},
): Promise<{bytes: number; file: string | null}> {
  let bytes = 0
  const measure = new Transform({
    transform(chunk: Buffer, _e, done) {
      bytes += chunk.length
      done(null, chunk)
    },
  })
  const partial = options.out ? `${options.out}.partial` : null
  const sink: Writable = partial ? createWriteStream(partial, {mode: MODES.sharedFile}) : process.stdout
  const all: Array<NodeJS.ReadableStream | NodeJS.WritableStream | NodeJS.ReadWriteStream> = [...stages]
  if (options.gzip) all.push(createGzip())
  all.push(measure, sink)
  try {
    await pipeline(all as unknown as [Readable, Writable], {signal: options.signal, end: Boolean(partial)} as never)
    if (partial) renameSync(partial, options.out!)
  } catch (error) {
    if (partial) rmSync(partial, {force: true})
    // a reader that stopped early (`export ... | head`) is not a failure
    if (!partial && (error as NodeJS.ErrnoException).code === 'EPIPE') return {bytes, file: null}
    throw error
  }
  return {bytes, file: options.out}
}

/** CSV and NDJSON from PostgreSQL's COPY: CSV is passed through, NDJSON built from the text format; gzipped if asked. */
async function copyExport(db: pg.ClientBase, options: Parameters<typeof exportRecords>[0], columns: string[], started: number): Promise<ExportResult> {
  const sql = await prepareCopyExport(db, options.filter, columns, options.format as 'csv' | 'ndjson')
  const copy = db.query(copyTo(sql))
  let lines = 0
  const progress = new Transform({
    transform(chunk: Buffer, _e, done) {
      for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++
      options.onProgress?.(lines)
      done(null, chunk)
    },
  })
  const written = await writeOut(options.format === 'csv' ? [copy, progress, crlfRecords()] : [copy, progress, copyTextToNdjson(columns)], options)
  return {rows: copy.rowCount, bytes: written.bytes, seconds: (performance.now() - started) / 1000, file: written.file}
}

/**
 * PostgreSQL ends CSV records with LF; RFC 4180 wants CRLF. Line breaks inside
 * quoted fields are data and stay as they are, so quoting is tracked across chunks.
 */
export function crlfRecords(): Transform {
  let quoted = false
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      const out = Buffer.allocUnsafe(chunk.length * 2)
      let n = 0
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i]
        if (b === 0x22) quoted = !quoted
        else if (b === 0x0a && !quoted && (n === 0 || out[n - 1] !== 0x0d)) out[n++] = 0x0d
        out[n++] = b
      }
      done(null, out.subarray(0, n))
    },
  })
}
