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
  slowPaths: Stats['slowPaths']
  failingPaths: Stats['failingPaths']
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
    slowPaths: p.slowPaths,
    failingPaths: p.failingPaths,
    histogram: p.histogram,
    ...(p.approximate?.length ? {approximate: p.approximate} : {}),
  }
}

/**
 * Strings in the order of their UTF-8 bytes (code points), as PostgreSQL's COLLATE "C" and MongoDB order them:
 * UTF-16 units order the same but for surrogates (code points past U+FFFF), which must follow U+E000–U+FFFF.
 */
export function byteOrder(a: string, b: string): number {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return utf8Rank(x) - utf8Rank(y)
  }
  return a.length - b.length
}
const utf8Rank = (unit: number) => (unit < 0xd800 ? unit : unit < 0xe000 ? unit + 0x2000 : unit - 0x800)

/**
 * The mean of durations to 0.1 ms from their sum and count, the same in every store (PostgreSQL's statsSlowPaths
 * computes it in numeric): the sum to the microsecond (durations are recorded to it, so what goes is the float
 * error of adding in another order), then the quotient rounded half away from zero, in integers.
 */
export function averageMs(sum: number, count: number): number {
  const micros = BigInt(Math.round(Math.abs(sum) * 1000))
  const n = BigInt(count)
  return ((sum < 0 ? -1 : 1) * Number((micros + 50n * n) / (100n * n))) / 10
}

/** A path's durations: how many, their sum and the largest. */
export type Timings = {count: number; sum: number; max: number}
type SlowPath = Stats['slowPaths'][number]

/** Slowest first (mean duration), ties by path in byte order: the order of slowPaths. */
export const slowerFirst = (a: SlowPath, b: SlowPath) => b.avgMs - a.avgMs || byteOrder(a.path, b.path)

/**
 * The `top` slowest paths of a stream of per-path timings, in memory for `top` of them only (the stores
 * that cannot sort by a mean themselves hand every path's timings through here).
 */
export class Slowest {
  private readonly kept: SlowPath[] = []
  constructor(private readonly top: number) {}

  add(path: string, t: Timings): void {
    const entry = {path, count: t.count, avgMs: averageMs(t.sum, t.count), maxMs: t.max}
    const {kept} = this
    if (this.top <= 0 || (kept.length === this.top && slowerFirst(entry, kept[kept.length - 1]) >= 0)) return
    let lo = 0
    let hi = kept.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (slowerFirst(kept[mid], entry) < 0) lo = mid + 1
      else hi = mid
    }
    kept.splice(lo, 0, entry)
    if (kept.length > this.top) kept.pop()
  }

  list(): SlowPath[] {
    return [...this.kept]
  }
}
