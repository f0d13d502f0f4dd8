import {type MongoStore, connectMongo} from './connection.js'
import type {MongoTarget} from './target.js'
import {LOG_TYPES, indexesFor, indexesOf, sameKey, sameValidator, serverName, ttlOf, validatorFor} from './plan.js'

export type MongoCollectionState = {
  logType: string
  collection: string
  exists: boolean
  documents: number
  bytes: number | null
  /** present: as setup-db makes it; missing: none (FerretDB implements none); different: another one. */
  validator: 'present' | 'missing' | 'different'
  indexes: Array<{name: string; fields: string; state: 'present' | 'missing'}>
  ttl: {index: string; days: number} | null
}
export type MongoState = {database: string; server: string; collections: MongoCollectionState[]; missing: number}

/**
 * What setup-db made in MongoDB, as the server holds it: per collection its
 * documents, validator, indexes and TTL. MongoDB has neither migrations nor
 * partitions: this is what `migrate status` and `partitions list` show for it.
 * `missing` counts what a run of setup-db would add (a validator the server
 * cannot hold is not counted: setup-db skips it).
 */
export async function mongoState(store: MongoStore): Promise<MongoState> {
  const {db, target} = store
  const listed = await db.listCollections({}, {nameOnly: false}).toArray()
  const collections: MongoCollectionState[] = []
  let missing = 0
  for (const logType of LOG_TYPES) {
    const name = target.collections[logType]
    const info = listed.find((c) => c.name === name) as {options?: {validator?: Record<string, unknown>}} | undefined
    const have = await indexesOf(db, name)
    const indexes = indexesFor(logType).map((w) => ({
      name: w.name,
      fields: Object.entries(w.key)
        .map(([k, v]) => `${k} ${v === 1 ? 'asc' : 'desc'}`)
        .join(', '),
      state: have.some((i) => sameKey(i.key, w.key)) ? ('present' as const) : ('missing' as const),
    }))
    const validator = info?.options?.validator
    const ttl = ttlOf(have)
    const stats = info ? await sizeOf(store, name) : {documents: 0, bytes: null}
    collections.push({
      logType,
      collection: name,
      exists: !!info,
      ...stats,
      validator: sameValidator(validator, validatorFor(logType)) ? 'present' : validator ? 'different' : 'missing',
      indexes,
      ttl: ttl ? {index: ttl.name, days: ttl.days} : null,
    })
    missing += (info ? 0 : 1) + indexes.filter((i) => i.state === 'missing').length
  }
  return {database: target.dbName, server: await serverName(db), collections, missing}
}

/** Documents (estimated, from the collection's metadata) and bytes on disk; the size where the server reports it. */
async function sizeOf(store: MongoStore, name: string): Promise<{documents: number; bytes: number | null}> {
  const documents = await store.db.collection(name).estimatedDocumentCount()
  try {
    const stats = await store.db.command({collStats: name})
    return {documents, bytes: Number(stats.totalSize ?? stats.storageSize ?? 0)}
  } catch {
    return {documents, bytes: null} // collStats is deprecated since MongoDB 6.2 and may be refused: the size is optional
  }
}

/** Connects, reads the state and closes: for the commands that show it beside PostgreSQL's. */
export async function readMongoState(target: MongoTarget): Promise<MongoState> {
  const store = await connectMongo(target)
  try {
    return await mongoState(store)
  } finally {
    await store.close()
  }
}
