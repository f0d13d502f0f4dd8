import type {Filter} from '../../filters/parse.js'
import {toPredicate} from '../../filters/predicate.js'
import type {Row, Stats, StatsOptions} from '../source.js'
import {statusClass, summarize} from '../summary.js'

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
    return [...this.counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(0, n)
  }
}

const periodOf = (created: string, bucket: StatsOptions['bucket']): string => {
  const t = new Date(created)
  return new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate(), bucket === 'hour' ? t.getUTCHours() : 0)).toISOString()
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
    if (typeof p === 'string') paths.add(p)
    if (typeof r.user_id === 'string') users.add(r.user_id)
    if (typeof r.ip === 'string' && r.ip) ips.add(r.ip)
    const period = periodOf(String(r.created_at), options.bucket)
    const h = histogram.get(period) ?? {count: 0, errors: 0}
    h.count++
    if (status !== undefined && status >= 500) h.errors++
    histogram.set(period, h)
  }
  const approximate = [
    durations.approximate && 'durationMs',
    paths.approximate && 'topPaths',
    users.approximate && 'topUsers',
    ips.approximate && 'topIps',
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
    histogram: [...histogram].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([period, h]) => ({period, ...h})),
    approximate,
  })
}
