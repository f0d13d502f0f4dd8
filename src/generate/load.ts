import {createWriteStream} from 'node:fs'
import {once} from 'node:events'
import type pg from 'pg'
import type {MongoStore} from '../stores/mongo/connection.js'
import type {LogType} from '../stores/postgres/periods.js'
import {writeLines} from '../stores/postgres/writer.js'
import {type GenerateOptions, generateRecords, recordBatches} from './records.js'

type LoadOptions = GenerateOptions & {batchSize?: number; onBatch?: (written: number) => void}

/** Writes the generated records batch after batch with `write`, reporting progress; how many, how long. */
async function load(options: LoadOptions, write: (batch: string[]) => Promise<void>): Promise<{rows: number; seconds: number}> {
  const started = performance.now()
  let rows = 0
  for (const batch of recordBatches(options, options.batchSize)) {
    await write(batch)
    rows += batch.length
    options.onBatch?.(rows)
  }
  return {rows, seconds: (performance.now() - started) / 1000}
}

/** Streams generated records into the audit database through the writer (stores/postgres/writer.ts), in batches. */
export async function loadIntoDatabase(
  client: pg.ClientBase,
  options: LoadOptions,
): Promise<{rows: number; inserted: number; seconds: number}> {
  let inserted = 0
  const done = await load(options, async (batch) => {
    inserted += (await writeLines(client, (options.logType ?? 'request') as LogType, batch)).inserted
  })
  return {...done, inserted}
}

/**
 * Loads generated records into the MongoDB store through the product's writer (insertLines: the
 * journal line parsed, toDocument, one unordered insertMany per batch), as the MongoDB sink ships them.
 */
export async function loadIntoMongo(
  store: MongoStore,
  options: LoadOptions,
): Promise<{rows: number; inserted: number; duplicates: number; rejected: number; seconds: number}> {
  const {insertLines} = await import('../stores/mongo/writer.js') // the driver only when MongoDB is loaded
  const logType = (options.logType ?? 'request') as LogType
  const totals = {inserted: 0, duplicates: 0, rejected: 0}
  const done = await load(options, async (batch) => {
    const r = await insertLines(
      store,
      logType,
      batch.map((line) => Buffer.from(line)),
    )
    totals.inserted += r.inserted
    totals.duplicates += r.duplicates
    totals.rejected += r.rejected.length
  })
  return {...done, ...totals}
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
