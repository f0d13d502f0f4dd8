import type {Readable} from 'node:stream'
import {usageError} from '../errors.js'
import type {Filter} from '../filters/parse.js'
import type {EventSummary} from './event-summary.js'
import type {LogType} from './log-types.js'

/**
 * The read side of every store: what `query`, `show`, `export`, `stats` and
 * `tail` need, and nothing about where the records live. PostgreSQL, MongoDB
 * and the JSONL files implement it; a new store is one more implementation, chosen
 * in one place (stores/open-source.ts), with no change in any command.
 */
export interface RecordSource {
  readonly kind: SourceKind
  /**
   * At most `limit` matching records, newest first (or oldest first): (created_at, id) descending
   * (ascending); with `after`, only those strictly beyond that position in the order (keyset paging:
   * `after` is cursorOf the last row of the page before).
   */
  query(f: Filter, options: QueryOptions): Promise<Row[]>
  /** One record by id, of either log type. */
  get(id: string): Promise<{logType: LogType; record: Row} | undefined>
  /** The summary of `stats`, computed where the records are, in bounded memory. */
  stats(f: Filter, options: StatsOptions): Promise<Stats>
  /** `stats --log-type event`: the events' summary (stores/event-summary.ts). */
  eventSummary(f: Filter, options: {top: number}): Promise<EventSummary>
  /**
   * Every matching record, newest first, as a stream: objects for the
   * encoders of render/, or the bytes of a format the store encodes itself
   * faster (PostgreSQL's COPY for csv and ndjson).
   */
  export(f: Filter, format: ExportFormat): Promise<ExportInput>
  /** Records that arrive from now on, matching `f`, oldest first, until `signal` aborts. */
  follow(f: Filter, options: {intervalMs: number; signal: AbortSignal}): AsyncIterable<Row>
}

export type Row = Record<string, unknown>
export type {LogType}
export type Order = 'newest' | 'oldest'
/** A position in the order of `query`: a record's time (ISO, milliseconds) and id. */
export type Cursor = {created_at: string; id: string}
export type QueryOptions = {limit: number; order?: Order; after?: Cursor}

/** The cursor of a row of any source (PostgreSQL and MongoDB give created_at as a Date, the files as text). */
export const cursorOf = (row: Row): Cursor => ({created_at: new Date(row.created_at as string | Date).toISOString(), id: String(row.id)})

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/

/**
 * A cursor as the stores compare it: the time as a Date (records are written to the millisecond), the id in
 * lower case (as PostgreSQL prints a uuid and MongoDB and the files hold ids, so all three order ids alike).
 * A cursor comes back from a client: one that is not an ISO time and a record id is a usage error, not a store's.
 */
export function positionOf(after: Cursor): {at: Date; id: string} {
  const at = new Date(after.created_at)
  if (!ISO_TIME.test(String(after.created_at)) || Number.isNaN(at.getTime()))
    throw usageError(`after: created_at ${JSON.stringify(after.created_at)} is not an ISO time such as 2026-11-24T12:00:00.000Z`)
  if (!RECORD_ID.test(String(after.id))) throw usageError(`after: id ${JSON.stringify(after.id)} is not a record id (a UUID)`)
  return {at, id: after.id.toLowerCase()}
}

export const SOURCES = ['postgres', 'mongo', 'files'] as const
export type SourceKind = (typeof SOURCES)[number]

export const EXPORT_FORMATS = ['csv', 'ndjson', 'json', 'har'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]
/** Rows to encode (objects; a row may be `{j: '<json text>'}` already rendered by the store), or finished bytes. */
export type ExportInput = {rows: Readable} | {encoded: Array<NodeJS.ReadableStream | NodeJS.ReadWriteStream>; rowCount: () => number}

export const STATS_BUCKETS = ['day', 'hour', 'minute'] as const
/** The histogram's period (UTC), date_trunc's name for it. */
export type StatsBucket = (typeof STATS_BUCKETS)[number]
export type StatsOptions = {bucket: StatsBucket; top: number}
export type Stats = {
  total: number
  byClass: Record<string, number>
  errorRate: number
  durationMs: {p50: number | null; p95: number | null; p99: number | null}
  slow: number
  suspicious: number
  topPaths: Array<{path: string; count: number}>
  topUsers: Array<{user: string; count: number}>
  topIps: Array<{ip: string; count: number}>
  /**
   * The `top` paths (as topPaths has them: an access record's url without its query) by mean duration
   * (to 0.1 ms, summary.ts's averageMs), slowest first, ties by path in byte order; of the records that
   * have a duration (`count` counts those).
   */
  slowPaths: Array<{path: string; count: number; avgMs: number; maxMs: number}>
  /**
   * The `top` paths (as topPaths has them) with at least one 5xx, by their number of 5xx (`errors`), ties
   * by path in byte order; `count` counts all their records.
   */
  failingPaths: Array<{path: string; count: number; errors: number}>
  histogram: Array<{period: string; count: number; errors: number}>
  /** Present only when a figure is an estimate (the files source past its memory bound): which ones. */
  approximate?: string[]
}

export {ACCESS_COLUMNS, EVENT_COLUMNS, REQUEST_COLUMNS, columnsOf} from './log-types.js'

/** What a record id looks like (a UUID); anything else is refused before any store is asked. */
export const RECORD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
