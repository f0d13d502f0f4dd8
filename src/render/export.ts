import {createWriteStream, renameSync, rmSync} from 'node:fs'
import {Transform, type Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createGzip} from 'node:zlib'
import type {Filter} from '../filters/parse.js'
import {type ExportFormat, type RecordSource, columnsOf} from '../stores/source.js'
import {MODES} from '../util/files.js'
import {encoder} from './encoders.js'

export type ExportResult = {rows: number; bytes: number; seconds: number; file: string | null}

/**
 * Streams every matching record of a source to `out` (a file, a stream such as
 * the viewer's HTTP response, or stdout when null), so memory stays flat whatever
 * the size. A file is written under `FILE.partial` and renamed at the end; on
 * failure or abort it is removed.
 */
export async function exportRecords(options: {
  source: RecordSource
  filter: Filter
  format: ExportFormat
  out: string | null | Writable
  gzip: boolean
  version: string
  signal?: AbortSignal
  onProgress?: (rows: number) => void
}): Promise<ExportResult> {
  const started = performance.now()
  const input = await options.source.export(options.filter, options.format)
  let rows = 0
  let stages: Array<NodeJS.ReadableStream | NodeJS.ReadWriteStream>
  if ('encoded' in input) {
    // the store encoded the format itself: count lines as they pass, for the progress shown
    let lines = 0
    const progress = new Transform({
      transform(chunk: Buffer, _e, done) {
        for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++
        options.onProgress?.(lines)
        done(null, chunk)
      },
    })
    stages = [...input.encoded, progress]
  } else {
    const count = new Transform({
      objectMode: true,
      transform(row, _e, done) {
        rows++
        if (rows % 5000 === 0) options.onProgress?.(rows)
        done(null, row)
      },
    })
    stages = [input.rows, count, encoder(options.format, columnsOf(options.filter.logType), options.version)]
  }
  const written = await writeOut(stages, options)
  if ('encoded' in input) rows = input.rowCount()
  return {rows, bytes: written.bytes, seconds: (performance.now() - started) / 1000, file: written.file}
}

/**
 * Runs the stages into the output: `FILE.partial`, renamed when complete and
 * removed on failure or abort, or stdout. Gzips when asked; counts the bytes written.
 */
async function writeOut(
  stages: Array<NodeJS.ReadableStream | NodeJS.ReadWriteStream>,
  options: {out: string | null | Writable; gzip: boolean; signal?: AbortSignal},
): Promise<{bytes: number; file: string | null}> {
  let bytes = 0
  const measure = new Transform({
    transform(chunk: Buffer, _e, done) {
      bytes += chunk.length
      done(null, chunk)
    },
  })
  const file = typeof options.out === 'string' ? options.out : null
  const partial = file ? `${file}.partial` : null
  const stream = typeof options.out === 'object' ? options.out : null
  const sink: Writable = partial ? createWriteStream(partial, {mode: MODES.sharedFile}) : (stream ?? process.stdout)
  const all: Array<NodeJS.ReadableStream | NodeJS.WritableStream | NodeJS.ReadWriteStream> = [...stages]
  if (options.gzip) all.push(createGzip())
  all.push(measure, sink)
  try {
    await pipeline(all as unknown as [NodeJS.ReadableStream, Writable], {signal: options.signal, end: Boolean(partial || stream)} as never)
    if (partial) renameSync(partial, file!)
  } catch (error) {
    if (partial) rmSync(partial, {force: true})
    // a reader that stopped early (`export ... | head`) is not a failure
    if (!partial && (error as NodeJS.ErrnoException).code === 'EPIPE') return {bytes, file: null}
    throw error
  }
  return {bytes, file}
}
