import type {KeyObject} from 'node:crypto'
import {cutoffFor} from '../postgres/periods.js'
import type {LogType} from '../source.js'
import type {MongoStore} from './connection.js'
import {indexesOf, isUnauthorized, reason, ttlOf} from './plan.js'
import {mongoPruneIO} from './prune.js'
import {mongoChainSource} from './verify.js'
import {type PruneReport, notPruned, pruneAfterCleanup} from '../postgres/prune.js'
import {INTEGRITY_COLLECTIONS, chainHeads, recordRetention, signRecordedRetention} from './integrity.js'
import {signRetention} from '../postgres/integrity.js'
import {signable, unsignedNote} from '../postgres/retention.js'

export type MongoCleanupTarget = {
  logType: LogType
  collection: string
  days: number
  cutoff: string
  /** A TTL index on created_at: the server expires documents itself, after this many days. */
  ttl?: {index: string; days: number}
  /** Documents older than the cutoff (counted before deleting). */
  older: number
  deleted: number
  batches: number
}

export type MongoCleanupReport = {
  database: string
  dryRun: boolean
  interrupted: boolean
  targets: MongoCleanupTarget[]
  totalDocuments: number
  /** what went otherwise than it should and did not stop the cleanup (a cutoff left unsigned) */
  notes?: string[]
  /** the integrity chains' batches pruned after the documents (stores/mongo/prune.ts); absent without the chain's collections or when interrupted */
  integrity?: PruneReport
}

export type MongoCleanupOptions = {
  retention: Array<{logType: LogType; days: number}>
  dryRun: boolean
  batchSize: number
  now?: Date
  signal?: AbortSignal
  onProgress?: (event: {collection: string; deleted: number; older: number}) => void
  /** integrityKey: each cutoff of the configured retention recorded with a signed statement of it (as cleanup's for PostgreSQL) */
  signingKey?: KeyObject
  configuredDays?: Partial<Record<LogType, number>>
}

/**
 * Deletes the documents older than each log type's cutoff, in batches: the
 * `_id`s of up to batchSize of the oldest, then one deleteMany of those, so
 * every batch is short and Ctrl-C stops between two of them. A collection
 * with a TTL index is cleaned all the same (the server's monitor runs once
 * a minute and may lag behind, and the TTL may be longer than the
 * retention asked for); the report names the TTL.
 */
export async function cleanupMongo(store: MongoStore, options: MongoCleanupOptions): Promise<MongoCleanupReport> {
  const now = options.now ?? new Date()
  // only batches written before the cleanup began may be pruned (see pruneChainsOf)
  const startedAt = new Date().toISOString()
  const report: MongoCleanupReport = {
    database: store.target.dbName,
    dryRun: options.dryRun,
    interrupted: false,
    targets: [],
    totalDocuments: 0,
  }
  for (const {logType, days} of options.retention) {
    if (options.signal?.aborted) {
      report.interrupted = true
      break
    }
    const collection = store.collection(logType)
    const cutoff = cutoffFor(now, days)
    const older = {created_at: {$lt: cutoff}}
    const ttl = ttlOf(await indexesOf(store.db, collection.collectionName))
    const t: MongoCleanupTarget = {
      logType,
      collection: collection.collectionName,
      days,
      cutoff: cutoff.toISOString(),
      ...(ttl ? {ttl: {index: ttl.name, days: ttl.days}} : {}),
      older: await collection.countDocuments(older),
      deleted: 0,
      batches: 0,
    }
    report.targets.push(t)
    if (options.dryRun) {
      report.totalDocuments += t.older
      continue
    }
    // said before anything goes (an interrupted cleanup removed some): verify --source mongo counts the chained documents
    // older than the cutoff as removed on purpose; only where setup-db made the chain's collections
    let recorded: {id: unknown; heads?: Record<string, number>} | undefined
    if (t.older > 0 && (await store.db.listCollections({name: INTEGRITY_COLLECTIONS.retention}, {nameOnly: true}).toArray()).length) {
      recorded = {id: await recordRetention(store.db, logType, cutoff, `cleanup: ${days} days, documents deleted`)}
      // the batches whose documents this cleanup removes: the statement signed once they are gone covers those only
      if (options.signingKey && signable(options, logType, days)) recorded.heads = await chainHeads(store.db)
    }
    for (;;) {
      if (options.signal?.aborted) {
        report.interrupted = true
        break
      }
      const ids = await collection
        .find(older, {projection: {_id: 1}})
        .sort({created_at: 1})
        .limit(options.batchSize)
        .map((d) => d._id)
        .toArray()
      if (ids.length === 0) break
      // the cutoff again: a document is only ever deleted for being older than it
      const {deletedCount} = await collection.deleteMany({_id: {$in: ids}, ...older})
      t.deleted += deletedCount
      t.batches++
      options.onProgress?.({collection: t.collection, deleted: t.deleted, older: t.older})
      if (ids.length < options.batchSize) break
    }
    report.totalDocuments += t.deleted
    if (report.interrupted) break
    if (options.signingKey && recorded?.heads) {
      const heads = recorded.heads
      const signed = signRetention(options.signingKey, {store: 'mongo', logType, cutoff, days, at: now, heads})
      if (!(await signRecordedRetention(store.db, recorded.id, signed))) (report.notes ??= []).push(unsignedNote(logType, cutoff))
    }
  }
  if (!report.interrupted) report.integrity = await pruneIntegrity(store, options, report, now, startedAt)
  if (report.integrity?.interrupted) report.interrupted = true
  return report
}

/**
 * The chains' batches whose documents this cleanup (or an earlier one) removed, as for PostgreSQL (retention.ts
 * pruneIntegrity): by the cutoffs verify honours (the recorded ones and the TTL's), of the types this cleanup applied,
 * none after its own. A dry run counts as if this cleanup had recorded its cutoffs where it found documents to remove.
 */
async function pruneIntegrity(
  store: MongoStore,
  options: MongoCleanupOptions,
  report: MongoCleanupReport,
  now: Date,
  startedAt: string,
): Promise<PruneReport | undefined> {
  const wanted = [INTEGRITY_COLLECTIONS.batches, INTEGRITY_COLLECTIONS.pruned]
  const have = new Set((await store.db.listCollections({name: {$in: wanted}}, {nameOnly: true}).toArray()).map((c) => c.name))
  if (!have.has(INTEGRITY_COLLECTIONS.batches)) return undefined // no chain
  // set up before the chains' pruning
  if (!have.has(INTEGRITY_COLLECTIONS.pruned))
    return notPruned(
      options.dryRun,
      `${INTEGRITY_COLLECTIONS.pruned} does not exist (run \`audit-logs setup-db --store mongo\`, which makes it)`,
    )
  const notes: string[] = []
  const rows = await mongoChainSource(store).retentionCutoffs(now, (text) => notes.push(text))
  if (options.dryRun)
    for (const t of report.targets) if (t.older > 0) rows.push({log_type: t.logType, cutoff: t.cutoff, written_at: now.toISOString()})
  const pruned = await pruneAfterCleanup(mongoPruneIO(store.db), {
    ...options,
    rows,
    targets: report.targets,
    own: (t) => t.cutoff,
    store: 'mongo',
    now,
    writtenBefore: startedAt,
    // the documents are gone: a user that may not prune leaves the batches, and says so
    refused: (error) =>
      isUnauthorized(error) ? `${reason(error)} (run cleanup as a user that may delete from ${INTEGRITY_COLLECTIONS.batches})` : undefined,
  })
  return {...pruned, notes: [...notes, ...pruned.notes]}
}
