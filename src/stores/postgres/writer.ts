import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import type pg from 'pg'
import {from as copyFrom} from 'pg-copy-streams'
import {type LogType, LOG_TABLES} from './periods.js'
import * as sql from './sql/writer.js'

export type WriteResult = {received: number; inserted: number; duplicates: number}

const CHUNK_BYTES = 256 * 1024

/** JSON text may carry \u0000, which jsonb refuses; it becomes U+FFFD rather than failing the batch. */
const NUL_ESCAPE = /(?<!\\)((?:\\\\)*)\\u0000/g
export const jsonbSafe = (line: string) => (line.includes('\\u0000') ? line.replace(NUL_ESCAPE, '$1\\ufffd') : line)

function* chunks(lines: Iterable<string>): Generator<string> {
  let buf = ''
  for (const line of lines) {
    buf += jsonbSafe(line) + '\n'
    if (buf.length >= CHUNK_BYTES) {
      yield buf
      buf = ''
    }
  }
  if (buf) yield buf
}

/**
 * Appends a batch of records, each one JSON line (the journal's form), with
 * one COPY and one INSERT … SELECT in a single transaction. The client must
 * be dedicated to the writer while a batch runs.
 */
export async function writeLines(client: pg.ClientBase, logType: LogType, lines: string[]): Promise<WriteResult> {
  if (lines.length === 0) return {received: 0, inserted: 0, duplicates: 0}
  await client.query('BEGIN')
  try {
    await client.query(sql.createStaging())
    await pipeline(Readable.from(chunks(lines)), client.query(copyFrom(sql.copyStaging())))
    const inserted = (await client.query(sql.insertFromStaging(LOG_TABLES[logType]))).rowCount ?? 0
    await client.query('COMMIT')
    return {received: lines.length, inserted, duplicates: lines.length - inserted}
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  }
}

export const writeRecords = (client: pg.ClientBase, logType: LogType, records: object[]) =>
  writeLines(client, logType, records.map((r) => JSON.stringify(r)))
