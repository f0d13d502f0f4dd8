import type {Filter} from '../../filters/parse.js'
import type {Stats, StatsOptions} from '../source.js'
import type {Db} from './db.js'
import {statsHistogram, statsTop, statsTotals} from './sql/stats.js'

/** The summary, computed in PostgreSQL (no rows are pulled into Node). */
export async function computeStats(db: Db, f: Filter, options: StatsOptions): Promise<Stats> {
  const {
    rows: [t],
  } = await db.query(statsTotals(f))
  const top = async (key: 'path' | 'user' | 'ip') => (await db.query(statsTop(f, key, options.top))).rows
  const hist = await db.query(statsHistogram(f, options.bucket))
  const total = Number(t.total)
  const round = (v: unknown) => (v === null ? null : Math.round(Number(v) * 100) / 100)
  return {
    total,
    byClass: {'1xx': Number(t.c1), '2xx': Number(t.c2), '3xx': Number(t.c3), '4xx': Number(t.c4), '5xx': Number(t.c5)},
    errorRate: total ? Math.round((Number(t.c5) / total) * 10_000) / 10_000 : 0,
    durationMs: {p50: round(t.p50), p95: round(t.p95), p99: round(t.p99)},
    slow: Number(t.slow),
    suspicious: Number(t.suspicious),
    topPaths: (await top('path')).map((r) => ({path: r.k, count: Number(r.n)})),
    topUsers: (await top('user')).map((r) => ({user: r.k, count: Number(r.n)})),
    topIps: (await top('ip')).map((r) => ({ip: r.k, count: Number(r.n)})),
    histogram: hist.rows.map((r) => ({period: r.period.toISOString(), count: Number(r.n), errors: Number(r.errors)})),
  }
}
