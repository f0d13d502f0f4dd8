import {isDeepStrictEqual} from 'node:util'
import {type Db, type Document, MongoServerError} from 'mongodb'
import {LOG_TYPE, type LogType} from '../log-types.js'

/**
 * What setup-db makes in MongoDB, as values: the validator and the indexes
 * of each collection. setup-db creates them, `migrate status` and
 * `partitions list` compare them with what the server holds, cleanup reads
 * the TTL. Pure, apart from the server's name (for messages only).
 */

export {LOG_TYPES} from '../log-types.js'

const NUMBER = ['int', 'long', 'double', 'decimal']

/**
 * The `$jsonSchema` of a collection: only what every record of the type has
 * (a record without a status, its upstream unreachable, has none), so a
 * valid record is never refused; extra fields are allowed.
 */
export function validatorFor(logType: LogType): Document {
  const {required, numbers} = LOG_TYPE[logType]
  const properties: Document = {_id: {bsonType: 'string'}, created_at: {bsonType: 'date'}}
  for (const field of required) properties[field] ??= {bsonType: 'string'}
  for (const field of numbers) properties[field] = {bsonType: [...NUMBER, 'null']}
  return {$jsonSchema: {bsonType: 'object', required: [...required], properties}}
}

export type IndexKey = Record<string, 1 | -1>
export type WantedIndex = {name: string; key: IndexKey}

/** The time index: every filter has a time bound or sorts by time; the TTL index, with --mongo-ttl. */
export const TIME_KEY: IndexKey = {created_at: -1}

/** The driver's own naming (field_direction joined by _), so an index made by hand with the same key is recognised by key anyway. */
export const indexName = (key: IndexKey) =>
  Object.entries(key)
    .map(([k, v]) => `${k}_${v}`)
    .join('_')

/**
 * An index for every filter the read side offers, each with time after it
 * (results come newest first): status, user, path, address (`_ip`, the
 * address as an ordered key). An access record's path filter is a regex on
 * its `url` (the path may end at `?`: filters/mongo.ts), which the server
 * serves from an index on `url` through the regex's literal prefix.
 */
export function indexesFor(logType: LogType): WantedIndex[] {
  const keys: IndexKey[] = [TIME_KEY, ...LOG_TYPE[logType].indexes.map((k) => ({...k, created_at: -1}) as IndexKey)]
  // an event names the request it happened in: `show REQUEST_ID` finds its events by that alone
  if (logType === 'event') keys.push({request_id: 1})
  return keys.map((key) => ({name: indexName(key), key}))
}

/** Same fields in the same order and directions (a server may answer 1 as 1.0 or a Long). */
export const sameKey = (a: Document, b: Document) =>
  isDeepStrictEqual(
    Object.entries(a).map(([k, v]) => [k, Number(v)]),
    Object.entries(b).map(([k, v]) => [k, Number(v)]),
  )

export const sameValidator = (have: Document | undefined, want: Document) => have !== undefined && isDeepStrictEqual(toPlain(have), want)
const toPlain = (d: Document): Document => JSON.parse(JSON.stringify(d)) as Document

/** The TTL index among a collection's indexes: a single-field index on created_at with expireAfterSeconds. */
export function ttlOf(indexes: Document[]): {name: string; days: number; seconds: number} | undefined {
  const ttl = indexes.find((i) => i.expireAfterSeconds !== undefined && Object.keys(i.key ?? {}).join() === 'created_at')
  if (!ttl) return undefined
  const seconds = Number(ttl.expireAfterSeconds)
  return {name: String(ttl.name), seconds, days: Math.round((seconds / 86_400) * 100) / 100}
}

/** Codes of a server that lacks a command or an option (FerretDB: validators, collMod, TTL, users and roles). */
const UNSUPPORTED = new Set([59, 115, 238]) // CommandNotFound, CommandNotSupported, NotImplemented
export const isUnsupported = (error: unknown) => error instanceof MongoServerError && UNSUPPORTED.has(Number(error.code))
export const isUnauthorized = (error: unknown) => error instanceof MongoServerError && Number(error.code) === 13

/**
 * Why a step could not run, for its note: the code and the server's message, short (FerretDB's
 * messages may hold a dump of the value it refused).
 */
export function reason(error: unknown): string {
  const e = error as MongoServerError
  const message = String(e.message ?? e).replace(/ with (non-default )?value .* is not implemented/, ' is not implemented')
  return `${e.codeName ?? 'error'} ${e.code ?? ''}: ${message.length > 120 ? message.slice(0, 119) + '…' : message}`
}

/** "MongoDB 7.0.4" or "FerretDB v1.24.2", from buildInfo: for messages only; every feature is tried, never assumed from it. */
export async function serverName(db: Db): Promise<string> {
  try {
    const info = await db.command({buildInfo: 1})
    return info.ferretdbVersion ? `FerretDB ${String(info.ferretdbVersion)}` : `MongoDB ${String(info.version)}`
  } catch {
    return 'this server'
  }
}

/** The indexes of a collection, none when it does not exist yet. */
export async function indexesOf(db: Db, collection: string): Promise<Document[]> {
  try {
    return await db.collection(collection).indexes()
  } catch (error) {
    if (error instanceof MongoServerError && Number(error.code) === 26) return [] // NamespaceNotFound
    throw error
  }
}

/** How a command is shown by --dry-run: as it would be typed in mongosh. */
export const shell = (call: string, ...args: unknown[]) => `${call}(${args.map((a) => JSON.stringify(a)).join(', ')})`
