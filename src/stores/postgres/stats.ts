import type {Filter} from '../../filters/parse.js'
import {type Stats, type StatsOptions, columnsOf} from '../source.js'
import {summarize} from '../summary.js'
import {type Db, each} from './db.js'
import type {EventCounter} from '../event-summary.js'
import {
  eventCount,
  eventExportedRecords,
  eventTop,
  statsFailingPaths,
  statsHistogram,
  statsSlowPaths,
  statsTop,
  statsTotals,
} from './sql/stats.js'

/**
 * The summary, computed in PostgreSQL (no rows are pulled into Node): seven statements, one after the
 * other on one connection, at once on a `db` that spreads them over several (the viewer's).
 */
export async function computeStats(db: Db, f: Filter, options: StatsOptions): Promise<Stats> {
  const pair = (r: {k: string; n: unknown}) => [r.k, Number(r.n)] as const
  // outbound records have neither a user nor an address: nothing to list
  const top = async (key: 'path' | 'user' | 'ip', needs?: string) =>
    needs && !columnsOf(f.logType).includes(needs) ? [] : (await db.query(statsTop(f, key, options.top))).rows.map(pair)
  const [totals, hist, topPaths, topUsers, topIps, slow, failing] = await each(db, [
    () => db.query(statsTotals(f)),
    () => db.query(statsHistogram(f, options.bucket)),
    () => top('path'),
    () => top('user', 'user_id'),
    () => top('ip', 'ip'),
    () => db.query(statsSlowPaths(f, options.top)),
    () => db.query(statsFailingPaths(f, options.top)),
  ])
  const t = totals.rows[0]
  const num = (v: unknown) => (v === null ? null : Number(v))
  return summarize({
    total: Number(t.total),
    classes: [t.c1, t.c2, t.c3, t.c4, t.c5].map(Number),
    percentiles: [num(t.p50), num(t.p95), num(t.p99)],
    slow: Number(t.slow),
    suspicious: Number(t.suspicious),
    topPaths,
    topUsers,
    topIps,
    slowPaths: slow.rows.map((r) => ({path: r.k, count: Number(r.n), avgMs: Number(r.avg), maxMs: Number(r.max)})),
    failingPaths: failing.rows.map((r) => ({path: r.k, count: Number(r.n), errors: Number(r.errors)})),
    histogram: hist.rows.map((r) => ({period: r.period.toISOString(), count: Number(r.n), errors: Number(r.errors)})),
  })
}

/** `stats --log-type event`, every figure computed in PostgreSQL. */
export const eventCounter = (db: Db): EventCounter => ({
  count: async (f) => Number((await db.query(eventCount(f))).rows[0].n),
  top: async (f, field, top) => (await db.query(eventTop(f, field, top))).rows.map((r) => [String(r.k), Number(r.n)] as const),
  exportedRecords: async (f) => Number((await db.query(eventExportedRecords(f))).rows[0].n),
})
