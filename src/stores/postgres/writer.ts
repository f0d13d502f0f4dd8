import type pg from 'pg'
import {type Chain, type Inserted, isChainConflict} from './integrity.js'
import {type LogType, LOG_TABLES} from './periods.js'
import * as sql from './sql/writer.js'

export type WriteResult = {received: number; inserted: number; duplicates: number}

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
const OPEN = 0x5b // [
const COMMA = 0x2c
const CLOSE = 0x5d // ]

/**
 * The batch as one JSON array, in `buffer` when it is large enough (each connection keeps its own for its next
 * batch: a fresh one per batch piled up as external memory between collections, about 10 MB in a catch-up).
 * Lines given as bytes are copied as they are, or with `safe` made jsonbSafe when they carry a \u escape; lines
 * given as strings are always made so. Each line must be one JSON object, as the journal's lines and import's
 * (parsed whole before they come here) are: PostgreSQL refuses an element that is not an object, and the batch
 * is then written a part at a time to find it.
 */
function arrayOf(lines: Array<string | Buffer>, buffer: Buffer | undefined, safe: boolean): {records: Buffer; buffer: Buffer} {
  const parts = lines.map((line) =>
    typeof line === 'string'
      ? Buffer.from(jsonbSafe(line))
      : safe && line.includes(ESCAPE)
        ? Buffer.from(jsonbSafe(line.toString()))
        : line,
  )
  const size = parts.reduce((n, p) => n + p.length + 1, 1)
  if (!buffer || buffer.length < size) buffer = Buffer.allocUnsafeSlow(Math.max(size, 256 * 1024))
  let used = 0
  buffer[used++] = OPEN
  for (const [i, p] of parts.entries()) {
    if (i > 0) buffer[used++] = COMMA
    used += p.copy(buffer, used)
  }
  buffer[used++] = CLOSE
  return {records: buffer.subarray(0, used), buffer}
}

/**
 * Appends a batch of records, each one JSON line (the journal's form), with
 * one INSERT of them all; with the chain, the batch row in the same
 * transaction. The client must be dedicated to the writer while a batch runs.
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

/** Each connection's buffer for its batches' JSON array (see arrayOf). */
const buffers = new WeakMap<pg.ClientBase, Buffer>()

/**
 * A batch of the journal's lines is sent as it is first: a scan of every line for a \u escape cost the shipping
 * thread 13% of its time on POST records (bodies are full of \" and the search stops at each backslash), and an
 * escape PostgreSQL refuses is rare. When PostgreSQL refuses the batch's data (SQLSTATE class 22: \u0000 is 22P05,
 * a lone surrogate 22P02) and a line has one, it is sent again made jsonbSafe; any other failure (a timeout, a
 * lost connection) is thrown as it came.
 */
async function writeOnce(client: pg.ClientBase, logType: LogType, lines: Array<string | Buffer>, chain?: Chain): Promise<WriteResult> {
  try {
    return await writeArray(client, logType, lines, false, chain)
  } catch (error) {
    const dataRefused = /^22/.test(String((error as {code?: unknown}).code ?? ''))
    if (!dataRefused || !lines.some((line) => typeof line !== 'string' && line.includes(ESCAPE))) throw error
    return await writeArray(client, logType, lines, true, chain)
  }
}

async function writeArray(
  client: pg.ClientBase,
  logType: LogType,
  lines: Array<string | Buffer>,
  safe: boolean,
  chain?: Chain,
): Promise<WriteResult> {
  if (lines.length === 0) return {received: 0, inserted: 0, duplicates: 0}
  const {records, buffer} = arrayOf(lines, buffers.get(client), safe)
  buffers.set(client, buffer)
  let inserted: number
  if (chain) {
    await client.query('BEGIN')
    try {
      // the batch's rows come back with their hashes; the batch row commits with them (a batch that inserted nothing,
      // a replay, is not chained again; one that inserted some chains all its rows: the writer cannot tell which were there)
      const {rows} = await client.query(sql.insertFromArrayChained(logType, records))
      inserted = rows.length ? (rows[0] as {inserted: number}).inserted : 0
      await chain.commit(client, logType, inserted > 0 ? (rows as Inserted[]) : [])
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {})
      throw error
    }
  } else inserted = (await client.query(sql.insertFromArray(LOG_TABLES[logType], records))).rowCount ?? 0 // one statement: atomic alone
  return {received: lines.length, inserted, duplicates: lines.length - inserted}
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
