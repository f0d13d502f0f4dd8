import type {Stats} from './source.js'

/**
 * The index of a status code's class in `byClass` (0 for 1xx … 4 for 5xx and above), as PostgreSQL's
 * BETWEEN 100 AND 199 … >= 500 counts it; undefined for no status (no class).
 */
export const statusClass = (status: number | undefined | null): number | undefined =>
  status !== undefined && status !== null && status >= 100 ? Math.min(5, Math.floor(status / 100)) - 1 : undefined

/** What each store measures for `stats`, before it is shaped. */
export type StatsParts = {
  total: number
  /** counts per class: 1xx … 5xx */
  classes: number[]
  /** p50, p95, p99 */
  percentiles: Array<number | null>
  slow: number
  suspicious: number
  topPaths: Array<readonly [string, number]>
  topUsers: Array<readonly [string, number]>
  topIps: Array<readonly [string, number]>
  histogram: Stats['histogram']
  approximate?: string[]
}

const round = (v: number | null) => (v === null ? null : Math.round(v * 100) / 100)

/** The summary every store gives, with one rounding (PostgreSQL's source set it): percentiles to 0.01 ms, the error rate to 0.0001. */
export function summarize(p: StatsParts): Stats {
  const [p50, p95, p99] = p.percentiles
  return {
    total: p.total,
    byClass: {'1xx': p.classes[0], '2xx': p.classes[1], '3xx': p.classes[2], '4xx': p.classes[3], '5xx': p.classes[4]},
    errorRate: p.total ? Math.round((p.classes[4] / p.total) * 10_000) / 10_000 : 0,
    durationMs: {p50: round(p50), p95: round(p95), p99: round(p99)},
    slow: p.slow,
    suspicious: p.suspicious,
    topPaths: p.topPaths.map(([path, count]) => ({path, count})),
    topUsers: p.topUsers.map(([user, count]) => ({user, count})),
    topIps: p.topIps.map(([ip, count]) => ({ip, count})),
    histogram: p.histogram,
    ...(p.approximate?.length ? {approximate: p.approximate} : {}),
  }
}
