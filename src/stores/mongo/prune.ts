/**
 * Retention of MongoDB's integrity chains: the pruning of stores/postgres/prune.ts (always a prefix of each chain,
 * never its head, by the cutoffs verify honours) over the collections of stores/mongo/integrity.ts.
 *
 * No transactions (FerretDB and a standalone MongoDB have none), so the two steps of a prune are ordered for a crash
 * between them: first the instance's document in `integrity_pruned` moves its start on, and only if it still says
 * what this cleanup read (a conditional update: of two cleanups at once, one moves it, the other stops); then the
 * batches up to the new start go. A crash between the two leaves batches at or before the start: verify reads no
 * batch there (mongoChainSource), and the next prune of the instance deletes them. The other order would leave a
 * gap that no start explains.
 */
import {Binary, type Db} from 'mongodb'
import type {Candidate, PruneIO} from '../postgres/prune.js'
import {INTEGRITY_COLLECTIONS, bufferOf, isoOf} from './integrity.js'

type PrunedDoc = {
  _id: string
  instance: string
  through_seq: number
  hash: Binary
  total: number
  newest: Record<string, string>
  pruned_at: Date
}

/** Where each chain starts after pruning (none without the collection). */
export async function prunedStartsOf(db: Db): Promise<PrunedDoc[]> {
  return db.collection<PrunedDoc>(INTEGRITY_COLLECTIONS.pruned).find({}).sort({_id: 1}).toArray()
}

export function mongoPruneIO(db: Db): PruneIO {
  const batches = db.collection(INTEGRITY_COLLECTIONS.batches)
  const pruned = db.collection<PrunedDoc>(INTEGRITY_COLLECTIONS.pruned)
  return {
    instances: async () => ((await batches.distinct('instance')) as string[]).sort(),
    prunedStarts: async () =>
      new Map((await prunedStartsOf(db)).map((p) => [p.instance, {through: Number(p.through_seq), newest: p.newest}])),
    async head(instance) {
      const last = await batches.findOne({instance}, {sort: {seq: -1}, projection: {seq: 1}})
      return Number(last?.seq ?? 0)
    },
    async candidates(instance, afterSeq, limit) {
      const page = await batches
        .find(
          {instance, seq: {$gt: afterSeq}},
          {projection: {seq: 1, log_type: 1, count: 1, total: 1, hash: 1, max_created_at: 1, written_at: 1}},
        )
        .sort({seq: 1})
        .limit(limit)
        .toArray()
      return page.map((b): Candidate => ({
        seq: Number(b.seq),
        log_type: String(b.log_type),
        count: Number(b.count),
        total: Number(b.total),
        hash: bufferOf(b.hash),
        max: isoOf(b.max_created_at),
        written: isoOf(b.written_at),
      }))
    },
    async advance(instance, through, toSeq, _expected, newest, last) {
      const start = {through_seq: toSeq, hash: new Binary(last.hash), total: Number(last.total), newest, pruned_at: new Date()}
      if (through === 0) {
        try {
          await pruned.insertOne({_id: instance, instance, ...start})
        } catch (error) {
          if ((error as {code?: number}).code === 11000) return false // another cleanup pruned it first
          throw error
        }
      } else if ((await pruned.updateOne({_id: instance, through_seq: through}, {$set: start})).matchedCount === 0) return false
      // the batches up to the new start, and any a crash left at or before the old one
      await batches.deleteMany({instance, seq: {$lte: toSeq}})
      return true
    },
  }
}
