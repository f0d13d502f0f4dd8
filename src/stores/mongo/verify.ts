import type {Document} from 'mongodb'
import {keysHashOf} from '../postgres/integrity.js'
import type {BatchRow, ChainSource} from '../postgres/verify.js'
import type {CutoffRow} from '../postgres/prune.js'
import type {MongoStore} from './connection.js'
import {INTEGRITY_COLLECTIONS, bufferOf, docHash, isoOf} from './integrity.js'
import {indexesOf, isUnauthorized, ttlOf} from './plan.js'
import {prunedStartsOf} from './prune.js'
import {LOG_TYPES, type LogType} from '../log-types.js'

/**
 * What a TTL index (`setup-db --mongo-ttl`) may have expired by `now`: the server deletes a document once its
 * created_at is expireAfterSeconds old, and records nothing. Its horizon goes to verify as a cutoff of its type
 * recorded now, which verify honours within the configured retention as it does cleanup's recorded ones (a TTL
 * shorter than the retention is flagged as bad retention, not honoured).
 */
export const ttlCutoff = (logType: LogType, ttl: {name: string; seconds: number; days: number}, now: Date) => ({
  log_type: logType,
  cutoff: new Date(now.getTime() - ttl.seconds * 1000).toISOString(),
  written_at: now.toISOString(),
  how: `the TTL index ${ttl.name} (${ttl.days} days), as of this verify`,
})

/**
 * MongoDB's chains (stores/mongo/integrity.ts) as verify reads them (stores/postgres/verify.ts walks both stores):
 * the collections' documents in the shapes of PostgreSQL's rows, each record's hash recomputed from the document
 * read back. Reads only (find on the integrity collections and the records' suffices; listIndexes on the records'
 * collections, for their TTL).
 */
type PrunedStarts = {docs: Awaited<ReturnType<typeof prunedStartsOf>>; through: Map<string, number>} | 'unreadable'

export function mongoChainSource(store: MongoStore): ChainSource {
  const {db} = store
  const batches = db.collection(INTEGRITY_COLLECTIONS.batches)
  // where cleanup pruned each chain (stores/mongo/prune.ts); batches at or before it (a prune cut short by a crash
  // leaves some) are not read: the chain is checked from its recorded start, as PostgreSQL's
  let starts: Promise<PrunedStarts> | undefined
  const prunedStarts = () =>
    (starts ??= prunedStartsOf(db).then(
      (docs) => ({docs, through: new Map(docs.map((d) => [d.instance, Number(d.through_seq)]))}),
      (error: unknown) => {
        if (!isUnauthorized(error)) throw error
        return 'unreadable' as const
      },
    ))
  /** The first seq of the instance's chain as verify reads it. */
  const firstOf = async (instance: string) => {
    const p = await prunedStarts()
    return (p === 'unreadable' ? 0 : (p.through.get(instance) ?? 0)) + 1
  }
  return {
    store: 'mongo',
    tableOf: (type) => store.target.collections[type],
    async retentionCutoffs(now, warn) {
      const rows = await db.collection(INTEGRITY_COLLECTIONS.retention).find({}).sort({log_type: 1, cutoff: 1}).toArray()
      const text = (v: unknown) => (typeof v === 'string' ? v : null)
      // the writer stores dates; anything else (a row someone wrote) is compared as the time it parses to, or refused
      const time = (v: unknown) => {
        const ms = v instanceof Date ? v.getTime() : Date.parse(String(v))
        return Number.isFinite(ms) ? new Date(ms).toISOString() : String(v)
      }
      const cutoffs: CutoffRow[] = rows.map((r) => ({
        log_type: String(r.log_type),
        cutoff: time(r.cutoff),
        written_at: time(r.written_at),
        how: text(r.how) ?? undefined,
        statement: text(r.statement),
        signature: text(r.signature),
      }))
      for (const type of LOG_TYPES) {
        const collection = store.target.collections[type]
        try {
          const ttl = ttlOf(await indexesOf(db, collection))
          if (ttl) cutoffs.push(ttlCutoff(type, ttl, now))
        } catch (error) {
          if (!isUnauthorized(error)) throw error
          warn(
            `cannot list the indexes of ${collection} (the user lacks listIndexes, as the reader of an earlier setup-db did): documents a TTL index expired there are reported as deleted; run \`audit-logs setup-db --store mongo\` again, which grants it to the reader, or verify as a user that has it`,
          )
        }
      }
      return cutoffs
    },
    async instancesSince(since) {
      const out: Array<{instance: string; first: number | null; last: number | null}> = []
      const names = (await batches.distinct('instance')) as string[]
      for (const instance of names.sort()) {
        const first = await batches.findOne(
          {instance, seq: {$gte: await firstOf(instance)}, max_created_at: {$gte: since}},
          {sort: {seq: 1}, projection: {seq: 1}},
        )
        if (!first) continue
        const last = await batches.findOne({instance}, {sort: {seq: -1}, projection: {seq: 1}})
        out.push({instance, first: Number(first.seq), last: Number(last!.seq)})
      }
      // instances with digests only (their batches all gone)
      const signed = (await db.collection(INTEGRITY_COLLECTIONS.digests).distinct('instance', {written_at: {$gte: since}})) as string[]
      for (const instance of signed.sort()) if (!names.includes(instance)) out.push({instance, first: null, last: null})
      return out
    },
    async batchesFrom(instance, fromSeq, limit) {
      const rows = await batches
        .find({instance, seq: {$gte: Math.max(fromSeq, await firstOf(instance))}})
        .sort({seq: 1})
        .limit(limit)
        .toArray()
      return rows.map((b): BatchRow => ({
        seq: Number(b.seq),
        log_type: String(b.log_type),
        count: Number(b.count),
        total: Number(b.total),
        min: isoOf(b.min_created_at),
        max: isoOf(b.max_created_at),
        record_hashes: bufferOf(b.record_hashes),
        records_hash: bufferOf(b.records_hash),
        prev_hash: bufferOf(b.prev_hash),
        hash: bufferOf(b.hash),
        written_ms: b.written_at instanceof Date ? b.written_at.getTime() : 0,
        keys_hash: keysHashOf(Array.isArray(b.ids) ? b.ids.map(String) : [], Array.isArray(b.created_ats) ? b.created_ats.map(isoOf) : []),
      }))
    },
    async recordAnomalies(type, instance, from, to) {
      const out: Array<{seq: number; id: string; at: string; missing: boolean}> = []
      const collection = store.collection(type)
      const cursor = batches
        .find(
          {instance, log_type: type, seq: {$gte: Math.max(from, await firstOf(instance)), $lte: to}},
          {projection: {seq: 1, ids: 1, created_ats: 1, record_hashes: 1}},
        )
        .sort({seq: 1})
      for await (const b of cursor) {
        const ids = (b.ids as string[]) ?? []
        const ats = (b.created_ats as Date[]) ?? []
        const hashes = bufferOf(b.record_hashes)
        const stored = new Map<string, Document>()
        for (const d of await collection.find({_id: {$in: ids}}).toArray()) stored.set(String(d._id), d)
        ids.forEach((id, i) => {
          const at = isoOf(ats[i])
          const doc = stored.get(id)
          // gone, or moved in time (PostgreSQL's join is on id and created_at alike)
          if (!doc || !(doc.created_at instanceof Date) || doc.created_at.toISOString() !== at)
            out.push({seq: Number(b.seq), id, at, missing: !doc})
          else if (!docHash(doc).equals(hashes.subarray(i * 32, i * 32 + 32))) out.push({seq: Number(b.seq), id, at, missing: false})
        })
      }
      return out
    },
    async digestsOf(instance) {
      const rows = await db.collection(INTEGRITY_COLLECTIONS.digests).find({instance}).sort({seq: 1}).toArray()
      return rows.map((d) => ({seq: Number(d.seq), body: String(d.body), signature: typeof d.signature === 'string' ? d.signature : null}))
    },
    async headsOf(instances) {
      const out: Array<{instance: string; head: number}> = []
      for (const instance of instances) {
        const last = await batches.findOne({instance}, {sort: {seq: -1}, projection: {seq: 1}})
        if (last) out.push({instance, head: Number(last.seq)})
      }
      return out
    },
    async prunedStarts() {
      const p = await prunedStarts()
      if (p === 'unreadable') return p
      return p.docs.map((d) => ({
        instance: d.instance,
        through_seq: String(d.through_seq),
        hash: bufferOf(d.hash),
        total: String(d.total),
        newest: d.newest,
        pruned_at: isoOf(d.pruned_at),
      }))
    },
    async unchained(type, since, limit) {
      // the ids every batch of the type since then chained, then the documents since then that none holds
      const chained = new Set<string>()
      const cursor = batches.find({log_type: type, max_created_at: {$gte: since}}, {projection: {ids: 1}})
      for await (const b of cursor) for (const id of (b.ids as string[]) ?? []) chained.add(id)
      const out: Array<{id: string; at: string}> = []
      const docs = store
        .collection(type)
        .find({created_at: {$gte: since}}, {projection: {_id: 1, created_at: 1}})
        .sort({created_at: 1})
      for await (const d of docs) {
        if (chained.has(String(d._id))) continue
        out.push({id: String(d._id), at: isoOf(d.created_at)})
        if (out.length >= limit) break
      }
      await docs.close()
      return out
    },
  }
}
