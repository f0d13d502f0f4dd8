import {createWriteStream} from 'node:fs'
import {once} from 'node:events'
import type pg from 'pg'
import type {LogType} from '../stores/postgres/periods.js'
import {writeLines} from '../stores/postgres/writer.js'
import {type GenerateOptions, generateRecords} from './records.js'

/** Streams generated records into the audit database through the COPY writer, in batches. */
export async function loadIntoDatabase(
  client: pg.ClientBase,
  options: GenerateOptions & {batchSize?: number; onBatch?: (written: number) => void},
): Promise<{rows: number; inserted: number; seconds: number}> {
  const started = performance.now()
  const batchSize = options.batchSize ?? 10_000
  let batch: string[] = []
  let rows = 0
  let inserted = 0
  const flush = async () => {
    inserted += (await writeLines(client, (options.logType ?? 'request') as LogType, batch)).inserted
    rows += batch.length
    batch = []
    options.onBatch?.(rows)
  }
  for (const record of generateRecords(options)) {
    batch.push(JSON.stringify(record))
    if (batch.length >= batchSize) await flush()
  }
  if (batch.length) await flush()
  return {rows, inserted, seconds: (performance.now() - started) / 1000}
}

/** Writes generated records as JSON lines (the form the journal and the files sink use). */
export async function writeNdjson(file: string | undefined, options: GenerateOptions): Promise<number> {
  const out = file ? createWriteStream(file) : process.stdout
  let rows = 0
  for (const record of generateRecords(options)) {
    if (!out.write(JSON.stringify(record) + '\n')) await once(out, 'drain')
    rows++
  }
  if (file) await new Promise((resolve) => (out as ReturnType<typeof createWriteStream>).end(resolve))
  return rows
}
