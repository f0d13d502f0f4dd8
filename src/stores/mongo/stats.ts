import type {Collection, Document} from 'mongodb'
import {andMongo, toMongo} from '../../filters/mongo.js'
import type {Filter} from '../../filters/parse.js'
import type {Stats, StatsOptions} from '../source.js'
import {Slowest, statusClass, summarize} from '../summary.js'
import type {Doc} from './documents.js'
import type {EventCounter} from '../event-summary.js'

/**
 * The summary of `stats`, computed by the server: aggregation pipelines
 * whose results are a few documents each, never the records. They use only
 * the stages and operators every MongoDB-compatible server has (FerretDB
 * 1.24 lacks $cond, $dateTrunc, $facet, $percentile, ...): $match, $group
 * by a field with $sum, $sort, $skip, $limit. So the status classes are
 * counted per status code and summed here, and the histogram groups on the
 * `_hour` each document holds (documents.ts). The figures, their rounding
 * and their order are those of stores/postgres/stats.ts.
 */
export async function mongoStats(collection: Collection<Doc>, f: Filter, options: StatsOptions): Promise<Stats> {
  const match = toMongo(f)
  const run = <T extends Document>(pipeline: Document[]) => collection.aggregate<T>(pipeline, {allowDiskUse: true}).toArray()
  const countBy = (where: Document, key: string) => run<{_id: unknown; n: number}>([{$match: where}, {$group: {_id: key, n: {$sum: 1}}}])

  // each pipeline is independent of the others: the server runs them side by side
  const flagged = (flags: Document) => (f.logType === 'access' ? Promise.resolve(0) : collection.countDocuments(andMongo(match, {flags})))
  const top = async (field: string, extra: Document = {}) =>
    (
      await run<{_id: string; n: number}>([
        {$match: andMongo(match, {[field]: {$ne: null}, ...extra})},
        {$group: {_id: `$${field}`, n: {$sum: 1}}},
        // ties by value in byte order: MongoDB compares strings by their bytes unless told a collation, as COLLATE "C"
        {$sort: {n: -1, _id: 1}},
        {$limit: options.top},
      ])
    ).map((r) => [r._id, r.n] as const)
  const path = f.logType === 'access' ? '_path' : 'path'
  const [statuses, [p50, p95, p99], slow, suspicious, topPaths, topUsers, topIps, slowPaths, failingPaths, hist] = await Promise.all([
    countBy(match, '$status_code'),
    percentiles(collection, match, [0.5, 0.95, 0.99]),
    flagged({$eq: 'slow'}),
    flagged({$regex: '^suspicious'}),
    top(path),
    top('user_id'),
    // `_ip` is there when `ip` is an address (PostgreSQL's inet holds nothing else)
    top('ip', {_ip: {$exists: true}}),
    slowestPaths(collection, andMongo(match, {[path]: {$ne: null}, duration_ms: {$ne: null}}), path, options.top),
    failing(top, countBy, match, path),
    histogram(countBy, match, options.bucket),
  ])

  const classes = [0, 0, 0, 0, 0]
  let total = 0
  for (const {_id: status, n} of statuses) {
    total += n
    const c = statusClass(typeof status === 'number' ? status : undefined)
    if (c !== undefined) classes[c] += n
  }
  return summarize({
    total,
    classes,
    percentiles: [p50, p95, p99],
    slow,
    suspicious,
    topPaths,
    topUsers,
    topIps,
    slowPaths,
    failingPaths,
    histogram: hist,
  })
}

/**
 * The slowest paths, with the one accumulator per $group that FerretDB 1.24 computes (a second one in the
 * same $group comes back 0, and it has neither $avg nor $max): the count and the sum of the durations of
 * each path in two pipelines, both in path order, read side by side with only the `top` slowest kept
 * here; then each of those paths' longest duration, the first of its records in a sort by duration.
 */
async function slowestPaths(collection: Collection<Doc>, timed: Document, path: string, top: number): Promise<Stats['slowPaths']> {
  const perPath = (value: unknown) => {
    const groups = collection.aggregate<{_id: string; v: number}>(
      [{$match: timed}, {$group: {_id: `$${path}`, v: {$sum: value}}}, {$sort: {_id: 1}}],
      {allowDiskUse: true, batchSize: 5000},
    )
    return groups[Symbol.asyncIterator]()
  }
  const counts = perPath(1)
  const sums = perPath('$duration_ms')
  const slowest = new Slowest(top)
  for (;;) {
    const [n, sum] = await Promise.all([counts.next(), sums.next()])
    if (n.done && sum.done) break
    // the same documents grouped by the same key: the same paths in the same order
    if (n.done || sum.done || n.value._id !== sum.value._id) throw new Error('slowPaths: the counts and sums came back for different paths')
    slowest.add(n.value._id, {count: n.value.v, sum: sum.value.v, max: Number.NaN}) // the longest: below, for the slowest only
  }
  await Promise.all([counts.return?.(), sums.return?.()])
  const list = slowest.list()
  const max = new Map<string, number>()
  if (list.length) {
    const longest = collection.aggregate<Doc>(
      [
        {$match: andMongo(timed, {[path]: {$in: list.map((p) => p.path)}})},
        {$sort: {duration_ms: -1}},
        {$project: {[path]: 1, duration_ms: 1}},
      ],
      {allowDiskUse: true, batchSize: 1000},
    )
    // a path's first record in this order holds its longest duration: read until each path has one
    for await (const d of longest) {
      if (!max.has(d[path] as string)) max.set(d[path] as string, d.duration_ms as number)
      if (max.size === list.length) break
    }
    await longest.close()
  }
  return list.map((p) => ({...p, maxMs: max.get(p.path)!}))
}

/**
 * The paths with the most 5xx (the top list of the records with a 5xx), then the count of all the records of
 * each of those paths.
 */
async function failing(
  top: (field: string, extra?: Document) => Promise<Array<readonly [string, number]>>,
  countBy: (where: Document, key: string) => Promise<Array<{_id: unknown; n: number}>>,
  match: Document,
  path: string,
): Promise<Stats['failingPaths']> {
  const errors = await top(path, {status_code: {$gte: 500}})
  if (errors.length === 0) return []
  const counts = new Map((await countBy(andMongo(match, {[path]: {$in: errors.map(([p]) => p)}}), `$${path}`)).map((r) => [r._id, r.n]))
  return errors.map(([p, n]) => ({path: p, count: counts.get(p) ?? n, errors: n}))
}

/**
 * PostgreSQL's percentile_cont, exactly: the linear interpolation between
 * the values at ranks floor and ceil of p × (n − 1) among the n durations
 * that are not null, each fetched by the server's sort with $skip.
 */
async function percentiles(collection: Collection<Doc>, match: Document, ps: number[]): Promise<Array<number | null>> {
  const timed = andMongo(match, {duration_ms: {$ne: null}})
  const n = await collection.countDocuments(timed)
  if (n === 0) return ps.map(() => null)
  return Promise.all(
    ps.map(async (p) => {
      const at = p * (n - 1)
      const lo = Math.floor(at)
      const hi = Math.ceil(at)
      const values = await collection
        .aggregate<{duration_ms: number}>(
          [{$match: timed}, {$sort: {duration_ms: 1}}, {$skip: lo}, {$limit: hi - lo + 1}, {$project: {_id: 0, duration_ms: 1}}],
          {allowDiskUse: true},
        )
        .toArray()
      const first = values[0].duration_ms
      const second = hi === lo ? first : values[1].duration_ms
      return first + (second - first) * (at - lo) // float8_lerp, as PostgreSQL computes it
    }),
  )
}

const MINUTE_MS = 60_000
const HOUR_MS = 60 * MINUTE_MS
const DAY_MS = 24 * HOUR_MS
const BUCKET_MS = {minute: MINUTE_MS, hour: HOUR_MS, day: DAY_MS} as const

/**
 * Records and 5xx per hour (the `_hour` of each document), rolled up to UTC days here when asked:
 * date_trunc's periods. Minutes have no field of their own (and FerretDB no $dateTrunc): per millisecond
 * (created_at) then, rolled up to minutes here; `stats --bucket minute` asks for a time range.
 */
async function histogram(
  countBy: (where: Document, key: string) => Promise<Array<{_id: unknown; n: number}>>,
  match: Document,
  bucket: StatsOptions['bucket'],
): Promise<Stats['histogram']> {
  const size = BUCKET_MS[bucket]
  const key = bucket === 'minute' ? '$created_at' : '$_hour'
  const periods = new Map<number, {count: number; errors: number}>()
  const add = (rows: Array<{_id: unknown; n: number}>, key: 'count' | 'errors') => {
    for (const {_id: time, n} of rows) {
      if (!(time instanceof Date)) continue
      const at = Math.floor(time.getTime() / size) * size
      const p = periods.get(at) ?? {count: 0, errors: 0}
      p[key] += n
      periods.set(at, p)
    }
  }
  const [all, errors] = await Promise.all([countBy(match, key), countBy(andMongo(match, {status_code: {$gte: 500}}), key)])
  add(all, 'count')
  add(errors, 'errors')
  return [...periods].sort((a, b) => a[0] - b[0]).map(([at, p]) => ({period: new Date(at).toISOString(), count: p.count, errors: p.errors}))
}

/** `stats --log-type event` in pipelines of the same few stages. */
export const mongoEventCounter = (collection: Collection<Doc>): EventCounter => ({
  count: (f) => collection.countDocuments(toMongo(f)),
  async top(f, field, top) {
    const rows = await collection
      .aggregate<{_id: string; n: number}>(
        [
          {$match: andMongo(toMongo(f), {[field]: {$ne: null}})},
          {$group: {_id: `$${field}`, n: {$sum: 1}}},
          {$sort: {n: -1, _id: 1}},
          {$limit: top},
        ],
        {allowDiskUse: true},
      )
      .toArray()
    return rows.map((r) => [String(r._id), r.n] as const)
  },
  async exportedRecords(f) {
    // $sum skips values that are not numbers, as the SQL's jsonb_typeof test does
    const [r] = await collection
      .aggregate<{n: number}>([{$match: toMongo(f)}, {$group: {_id: null, n: {$sum: '$extra.record_count'}}}])
      .toArray()
    return Number(r?.n ?? 0)
  },
})
