import {BSON, MongoBulkWriteError, MongoInvalidArgumentError, MongoServerError} from 'mongodb'
import type {Rejection} from '../../pipeline/sinks.js'
import type {LogType} from '../source.js'
import type {MongoStore} from './connection.js'
import {type Doc, toDocument} from './documents.js'

/** A key that is already there: a replay of a batch after a crash or a retry, not a failure. */
const DUPLICATE_KEY = 11000
/**
 * Server codes that blame a document, not the server's state: bad value (a key a server refuses), the
 * validator, a document too large. Anything else (not primary, stepping down, network, write concern)
 * is the server's, and the batch is retried with the shipper's backoff.
 */
const DOCUMENT_CODES = new Set([2, 121, 10334, 17419, 17420])

/** Why a write failed because of the documents it held, or undefined when the server or the network is at fault. */
export function blameDocuments(error: unknown): string | undefined {
  if (error instanceof BSON.BSONError) return `BSON: ${error.message}` // the driver could not encode a document
  // the driver's own check before sending: the only arguments of insertMany that vary are the documents (one too large)
  if (error instanceof MongoInvalidArgumentError) return `MongoDB driver: ${error.message}`
  if (error instanceof MongoServerError && !(error instanceof MongoBulkWriteError) && DOCUMENT_CODES.has(Number(error.code)))
    return `MongoDB ${error.code}: ${error.message}`
  return undefined
}

export type InsertResult = {
  inserted: number
  duplicates: number
  rejected: Rejection[]
  /** The documents inserted now, and those already there (a replay): what the integrity chain hashes. */
  docs: {inserted: Doc[]; duplicates: Doc[]}
}

/**
 * Inserts one log type's journal lines: unordered insertMany, `_id` the
 * record's id, so a batch sent again leaves one copy (its duplicate-key
 * errors are not failures). Documents the server refuses for what they
 * hold come back as rejections; a line that is not a record too. Whatever
 * else fails throws.
 */
export async function insertLines(store: MongoStore, logType: LogType, lines: Buffer[]): Promise<InsertResult> {
  const docs: Doc[] = []
  const from: Buffer[] = [] // the line of each document
  const rejected: Rejection[] = []
  for (const line of lines) {
    try {
      docs.push(toDocument(logType, JSON.parse(line.toString()) as Record<string, unknown>))
      from.push(line)
    } catch (error) {
      rejected.push({line, error: `not a record: ${(error as Error).message}`})
    }
  }
  if (docs.length === 0) return {inserted: 0, duplicates: 0, rejected, docs: {inserted: [], duplicates: []}}
  try {
    const r = await store.collection(logType).insertMany(docs, {ordered: false})
    return {inserted: r.insertedCount, duplicates: 0, rejected, docs: {inserted: docs, duplicates: []}}
  } catch (error) {
    if (!(error instanceof MongoBulkWriteError) || error.writeConcernError) throw error
    // insertMany reports a network error or a server that went away as a bulk error too, with no write
    // errors and nothing inserted: only an answer that accounts for every document is one about documents
    const writeErrors = (Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors]).filter((e) => e !== undefined)
    if (writeErrors.length === 0 || error.insertedCount + writeErrors.length !== docs.length) throw error
    let duplicates = 0
    const failed = new Set<number>()
    const duplicateDocs: Doc[] = []
    for (const e of writeErrors) {
      failed.add(e.index)
      if (e.code === DUPLICATE_KEY) {
        duplicates++
        duplicateDocs.push(docs[e.index])
      } else if (DOCUMENT_CODES.has(e.code)) rejected.push({line: from[e.index], error: `MongoDB ${e.code}: ${e.errmsg ?? ''}`})
      else throw error // a write error that is the server's (not primary, interrupted): the whole batch again
    }
    const inserted = docs.filter((_d, i) => !failed.has(i))
    return {inserted: error.insertedCount, duplicates, rejected, docs: {inserted, duplicates: duplicateDocs}}
  }
}
