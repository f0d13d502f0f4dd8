import type {Filter} from '../../../filters/parse.js'
import {toSql} from '../../../filters/sql.js'
import {columnsOf} from '../../log-types.js'
import type {StatsBucket} from '../../source.js'
import {LOG_TABLES} from '../periods.js'
import type {EventGroup} from '../../event-summary.js'
import type {Query} from './query.js'
import {quoteIdent} from './quote.js'

/** Counts by status class, duration percentiles (percentile_cont), slow and suspicious counts: one row. */
export function statsTotals(f: Filter): Required<Query> {
  const where = toSql(f)
  // access and outbound records have no flags
  const flagged = (pattern: string) =>
    !columnsOf(f.logType).includes('flags')
      ? '0'
      : `count(*) FILTER (WHERE EXISTS (SELECT 1 FROM unnest(flags) x WHERE x LIKE '${pattern}'))`
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

/**
 * The `top` paths by mean duration, slowest first (ties by path), of the records with a duration: the mean
 * to 0.1 ms as summary.ts's averageMs gives it (the sum to the microsecond, then rounded half away from
 * zero, in numeric), and the order on that figure, so that paths shown with one mean are in path order.
 */
export function statsSlowPaths(f: Filter, top: number): Required<Query> {
  const where = toSql(f)
  const expr = TOP_KEYS.path(f)
  return {
    text: `SELECT ${expr} AS k, count(duration_ms) AS n, round(round(sum(duration_ms)::numeric, 3) / count(duration_ms), 1) AS avg, max(duration_ms) AS max
      FROM ${quoteIdent(LOG_TABLES[f.logType])} WHERE ${where.text} AND ${expr} IS NOT NULL AND duration_ms IS NOT NULL
      GROUP BY 1 ORDER BY 3 DESC, ${expr} COLLATE "C" LIMIT $${where.values.length + 1}`,
    values: [...where.values, top],
  }
}

/** The `top` paths with a 5xx, by their number of 5xx (ties by path), with the count of all their records. */
export function statsFailingPaths(f: Filter, top: number): Required<Query> {
  const where = toSql(f)
  const expr = TOP_KEYS.path(f)
  const errors = 'count(*) FILTER (WHERE status_code >= 500)'
  return {
    text: `SELECT ${expr} AS k, count(*) AS n, ${errors} AS errors
      FROM ${quoteIdent(LOG_TABLES[f.logType])} WHERE ${where.text} AND ${expr} IS NOT NULL
      GROUP BY 1 HAVING ${errors} > 0 ORDER BY 3 DESC, ${expr} COLLATE "C" LIMIT $${where.values.length + 1}`,
    values: [...where.values, top],
  }
}

/** Records and 5xx per day, hour or minute (UTC: the session's time zone); the period's name is a value. */
export function statsHistogram(f: Filter, bucket: StatsBucket): Required<Query> {
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
