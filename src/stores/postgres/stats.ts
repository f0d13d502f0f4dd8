import type {Filter} from '../../filters/parse.js'
import {toSql} from '../../filters/sql.js'
import {quoteIdent} from '../../util/parse.js'
import type {Db} from './db.js'
import {LOG_TABLES} from './periods.js'

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
}

/** The summary, computed in PostgreSQL (no rows are pulled into Node). */
export async function computeStats(db: Db, f: Filter, options: {bucket: 'day' | 'hour'; top: number}): Promise<Stats> {
  const table = quoteIdent(LOG_TABLES[f.logType])
  const where = toSql(f)
  const n = where.values.length
  const pathCol = f.logType === 'access' ? "split_part(url, '?', 1)" : 'path'
  const flagged = (pattern: string) => (f.logType === 'access' ? '0' : `count(*) FILTER (WHERE EXISTS (SELECT 1 FROM unnest(flags) x WHERE x LIKE '${pattern}'))`)
  const {rows: [t]} = await db.query({
    text: `SELECT count(*) AS total,
        count(*) FILTER (WHERE status_code BETWEEN 100 AND 199) AS c1, count(*) FILTER (WHERE status_code BETWEEN 200 AND 299) AS c2,
        count(*) FILTER (WHERE status_code BETWEEN 300 AND 399) AS c3, count(*) FILTER (WHERE status_code BETWEEN 400 AND 499) AS c4,
        count(*) FILTER (WHERE status_code >= 500) AS c5,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95,
        percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms) AS p99,
        ${flagged('slow')} AS slow, ${flagged('suspicious%')} AS suspicious
      FROM ${table} WHERE ${where.text}`,
    values: where.values,
  })
  const top = async (expr: string) =>
    (await db.query({text: `SELECT ${expr} AS k, count(*) AS n FROM ${table} WHERE ${where.text} AND ${expr} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $${n + 1}`, values: [...where.values, options.top]})).rows
  const hist = await db.query({
    text: `SELECT date_trunc($${n + 1}, created_at) AS period, count(*) AS n, count(*) FILTER (WHERE status_code >= 500) AS errors
      FROM ${table} WHERE ${where.text} GROUP BY 1 ORDER BY 1`,
    values: [...where.values, options.bucket],
  })
  const total = Number(t.total)
  const round = (v: unknown) => (v === null ? null : Math.round(Number(v) * 100) / 100)
  return {
    total,
    byClass: {'1xx': Number(t.c1), '2xx': Number(t.c2), '3xx': Number(t.c3), '4xx': Number(t.c4), '5xx': Number(t.c5)},
    errorRate: total ? Math.round((Number(t.c5) / total) * 10_000) / 10_000 : 0,
    durationMs: {p50: round(t.p50), p95: round(t.p95), p99: round(t.p99)},
    slow: Number(t.slow),
    suspicious: Number(t.suspicious),
    topPaths: (await top(pathCol)).map((r) => ({path: r.k, count: Number(r.n)})),
    topUsers: (await top('user_id')).map((r) => ({user: r.k, count: Number(r.n)})),
    topIps: (await top('host(ip)')).map((r) => ({ip: r.k, count: Number(r.n)})),
    histogram: hist.rows.map((r) => ({period: r.period.toISOString(), count: Number(r.n), errors: Number(r.errors)})),
  }
}
