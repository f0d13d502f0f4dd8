import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import type pg from 'pg'
import {from as copyFrom} from 'pg-copy-streams'
import {type Chain, type Inserted, isChainConflict} from './integrity.js'
import {type LogType, LOG_TABLES} from './periods.js'
import * as sql from './sql/writer.js'

export type WriteResult = {received: number; inserted: number; duplicates: number}

const CHUNK_BYTES = 256 * 1024

/**
 * JSON escapes PostgreSQL refuses, each made U+FFFD rather than failing the
 * batch: \u0000 (its text cannot hold NUL) and a surrogate escape without
 * its pair (how JSON.stringify writes a lone surrogate: a JWT's `sub`, an
 * app's X-Audit-Extra, a string cut in the middle of a pair). A pair of
 * escapes is kept.
 */
const REFUSED_ESCAPE =
  /(?<!\\)((?:\\\\)*)\\u(0000|[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?|[dD][c-fC-F][0-9a-fA-F]{2})/g
export const jsonbSafe = (line: string) =>
  line.includes('\\u')
    ? line.replace(REFUSED_ESCAPE, (m, lead: string, escape: string) => (escape.length === 10 ? m : `${lead}\\ufffd`))
    : line

const ESCAPE = Buffer.from('\\u')

/**
 * COPY data in chunks of about CHUNK_BYTES: lines given as bytes are copied as they are, unless they
 * carry a \u escape (see jsonbSafe). The chunk buffers come from `pool` and are kept there for the
 * connection's next batch (once a batch's COPY has ended the connection holds none of them): fresh ones
 * per batch piled up as external memory between collections, about 10 MB in a catch-up.
 */
function* chunks(lines: Iterable<string | Buffer>, pool: Buffer[]): Generator<Buffer> {
  let n = 0
  const next = (need: number) => {
    if (!pool[n] || pool[n].length < need) pool[n] = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, need))
    return pool[n++]
  }
  let buf = next(0)
  let used = 0
  for (const line of lines) {
    const bytes =
      typeof line === 'string' ? Buffer.from(jsonbSafe(line)) : line.includes(ESCAPE) ? Buffer.from(jsonbSafe(line.toString())) : line
    if (used + bytes.length + 1 > buf.length) {
      if (used) yield buf.subarray(0, used)
      buf = next(bytes.length + 1)
      used = 0
    }
    used += bytes.copy(buf, used)
    buf[used++] = 10
  }
  if (used) yield buf.subarray(0, used)
}

/**
 * Appends a batch of records, each one JSON line (the journal's form), with
 * one COPY and one INSERT … SELECT in a single transaction. The client must
 * be dedicated to the writer while a batch runs.
 */
export async function writeLines(
  client: pg.ClientBase,
  logType: LogType,
  lines: Array<string | Buffer>,
  chain?: Chain,
): Promise<WriteResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await writeOnce(client, logType, lines, chain)
    } catch (error) {
      // Another process with the same instance name took the chain's next seq: the head is read again and the batch retried.
      if (isChainConflict(error)) {
        if (attempt < 5) continue
        throw new Error(
          `Another writer extends the integrity chain of instance "${chain?.instance}" at the same time: give each run its own instance name`,
          {cause: error},
        )
      }
      // Two writers replaying overlapping batches can deadlock on each other's keys; the loser simply retries.
      if ((error as {code?: string}).code !== '40P01' || attempt >= 5) throw error
    }
  }
}

/** Connections whose session has the staging table (made outside any transaction, so a rollback cannot undo it). */
const staged = new WeakSet<pg.ClientBase>()
/** Each connection's COPY chunk buffers (see chunks()). */
const chunkPools = new WeakMap<pg.ClientBase, Buffer[]>()

async function writeOnce(client: pg.ClientBase, logType: LogType, lines: Array<string | Buffer>, chain?: Chain): Promise<WriteResult> {
  if (lines.length === 0) return {received: 0, inserted: 0, duplicates: 0}
  if (!staged.has(client)) {
    await client.query(sql.createStaging())
    staged.add(client)
  }
  await client.query('BEGIN')
  try {
    let pool = chunkPools.get(client)
    if (!pool) chunkPools.set(client, (pool = []))
    await pipeline(Readable.from(chunks(lines, pool)), client.query(copyFrom(sql.copyStaging())))
    let inserted: number
    if (chain) {
      // the batch's rows come back with their hashes; the batch row commits with them (a batch that inserted nothing,
      // a replay, is not chained again; one that inserted some chains all its rows: the writer cannot tell which were there)
      const {rows} = await client.query(sql.insertFromStagingChained(logType))
      inserted = rows.length ? (rows[0] as {inserted: number}).inserted : 0
      await chain.commit(client, logType, inserted > 0 ? (rows as Inserted[]) : [])
    } else {
      inserted = (await client.query(sql.insertFromStaging(LOG_TABLES[logType]))).rowCount ?? 0
      await client.query('COMMIT')
    }
    return {received: lines.length, inserted, duplicates: lines.length - inserted}
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  }
}

export const writeRecords = (client: pg.ClientBase, logType: LogType, records: object[]) =>
  writeLines(
    client,
    logType,
    records.map((r) => JSON.stringify(r)),
  )

/**
 * Writes batches over several dedicated connections at once, one batch per
 * connection in flight. PostgreSQL parses the JSON and maintains the indexes
 * on one core per connection, so this is how the writer uses the machine;
 * idempotency on id keeps concurrent and replayed batches safe.
 */
export async function writeBatchesConcurrently(
  clients: pg.ClientBase[],
  logType: LogType,
  batches: Iterable<string[]>,
): Promise<WriteResult> {
  const total: WriteResult = {received: 0, inserted: 0, duplicates: 0}
  const iterator = batches[Symbol.iterator]()
  const worker = async (client: pg.ClientBase) => {
    for (let next = iterator.next(); !next.done; next = iterator.next()) {
      const r = await writeLines(client, logType, next.value)
      total.received += r.received
      total.inserted += r.inserted
      total.duplicates += r.duplicates
    }
  }
  await Promise.all(clients.map(worker))
  return total
}
