import type {Readable} from 'node:stream'
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
  /** At most `limit` matching records, newest first (or oldest first). */
  query(f: Filter, options: {limit: number; order?: Order}): Promise<Row[]>
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

export const SOURCES = ['postgres', 'mongo', 'files'] as const
export type SourceKind = (typeof SOURCES)[number]

export const EXPORT_FORMATS = ['csv', 'ndjson', 'json', 'har'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]
/** Rows to encode (objects; a row may be `{j: '<json text>'}` already rendered by the store), or finished bytes. */
export type ExportInput = {rows: Readable} | {encoded: Array<NodeJS.ReadableStream | NodeJS.ReadWriteStream>; rowCount: () => number}

export type StatsOptions = {bucket: 'day' | 'hour'; top: number}
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
  histogram: Array<{period: string; count: number; errors: number}>
  /** Present only when a figure is an estimate (the files source past its memory bound): which ones. */
  approximate?: string[]
}

export {ACCESS_COLUMNS, EVENT_COLUMNS, REQUEST_COLUMNS, columnsOf} from './log-types.js'

/** What a record id looks like (a UUID); anything else is refused before any store is asked. */
export const RECORD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
