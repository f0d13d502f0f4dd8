import {createWriteStream} from 'node:fs'
import {once} from 'node:events'
import type pg from 'pg'
import type {MongoStore} from '../stores/mongo/connection.js'
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

/**
 * Loads generated records into the MongoDB store through the product's writer (insertLines: the
 * journal line parsed, toDocument, one unordered insertMany per batch), as the MongoDB sink ships them.
 */
export async function loadIntoMongo(
  store: MongoStore,
  options: GenerateOptions & {batchSize?: number; onBatch?: (written: number) => void},
): Promise<{rows: number; inserted: number; duplicates: number; rejected: number; seconds: number}> {
  const {insertLines} = await import('../stores/mongo/writer.js') // the driver only when MongoDB is loaded
  const started = performance.now()
  const batchSize = options.batchSize ?? 10_000
  const logType = (options.logType ?? 'request') as LogType
  let batch: Buffer[] = []
  let rows = 0
  let inserted = 0
  let duplicates = 0
  let rejected = 0
  const flush = async () => {
    const r = await insertLines(store, logType, batch)
    inserted += r.inserted
    duplicates += r.duplicates
    rejected += r.rejected.length
    rows += batch.length
    batch = []
    options.onBatch?.(rows)
  }
  for (const record of generateRecords(options)) {
    batch.push(Buffer.from(JSON.stringify(record)))
    if (batch.length >= batchSize) await flush()
  }
  if (batch.length) await flush()
  return {rows, inserted, duplicates, rejected, seconds: (performance.now() - started) / 1000}
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
