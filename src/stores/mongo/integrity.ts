/**
 * Tamper evidence for the MongoDB store: the same chain as PostgreSQL's (stores/postgres/integrity.ts, the Chain
 * class serves both through ChainIO), kept in three collections of the audit database:
 * - `integrity_batches`: one document per batch with the fields of PostgreSQL's row (instance, seq, log_type, ids,
 *   created_ats, record_hashes, records_hash, prev_hash, hash, count, total, min/max_created_at, written_at). Its
 *   `_id` is "<instance>:<seq>" and setup-db adds a unique index on (instance, seq): two writers can never chain the
 *   same seq, whatever the server.
 * - `integrity_digests`: the signed heads, as PostgreSQL's (their body carries `store: "mongo"`, and so does their
 *   line in `<logDir>/digests.jsonl`, shared with PostgreSQL's chain).
 * - `integrity_retention`: each cutoff `cleanup` applied.
 * - `integrity_pruned`: where each chain starts after cleanup pruned its oldest batches (stores/mongo/prune.ts).
 *
 * No transactions (FerretDB and a standalone MongoDB have none): the records are inserted first (unordered,
 * `_id` = id, a duplicate is a replay), then the batch document. A crash between the two leaves records no batch
 * chained; when the journal sends the batch again its records are all duplicates, and the writer chains those that
 * no recent batch of its instance holds (it may read integrity_batches), so a replay repairs the gap instead of
 * leaving them "inserted". A batch document whose insert was acknowledged to nobody (a network cut) is found the
 * same way: its records are not chained twice. What cannot be repaired is a crash whose batch is never replayed
 * (the journal lost): verify lists those records as inserted.
 *
 * A record's hash is over the canonical text of its document as MongoDB stores it (canonicalDoc): keys sorted at
 * every level, dates as UTC ISO text to the millisecond, strings as well-formed UTF-16 (BSON stores a lone
 * surrogate as U+FFFD), numbers as JSON writes them (int32 or double alike), the escaped keys as stored and the
 * derived fields (`_ip`, `_path`, `_hour`) included: the writer hashes the document it inserts, verify the one it
 * reads back.
 */
import {BSON, Binary, type Db, MongoServerError, type ObjectId} from 'mongodb'
import {type Chain, type ChainIO, type Inserted, sha256} from '../postgres/integrity.js'
import type {LogType} from '../source.js'
import type {BatchRow} from '../postgres/sql/integrity.js'
import type {Doc} from './documents.js'
import {sameKey} from './plan.js'

export const INTEGRITY_COLLECTIONS = {
  batches: 'integrity_batches',
  digests: 'integrity_digests',
  retention: 'integrity_retention',
  /** where each chain starts after cleanup pruned its oldest batches (stores/mongo/prune.ts) */
  pruned: 'integrity_pruned',
} as const
/** The unique key of a batch: one seq per instance. */
export const BATCH_KEY = {instance: 1, seq: 1} as const
export const BATCH_INDEX = 'instance_1_seq_1'

/** How far back (in batches) a replay's duplicates are looked up among the instance's batches. */
const REPLAY_WINDOW = 10_000

const DUPLICATE_KEY = 11000

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g
/** The string as BSON stores it (UTF-8: a lone surrogate becomes U+FFFD). */
const wellFormed = (s: string) => (/[\ud800-\udfff]/.test(s) ? s.replace(LONE_SURROGATE, '\ufffd') : s)

/** The canonical text of a stored document or a value in it (see above). Other BSON types (a tampered document) in EJSON. */
export function canonicalDoc(value: unknown): string {
  if (value === null || value === undefined) return 'null'
  switch (typeof value) {
    case 'string':
      return JSON.stringify(wellFormed(value))
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : `{"$number":"${String(value)}"}`
    case 'boolean':
      return value ? 'true' : 'false'
    case 'bigint':
      return `{"$long":"${value.toString()}"}`
    default:
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? '{"$date":null}' : `{"$date":"${value.toISOString()}"}`
  if (Array.isArray(value)) return `[${value.map(canonicalDoc).join(',')}]`
  if (typeof value === 'object' && '_bsontype' in value)
    return `{"$bson":${JSON.stringify(BSON.EJSON.stringify(value as Parameters<typeof BSON.EJSON.stringify>[0], {relaxed: false}))}}`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(wellFormed(k))}:${canonicalDoc(v)}`).join(',')}}`
}

/** A document's record hash: SHA-256 of its canonical text. */
export const docHash = (doc: Record<string, unknown>) => sha256(Buffer.from(canonicalDoc(doc), 'utf8'))

/** What the chain holds of a document: its id, its time and its hash. */
export const chainedOf = (doc: Doc): Inserted => ({id: doc._id, at: (doc.created_at as Date).toISOString(), h: docHash(doc)})

/** A binary field as read back (none when it is not binary: a document someone changed). */
export const bufferOf = (b: unknown): Buffer => (b instanceof Binary ? Buffer.from(b.buffer) : Buffer.isBuffer(b) ? b : Buffer.alloc(0))

/** A time field as read back: ISO text for a date, else as it is (a document someone changed). */
export const isoOf = (d: unknown) => (d instanceof Date ? d.toISOString() : String(d))

/** The batch document of a BatchRow. */
export const batchDocument = (b: BatchRow) => ({
  _id: `${b.instance}:${b.seq}`,
  instance: b.instance,
  seq: b.seq,
  log_type: b.logType,
  ids: b.ids,
  created_ats: b.ats.map((a) => new Date(a)),
  record_hashes: new Binary(b.recordHashes),
  records_hash: new Binary(b.recordsHash),
  prev_hash: new Binary(b.prevHash),
  hash: new Binary(b.hash),
  count: b.count,
  total: b.total,
  min_created_at: new Date(b.min),
  max_created_at: new Date(b.max),
  written_at: new Date(),
})

/** A batch's seq was taken (a second writer with the same instance, or our own insert whose answer was lost). */
export const isMongoChainConflict = (error: unknown) =>
  error instanceof MongoServerError && Number(error.code) === DUPLICATE_KEY && /integrity_batches/.test(error.message)

/** MongoDB's ChainIO: the head, batch documents and digests in `db`. */
export const mongoChainIO = (db: Db): ChainIO => ({
  async head(instance) {
    const d = await db
      .collection(INTEGRITY_COLLECTIONS.batches)
      .findOne({instance}, {sort: {seq: -1}, projection: {seq: 1, hash: 1, total: 1}})
    return d ? {seq: Number(d.seq), hash: bufferOf(d.hash), total: Number(d.total)} : undefined
  },
  async commit(row) {
    if (!row) return
    try {
      await db.collection<Record<string, unknown> & {_id: string}>(INTEGRITY_COLLECTIONS.batches).insertOne(batchDocument(row))
    } catch (error) {
      // the message names the collection, so the caller can tell a taken seq from a duplicate record
      if (error instanceof MongoServerError && Number(error.code) === DUPLICATE_KEY && !/integrity_batches/.test(error.message))
        error.message = `integrity_batches: ${error.message}`
      throw error
    }
  },
  async digest(instance, seq, body, signature) {
    try {
      await db
        .collection<Record<string, unknown> & {_id: string}>(INTEGRITY_COLLECTIONS.digests)
        .insertOne({_id: `${instance}:${seq}`, instance, seq, body, signature, written_at: new Date()})
    } catch (error) {
      if (!(error instanceof MongoServerError && Number(error.code) === DUPLICATE_KEY)) throw error // signed already: as ON CONFLICT DO NOTHING
    }
  },
})

/** The ids among `ids` that a batch of `instance` after seq `after` holds already (a replay's duplicates). */
export async function chainedIds(db: Db, instance: string, ids: string[], after: number): Promise<Set<string>> {
  const wanted = new Set(ids)
  const found = new Set<string>()
  if (ids.length === 0) return found
  const cursor = db.collection(INTEGRITY_COLLECTIONS.batches).find({instance, seq: {$gt: after}, ids: {$in: ids}}, {projection: {ids: 1}})
  for await (const b of cursor) for (const id of (b.ids as string[]) ?? []) if (wanted.has(id)) found.add(id)
  return found
}

/** The documents of a batch that need chaining: those inserted now, and duplicates no recent batch of the instance chained. */
export async function toChain(db: Db, instance: string, headSeq: number, inserted: Doc[], duplicates: Doc[]): Promise<Inserted[]> {
  const candidates = duplicates.length
    ? await chainedIds(
        db,
        instance,
        duplicates.map((d) => d._id),
        headSeq - REPLAY_WINDOW,
      )
    : undefined
  return [...inserted, ...duplicates.filter((d) => !candidates?.has(d._id))].map(chainedOf)
}

/**
 * Chains a batch the writer inserted (after its records: see above). A seq taken meanwhile (another writer with the
 * same instance name, or our own batch document whose acknowledgement was lost) reads the head again and looks up
 * every document of the batch, so none is chained twice; after five tries it fails, naming the cause.
 */
export async function chainBatch(db: Db, chain: Chain, logType: LogType, docs: {inserted: Doc[]; duplicates: Doc[]}): Promise<void> {
  const io = mongoChainIO(db)
  for (let attempt = 1; ; attempt++) {
    try {
      const head = await chain.current(io)
      const rows =
        attempt === 1
          ? await toChain(db, chain.instance, head.seq, docs.inserted, docs.duplicates)
          : await toChain(db, chain.instance, head.seq, [], [...docs.inserted, ...docs.duplicates])
      await chain.commit(io, logType, rows)
      return
    } catch (error) {
      if (!isMongoChainConflict(error)) throw error
      if (attempt >= 5)
        throw new Error(
          `Another writer extends the integrity chain of instance "${chain.instance}" in MongoDB at the same time: give each run its own instance name`,
          {cause: error},
        )
    }
  }
}

/**
 * Why the chain cannot be written to `db`, or undefined when it can: the collections setup-db makes, and the unique
 * index that keeps one batch per seq. `digests`: the digests collection is needed too (a key is configured).
 */
export async function mongoChainUnavailable(db: Db, digests: boolean): Promise<string | undefined> {
  const names = new Set(
    (await db.listCollections({name: {$in: Object.values(INTEGRITY_COLLECTIONS)}}, {nameOnly: true}).toArray()).map((c) => c.name),
  )
  const missing: string[] = []
  if (!names.has(INTEGRITY_COLLECTIONS.batches)) missing.push(`the collection ${INTEGRITY_COLLECTIONS.batches} does not exist`)
  else {
    const indexes = await db.collection(INTEGRITY_COLLECTIONS.batches).listIndexes().toArray()
    if (!indexes.some((i) => i.unique && sameKey(i.key, BATCH_KEY)))
      missing.push(`${INTEGRITY_COLLECTIONS.batches} has no unique index on (instance, seq)`)
  }
  if (digests && !names.has(INTEGRITY_COLLECTIONS.digests)) missing.push(`the collection ${INTEGRITY_COLLECTIONS.digests} does not exist`)
  return missing.length ? missing.join('; ') : undefined
}

/** Records a cutoff `cleanup` applied to a log type (verify counts chained documents older than it as removed on purpose). */
export async function recordRetention(db: Db, logType: string, cutoff: Date, how: string): Promise<unknown> {
  return (await db.collection(INTEGRITY_COLLECTIONS.retention).insertOne({log_type: logType, cutoff, how, written_at: new Date()}))
    .insertedId
}

/** The signed statement (stores/postgres/integrity.ts signRetention) of a recorded cutoff, once its documents are gone. */
export async function signRecordedRetention(db: Db, id: unknown, signed: {statement: string; signature: string}): Promise<boolean> {
  // only the document as cleanup recorded it: one whose statement was set meanwhile is left as it is
  const r = await db
    .collection(INTEGRITY_COLLECTIONS.retention)
    .updateOne({_id: id as ObjectId, statement: {$exists: false}}, {$set: signed})
  return r.matchedCount === 1
}

/** Each instance's chain head (its last seq); none without the collection. */
export async function chainHeads(db: Db): Promise<Record<string, number>> {
  const batches = db.collection(INTEGRITY_COLLECTIONS.batches)
  const heads: Record<string, number> = {}
  for (const instance of (await batches.distinct('instance')) as string[]) {
    const last = await batches.findOne({instance}, {sort: {seq: -1}, projection: {seq: 1}})
    if (last) heads[instance] = Number(last.seq)
  }
  return heads
}
