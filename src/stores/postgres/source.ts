import type pg from 'pg'
import {to as copyTo} from 'pg-copy-streams'
import QueryStream from 'pg-query-stream'
import type {Filter} from '../../filters/parse.js'
import {crlfRecords} from '../../render/csv.js'
import {followByPolling} from '../follow.js'
import {type ExportFormat, type ExportInput, type QueryOptions, type RecordSource, type StatsOptions, columnsOf} from '../source.js'
import {copyTextToNdjson} from './copy-text.js'
import type {Db} from './db.js'
import {getRecord, prepareCopyExport, queryRecords} from './reader.js'
import {selectJson, selectRecords} from './sql/reader.js'
import {computeStats, eventCounter} from './stats.js'
import {summarizeEvents} from '../event-summary.js'

/** The audit database as a source of records: every figure computed in PostgreSQL, exports streamed. */
export class PostgresSource implements RecordSource {
  readonly kind = 'postgres'
  /** `parallel`: where `stats` may send its statements at once (several connections of one reader), else `db`. */
  constructor(
    private readonly db: pg.ClientBase,
    private readonly options: {parallel?: Db} = {},
  ) {}

  query(f: Filter, options: QueryOptions) {
    return queryRecords(this.db, f, options)
  }

  get(id: string) {
    return getRecord(this.db, id)
  }

  stats(f: Filter, options: StatsOptions) {
    return computeStats(this.options.parallel ?? this.db, f, options)
  }

  eventSummary(f: Filter, options: {top: number}) {
    return summarizeEvents(eventCounter(this.db), f, options.top)
  }

  /**
   * CSV and NDJSON come from COPY (PostgreSQL's fastest output: CSV passed
   * through with CRLF line ends, NDJSON built from COPY's text format); JSON
   * as text rendered by PostgreSQL, and HAR as values, through a server-side cursor.
   */
  async export(f: Filter, format: ExportFormat): Promise<ExportInput> {
    const columns = columnsOf(f.logType)
    if (format === 'csv' || format === 'ndjson') {
      const copy = this.db.query(copyTo(await prepareCopyExport(this.db, f, columns, format)))
      return {encoded: [copy, format === 'csv' ? crlfRecords() : copyTextToNdjson(columns)], rowCount: () => copy.rowCount}
    }
    const q = format === 'json' ? selectJson(f, columns, Number.MAX_SAFE_INTEGER) : selectRecords(f, columns, Number.MAX_SAFE_INTEGER)
    return {rows: this.db.query(new QueryStream(q.text, q.values as unknown[], {batchSize: 5000}))}
  }

  follow(f: Filter, options: {intervalMs: number; signal: AbortSignal}) {
    return followByPolling((g, o) => this.query(g, o), f, options)
  }
}
