import {readFile, stat} from 'node:fs/promises'
import path from 'node:path'
import {gunzipSync} from 'node:zlib'
import type {Masker} from '../capture/masking.js'
import type {Rejection} from '../pipeline/sinks.js'
import {readNumberedLines} from '../stores/files/reader.js'
import type {LogType} from '../stores/log-types.js'
import {formatBytes} from '../util/bytes.js'
import {harEntries, harRecord} from './har.js'
import {recordProblem} from './records.js'

/**
 * The longest JSONL line taken: the longest `run` writes is about 6 MiB (a 1 MiB body, every byte escaped, with
 * AUDIT_LOGS_SAVE_FULL_BODY); a longer line is refused without being held in memory.
 */
export const MAX_LINE_BYTES = 8 * 1024 * 1024
/** HAR files are one JSON document, read whole (no streaming JSON parser is installed): at most this large. */
export const MAX_HAR_BYTES = 256 * 1024 * 1024
/** A batch is written once it holds this many bytes, whatever its count of records, so memory stays bounded. */
const MAX_BATCH_BYTES = 16 * 1024 * 1024
/** The refusals kept for the summary; past this they are only counted. */
export const MAX_REFUSALS_LISTED = 1000

export type ImportFile = {file: string; format: 'jsonl' | 'har'; logType: LogType; bytes: number}
/** A line (or HAR entry) refused: where, and why (fields named, never the values). */
export type Refusal = {file: string; line?: number; entry?: number; error: string}
export type StoreCounts = {imported: number; alreadyPresent: number}
export type StoreWrite = (logType: LogType, lines: Buffer[]) => Promise<StoreCounts & {rejected: Rejection[]}>
export type Progress = {file: string; bytesRead: number; bytesTotal: number; records: number}

export type ImportReport = {
  dryRun: boolean
  files: Array<{file: string; format: 'jsonl' | 'har'; logType: LogType; records: number; refused: number}>
  /** records read that every store's checks took (sent to the stores; in a dry run, what would be) */
  records: number
  stores: Record<string, StoreCounts>
  refused: number
  refusals: Refusal[]
  /** PostgreSQL: the partitions made for imported rows that landed in the default ones (leftInDefault: the role could not) */
  partitions?: {created: number; movedRows: number; leftInDefault?: number}
}

export const where = (r: Refusal) => `${r.file}${r.line !== undefined ? `:${r.line}` : r.entry !== undefined ? ` entry ${r.entry}` : ''}`

/** JSON.parse's message quotes the text around the fault, which may be a secret: only the position is said. */
const notJson = (error: unknown) => {
  const at = /position (\d+)/.exec((error as Error).message)?.[1]
  return `not JSON${at ? ` (at character ${at})` : ''}`
}

type Where = Omit<Refusal, 'error'>
type Pending = {line: Buffer; at: Where}

/**
 * Reads each file (JSONL line by line, rotated .gz ones gunzipped on the way; HAR whole), checks every record, and
 * writes batches to each store (none in a dry run). The stores are idempotent on id: a record already there is
 * counted, never changed.
 */
export async function importFiles(
  files: ImportFile[],
  options: {stores: Record<string, StoreWrite>; batchSize: number; masker: Masker; onProgress?: (p: Progress) => void},
): Promise<ImportReport> {
  const report: ImportReport = {
    dryRun: Object.keys(options.stores).length === 0,
    files: [],
    records: 0,
    stores: {},
    refused: 0,
    refusals: [],
  }
  for (const name of Object.keys(options.stores)) report.stores[name] = {imported: 0, alreadyPresent: 0}
  const bytesTotal = files.reduce((n, f) => n + f.bytes, 0)
  let bytesBefore = 0

  for (const f of files) {
    const counts = {file: f.file, format: f.format, logType: f.logType, records: 0, refused: 0}
    report.files.push(counts)
    const refuse = (at: Refusal) => {
      counts.refused++
      report.refused++
      if (report.refusals.length < MAX_REFUSALS_LISTED) report.refusals.push(at)
    }
    let batch: Pending[] = []
    let batchBytes = 0
    /** One batch: written to each store in turn, what a store refused counted as refused. */
    const write = async (sent: Pending[]) => {
      const refusedHere = new Set<Buffer>()
      for (const [name, store] of Object.entries(options.stores)) {
        const r = await store(
          f.logType,
          sent.map((p) => p.line),
        )
        report.stores[name].imported += r.imported
        report.stores[name].alreadyPresent += r.alreadyPresent
        for (const x of r.rejected) {
          if (refusedHere.has(x.line)) continue
          refusedHere.add(x.line)
          const p = sent.find((s) => s.line === x.line)
          if (p) refuse({...p.at, error: `${name} refused it: ${x.error}`})
        }
      }
      counts.records += sent.length - refusedHere.size
      report.records += sent.length - refusedHere.size
    }
    // one batch is written while the next is read and checked (a store's connection takes one batch at a time)
    let writing: Promise<void> = Promise.resolve()
    const flush = async () => {
      if (batch.length === 0) return
      const sent = batch
      batch = []
      batchBytes = 0
      await writing
      writing = write(sent)
      writing.catch(() => {}) // awaited (and thrown) at the next flush or the file's end
    }
    const take = async (record: unknown, text: string | undefined, at: Where) => {
      const problem = recordProblem(f.logType, record)
      if (problem) return refuse({...at, error: problem})
      const line = Buffer.from(text ?? JSON.stringify(record))
      batch.push({line, at})
      batchBytes += line.length
      if (batch.length >= options.batchSize || batchBytes >= MAX_BATCH_BYTES) await flush()
    }

    if (f.format === 'jsonl') {
      let last = 0
      for await (const l of readNumberedLines(f.file, MAX_LINE_BYTES)) {
        const at = {file: f.file, line: l.n}
        if (l.tooLong !== undefined)
          refuse({...at, error: `a line of ${formatBytes(l.tooLong)}, over the ${formatBytes(MAX_LINE_BYTES)} a record can be`})
        else if (l.text!.trim() !== '') {
          let record: unknown
          try {
            record = JSON.parse(l.text!)
          } catch (error) {
            refuse({...at, error: notJson(error)})
            continue
          }
          await take(record, l.text, at)
        }
        if (l.n - last >= 1000) {
          last = l.n
          options.onProgress?.({file: f.file, bytesRead: bytesBefore + l.bytes, bytesTotal, records: report.records + batch.length})
        }
      }
    } else {
      let doc: unknown
      try {
        const raw = await readFile(f.file)
        doc = JSON.parse((f.file.endsWith('.gz') ? gunzipSync(raw, {maxOutputLength: MAX_HAR_BYTES}) : raw).toString('utf8'))
      } catch (error) {
        const code = (error as {code?: string}).code
        refuse({
          file: f.file,
          error:
            code === 'ERR_BUFFER_TOO_LARGE'
              ? `unzips to more than ${formatBytes(MAX_HAR_BYTES)}`
              : code
                ? (error as Error).message
                : notJson(error),
        })
        doc = undefined
      }
      if (doc !== undefined) {
        let entries: unknown[] = []
        try {
          entries = harEntries(doc)
        } catch (error) {
          refuse({file: f.file, error: (error as Error).message})
        }
        for (let i = 0; i < entries.length; i++) {
          const at = {file: f.file, entry: i + 1}
          let record: unknown
          try {
            record = harRecord(entries[i], options.masker)
          } catch (error) {
            refuse({...at, error: (error as Error).message})
            continue
          }
          await take(record, undefined, at)
        }
      }
    }
    await flush()
    await writing
    bytesBefore += f.bytes
    options.onProgress?.({file: f.file, bytesRead: bytesBefore, bytesTotal, records: report.records})
  }
  return report
}

/** A file's size on disk, or an error naming the file when it cannot be read. */
export async function sizeOf(file: string): Promise<number> {
  return (await stat(file)).size
}

export const displayName = (file: string) => path.relative(process.cwd(), file) || file
