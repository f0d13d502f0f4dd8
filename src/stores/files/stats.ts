import type {Filter} from '../../filters/parse.js'
import {toPredicate} from '../../filters/predicate.js'
import type {Row, Stats, StatsOptions} from '../source.js'
import {Slowest, type Timings, byteOrder, statusClass, summarize} from '../summary.js'

/** Durations kept exactly up to this many (32 MB); past it, a uniform sample of this size (Algorithm R). */
export const EXACT_DURATIONS = 4_000_000
/** Distinct keys each top list counts exactly; past it, the Misra–Gries summary keeps the heavy hitters. */
export const EXACT_KEYS = 200_000
/** The same bound in the keys' length (paths may be long): 64 MB of key text per list. */
export const EXACT_KEY_CHARS = 32 * 1024 * 1024

/** Durations for percentiles, in bounded memory: exact, then a uniform sample of them. */
class Durations {
  private values = new Float64Array(1024)
  private n = 0
  seen = 0
  constructor(private readonly cap: number) {}

  add(d: number): void {
    this.seen++
    if (this.n < this.cap) {
      if (this.n === this.values.length) {
        const grown = new Float64Array(Math.min(this.cap, this.values.length * 2))
        grown.set(this.values)
        this.values = grown
      }
      this.values[this.n++] = d
      return
    }
    const j = Math.floor(Math.random() * this.seen)
    if (j < this.cap) this.values[j] = d
  }

  get approximate(): boolean {
    return this.seen > this.n
  }

  /** PostgreSQL's percentile_cont: linear interpolation between the two nearest ranks. */
  percentiles(ps: number[]): Array<number | null> {
    if (this.n === 0) return ps.map(() => null)
    const sorted = this.values.subarray(0, this.n).sort()
    return ps.map((p) => {
      const at = p * (this.n - 1)
      const lo = Math.floor(at)
      const hi = Math.ceil(at)
      return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo)
    })
  }
}

/**
 * Counts per key, exact up to `cap` distinct keys. Past it, the batch form of
 * Misra–Gries: every key loses the count of the cap-th largest and those at
 * zero go, so memory stays under 2 × cap and any key more frequent than
 * total / cap is still listed (its count an underestimate, flagged approximate).
 */
class TopCounter {
  private counts = new Map<string, number>()
  private chars = 0
  approximate = false
  constructor(
    private readonly cap: number,
    private readonly maxChars = EXACT_KEY_CHARS,
  ) {}

  add(key: string): void {
    const seen = this.counts.get(key)
    this.counts.set(key, (seen ?? 0) + 1)
    if (seen === undefined) this.chars += key.length
    if (this.counts.size < 2 * this.cap && this.chars < 2 * this.maxChars) return
    // keep the keys of the `cap` largest counts (fewer when they are long), less the count of the next one
    const sorted = [...this.counts].sort((a, b) => b[1] - a[1])
    let keep = 0
    let chars = 0
    while (keep < Math.min(this.cap, sorted.length) && chars + sorted[keep][0].length <= this.maxChars) chars += sorted[keep++][0].length
    const cut = sorted[keep]?.[1] ?? 0
    this.chars = 0
    for (const [k, c] of this.counts) {
      if (c <= cut) this.counts.delete(k)
      else {
        this.counts.set(k, c - cut)
        this.chars += k.length
      }
    }
    this.approximate = true
  }

  /** As PostgreSQL's ORDER BY count DESC, key (byte order). */
  top(n: number): Array<[string, number]> {
    return [...this.counts].sort((a, b) => b[1] - a[1] || byteOrder(a[0], b[0])).slice(0, n)
  }

  /** A key's count: exact unless approximate (then at most the true count, 0 for a key dropped). */
  count(key: string): number {
    return this.counts.get(key) ?? 0
  }
}

/**
 * Per-path timings (count, sum, longest) for slowPaths, exact up to `cap` distinct paths (and `maxChars` of
 * their text). Past it no small summary keeps the slowest means (a path seen once may be the slowest): the
 * `cap` paths slowest so far are kept and the others dropped, so a dropped path seen again counts from
 * then on only (flagged approximate).
 */
class PathTimings {
  private timings = new Map<string, Timings>()
  private chars = 0
  approximate = false
  constructor(
    private readonly cap: number,
    private readonly maxChars = EXACT_KEY_CHARS,
  ) {}

  add(path: string, d: number): void {
    const t = this.timings.get(path)
    if (t) {
      t.count++
      t.sum += d
      if (d > t.max) t.max = d
      return
    }
    this.timings.set(path, {count: 1, sum: d, max: d})
    this.chars += path.length
    if (this.timings.size < 2 * this.cap && this.chars < 2 * this.maxChars) return
    const mean = (x: Timings) => x.sum / x.count
    const sorted = [...this.timings].sort((a, b) => mean(b[1]) - mean(a[1]))
    this.timings = new Map()
    this.chars = 0
    for (const [p, x] of sorted) {
      if (this.timings.size === this.cap || this.chars + p.length > this.maxChars) break
      this.timings.set(p, x)
      this.chars += p.length
    }
    this.approximate = true
  }

  slowest(top: number): Stats['slowPaths'] {
    const slowest = new Slowest(top)
    for (const [p, t] of this.timings) slowest.add(p, t)
    return slowest.list()
  }
}

/** date_trunc's period (UTC) of a time. */
const periodOf = (created: string, bucket: StatsOptions['bucket']): string => {
  const t = new Date(created)
  const hour = bucket === 'day' ? 0 : t.getUTCHours()
  const minute = bucket === 'minute' ? t.getUTCMinutes() : 0
  return new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate(), hour, minute)).toISOString()
}

/**
 * The figures of `stats`, as stores/postgres/stats.ts computes them in SQL,
 * in one streaming pass over the files' records.
 */
export async function statsOfRecords(
  records: AsyncIterable<Row>,
  f: Filter,
  options: StatsOptions,
  limits: {durations: number; keys: number; keyChars?: number} = {durations: EXACT_DURATIONS, keys: EXACT_KEYS},
): Promise<Stats> {
  const match = toPredicate(f)
  const classes = [0, 0, 0, 0, 0]
  let total = 0
  let slow = 0
  let suspicious = 0
  const durations = new Durations(limits.durations)
  const paths = new TopCounter(limits.keys, limits.keyChars)
  const users = new TopCounter(limits.keys, limits.keyChars)
  const ips = new TopCounter(limits.keys, limits.keyChars)
  const timings = new PathTimings(limits.keys, limits.keyChars)
  const failing = new TopCounter(limits.keys, limits.keyChars) // 5xx per path
  const histogram = new Map<string, {count: number; errors: number}>()
  for await (const r of records) {
    if (!match(r)) continue
    total++
    const status = r.status_code === null || r.status_code === undefined ? undefined : Number(r.status_code)
    const c = statusClass(status)
    if (c !== undefined) classes[c]++
    if (r.duration_ms !== null && r.duration_ms !== undefined) durations.add(Number(r.duration_ms))
    if (f.logType === 'request' && Array.isArray(r.flags)) {
      if (r.flags.includes('slow')) slow++
      if (r.flags.some((x) => typeof x === 'string' && x.startsWith('suspicious'))) suspicious++
    }
    const p = f.logType === 'access' ? (typeof r.url === 'string' ? r.url.split('?')[0] : undefined) : r.path
    if (typeof p === 'string') {
      paths.add(p)
      const d = r.duration_ms === null || r.duration_ms === undefined ? NaN : Number(r.duration_ms)
      if (!Number.isNaN(d)) timings.add(p, d)
      if (status !== undefined && status >= 500) failing.add(p)
    }
    if (typeof r.user_id === 'string') users.add(r.user_id)
    if (typeof r.ip === 'string' && r.ip) ips.add(r.ip)
    const period = periodOf(String(r.created_at), options.bucket)
    const h = histogram.get(period) ?? {count: 0, errors: 0}
    h.count++
    if (status !== undefined && status >= 500) h.errors++
    histogram.set(period, h)
  }
  const failingPaths = failing.top(options.top).map(([path, errors]) => ({path, count: Math.max(paths.count(path), errors), errors}))
  const approximate = [
    durations.approximate && 'durationMs',
    paths.approximate && 'topPaths',
    users.approximate && 'topUsers',
    ips.approximate && 'topIps',
    timings.approximate && 'slowPaths',
    // a failing path's count of records is the top paths' count, exact while that is
    (failing.approximate || (paths.approximate && failingPaths.length > 0)) && 'failingPaths',
  ].filter((x): x is string => Boolean(x))
  return summarize({
    total,
    classes,
    percentiles: durations.percentiles([0.5, 0.95, 0.99]),
    slow,
    suspicious,
    topPaths: paths.top(options.top),
    topUsers: users.top(options.top),
    topIps: ips.top(options.top),
    slowPaths: timings.slowest(options.top),
    failingPaths,
    histogram: [...histogram].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([period, h]) => ({period, ...h})),
    approximate,
  })
}
