import type {ChangeStream, ChangeStreamInsertDocument} from 'mongodb'
import {andMongo, keysetMongo, toMongo} from '../../filters/mongo.js'
import type {Filter} from '../../filters/parse.js'
import {toPredicate} from '../../filters/predicate.js'
import {followByPolling} from '../follow.js'
import {LOG_TYPES} from '../log-types.js'
import {
  type ExportFormat,
  type ExportInput,
  type LogType,
  type Order,
  type QueryOptions,
  type RecordSource,
  type Row,
  type StatsOptions,
  positionOf,
} from '../source.js'
import type {MongoStore} from './connection.js'
import {type Doc, fromDocument} from './documents.js'
import {mongoEventCounter, mongoStats} from './stats.js'
import {summarizeEvents} from '../event-summary.js'

// Only types from the driver here: open-source.ts loads this module for every reading command, the driver only with --source mongo.

/**
 * Why a server refuses a change stream: FerretDB has none (NotImplemented, 238), a
 * MongoDB that is not a replica set has none (40573), an old one knows no such stage (40324).
 */
const NO_CHANGE_STREAM = new Set([238, 40573, 40324])
export const refusesChangeStreams = (error: unknown) => NO_CHANGE_STREAM.has(Number((error as {code?: unknown})?.code))

/** The MongoDB store as a source of records: the filter as a query document, `stats` in aggregation pipelines, exports from a cursor. */
export class MongoSource implements RecordSource {
  readonly kind = 'mongo'
  constructor(private readonly store: MongoStore) {}

  /** Newest first by created_at, ties by id, as the other stores order them. */
  async query(f: Filter, options: QueryOptions): Promise<Row[]> {
    const docs = await this.cursor(f, options.order, options.after && positionOf(options.after))
      .limit(options.limit)
      .toArray()
    return docs.map((d) => fromDocument(f.logType, d))
  }

  async get(id: string): Promise<{logType: LogType; record: Row} | undefined> {
    for (const logType of LOG_TYPES) {
      const doc = await this.store.collection(logType).findOne({_id: {$eq: id}})
      if (doc) return {logType, record: fromDocument(logType, doc)}
    }
    return undefined
  }

  eventSummary(f: Filter, options: {top: number}) {
    return summarizeEvents(mongoEventCounter(this.store.collection(f.logType)), f, options.top)
  }

  stats(f: Filter, options: StatsOptions) {
    return mongoStats(this.store.collection(f.logType), f, options)
  }

  /** Every format from the same cursor, read a batch at a time as the encoder takes the rows: memory stays flat. */
  async export(f: Filter, _format: ExportFormat): Promise<ExportInput> {
    return {
      rows: this.cursor(f, 'newest')
        .map((d) => fromDocument(f.logType, d))
        .stream(),
    }
  }

  follow(f: Filter, options: {intervalMs: number; signal: AbortSignal}): AsyncIterable<Row> {
    return this.followChanges(f, options)
  }

  /**
   * A change stream of the inserts where the server offers one (a replica set
   * or a sharded cluster), the filter applied here to each new record; where it
   * refuses, polling as for PostgreSQL. FerretDB (the tests' server) refuses, so
   * the tests prove the polling; the change-stream path follows the driver's
   * documentation of Collection.watch() and ChangeStream.tryNext() and is not
   * run by them.
   */
  private async *followChanges(f: Filter, options: {intervalMs: number; signal: AbortSignal}): AsyncGenerator<Row> {
    const stream: ChangeStream<Doc, ChangeStreamInsertDocument<Doc>> = this.store
      .collection(f.logType)
      .watch<Doc, ChangeStreamInsertDocument<Doc>>([{$match: {operationType: 'insert'}}], {maxAwaitTimeMS: options.intervalMs})
    const close = () => void stream.close().catch(() => {})
    options.signal.addEventListener('abort', close, {once: true})
    let first = true
    try {
      const match = toPredicate(f)
      while (!options.signal.aborted) {
        let change: ChangeStreamInsertDocument<Doc> | null
        try {
          change = await stream.tryNext() // the first call opens the stream: where it is refused
        } catch (error) {
          if (options.signal.aborted) return
          if (first && refusesChangeStreams(error)) break
          throw error
        }
        first = false
        if (!change?.fullDocument) continue
        const row = fromDocument(f.logType, change.fullDocument)
        // the predicate reads created_at as the files hold it, an ISO string
        if (match({...row, created_at: row.created_at instanceof Date ? row.created_at.toISOString() : row.created_at})) yield row
      }
    } finally {
      options.signal.removeEventListener('abort', close)
      await stream.close().catch(() => {})
    }
    if (!options.signal.aborted) yield* followByPolling((g, o) => this.query(g, o), f, options)
  }

  private cursor(f: Filter, order: Order = 'newest', after?: {at: Date; id: string}) {
    const dir = order === 'newest' ? -1 : 1
    const query = after ? andMongo(toMongo(f), keysetMongo(after, order)) : toMongo(f)
    // a sort the indexes do not serve spills to disk on the server instead of failing past its memory limit
    return this.store.collection(f.logType).find(query, {sort: {created_at: dir, _id: dir}, allowDiskUse: true, batchSize: 5000})
  }
}
