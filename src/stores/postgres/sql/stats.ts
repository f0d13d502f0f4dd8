import type {Filter} from '../../../filters/parse.js'
import {toSql} from '../../../filters/sql.js'
import {LOG_TABLES} from '../periods.js'
import type {EventGroup} from '../../event-summary.js'
import type {Query} from './query.js'
import {quoteIdent} from './quote.js'

/** Counts by status class, duration percentiles (percentile_cont), slow and suspicious counts: one row. */
export function statsTotals(f: Filter): Required<Query> {
  const where = toSql(f)
  const flagged = (pattern: string) =>
    f.logType === 'access' ? '0' : `count(*) FILTER (WHERE EXISTS (SELECT 1 FROM unnest(flags) x WHERE x LIKE '${pattern}'))`
  return {
    text: `SELECT count(*) AS total,
        count(*) FILTER (WHERE status_code BETWEEN 100 AND 199) AS c1, count(*) FILTER (WHERE status_code BETWEEN 200 AND 299) AS c2,
        count(*) FILTER (WHERE status_code BETWEEN 300 AND 399) AS c3, count(*) FILTER (WHERE status_code BETWEEN 400 AND 499) AS c4,
        count(*) FILTER (WHERE status_code >= 500) AS c5,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95,
        percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms) AS p99,
        ${flagged('slow')} AS slow, ${flagged('suspicious%')} AS suspicious
      FROM ${quoteIdent(LOG_TABLES[f.logType])} WHERE ${where.text}`,
    values: where.values,
  }
}

/** What each top list counts: an expression of our own, never user text. */
export const TOP_KEYS = {
  path: (f: Filter) => (f.logType === 'access' ? "split_part(url, '?', 1)" : 'path'),
  user: () => 'user_id',
  ip: () => 'host(ip)',
} as const

/** The `top` most frequent values of one key, most frequent first (ties by value). */
export function statsTop(f: Filter, key: keyof typeof TOP_KEYS, top: number): Required<Query> {
  const where = toSql(f)
  const expr = TOP_KEYS[key](f)
  return {
    text: `SELECT ${expr} AS k, count(*) AS n FROM ${quoteIdent(LOG_TABLES[f.logType])} WHERE ${where.text} AND ${expr} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, ${expr} COLLATE "C" LIMIT $${where.values.length + 1}`,
    values: [...where.values, top],
  }
}

/** Records and 5xx per day or hour (UTC: the session's time zone). */
export function statsHistogram(f: Filter, bucket: 'day' | 'hour'): Required<Query> {
  const where = toSql(f)
  return {
    text: `SELECT date_trunc($${where.values.length + 1}, created_at) AS period, count(*) AS n, count(*) FILTER (WHERE status_code >= 500) AS errors
      FROM ${quoteIdent(LOG_TABLES[f.logType])} WHERE ${where.text} GROUP BY 1 ORDER BY 1`,
    values: [...where.values, bucket],
  }
}

/** Events matching the filter. */
export function eventCount(f: Filter): Required<Query> {
  const where = toSql(f)
  return {text: `SELECT count(*) AS n FROM ${quoteIdent(LOG_TABLES[f.logType])} WHERE ${where.text}`, values: where.values}
}

/** The most frequent values of one event field (a name from EVENT_GROUPS: ours, never user text). */
export function eventTop(f: Filter, field: EventGroup, top: number): Required<Query> {
  const expr = field === 'ip' ? 'host(ip)' : quoteIdent(field)
  const where = toSql(f)
  return {
    text: `SELECT ${expr} AS k, count(*) AS n FROM ${quoteIdent(LOG_TABLES[f.logType])} WHERE ${where.text} AND ${expr} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, ${expr} COLLATE "C" LIMIT $${where.values.length + 1}`,
    values: [...where.values, top],
  }
}

/** The sum of the events' numeric extra.record_count. */
export function eventExportedRecords(f: Filter): Required<Query> {
  const where = toSql(f)
  return {
    text: `SELECT coalesce(sum(CASE WHEN jsonb_typeof(extra->'record_count') = 'number' THEN (extra->>'record_count')::numeric END), 0) AS n
      FROM ${quoteIdent(LOG_TABLES[f.logType])} WHERE ${where.text}`,
    values: where.values,
  }
}
