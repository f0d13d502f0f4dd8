/**
 * Retention of the integrity chain (integrity.ts): cleanup removes records older than their type's cutoff, and
 * their batch rows (about 60 bytes a record) would otherwise stay forever. After a cleanup that completed, each
 * instance's chain loses its oldest batch rows, those whose records all lie before their type's cutoff.
 *
 * Design
 * - Always a prefix of the chain (seq 1..N, contiguous), never the head: a chain interleaves log types (request and
 *   access batches alternate), and deleting one type's batches from the middle would cut it into pieces whose links
 *   nobody could check. So a batch goes once it and every batch before it may go; a type kept longer holds back the
 *   batches after its first kept one (request batches wait for the access batches between them: 120 days by
 *   default, not 90). The head stays so that the writer continues the chain instead of starting a new one at seq 1.
 * - integrity_pruned (migration 0007) says, per instance, where the chain now starts: through_seq, that batch's hash
 *   and total (verify checks the first remaining batch's link against them: the chain stays one checked piece), and
 *   per log type the newest record time among the pruned batches, which verify checks against the retention it
 *   honours. The row is updated in the transaction that deletes, so it never disagrees with the table.
 * - The cutoffs are the recorded ones (integrity_retention) that the configured retention allows, as verify honours
 *   them (honouredCutoffs), and not after this cleanup's own cutoff (what it just removed), only for the types this
 *   cleanup applied: a record older than the cutoff is gone, so its hash is no longer needed.
 * - Bounded: at most `batchSize` (≤ 1000) batch rows per transaction, deleted by primary key; the candidates are read
 *   by the primary key from the chain's start, so a cleanup reads only what it prunes and a page more.
 * - Signed digests whose head is pruned stay: verify checks that what they sign is older than the retention allows.
 * - The walk (pruneChainsOf) is the same for MongoDB's chains; a store gives it its batches and pruned starts through
 *   PruneIO (stores/mongo/prune.ts for MongoDB, which has no transactions: see there).
 */
import {type KeyObject, createPublicKey} from 'node:crypto'
import type {Db} from './db.js'
import {type ChainStore, signedRetention} from './integrity.js'
import type {LogType} from '../log-types.js'
import * as sql from './sql/integrity.js'

/** A recorded retention cutoff verify (and pruning) does not honour: newer than the configured retention allows. */
export type BadRetention = {logType: string; cutoff: string; writtenAt: string; why: string}

/** A day's slack on the retention bound (cleanup runs late, clocks differ). */
export const RETENTION_SLACK_MS = 86_400_000

/** A time as utcText gives it (microseconds), so that it compares as text with the database's. */
export const usText = (date: Date) => date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')

/** A recorded retention cutoff as verify and pruning read it; `statement` and `signature` when cleanup signed it (integrity.ts). */
export type CutoffRow = {
  log_type: string
  cutoff: string
  written_at: string
  how?: string
  statement?: string | null
  signature?: string | null
}

/**
 * The cutoffs verify and pruning honour. `configured`: per type, the newest recorded cutoff that the configured
 * retention allows; it covers every chained record of the type. `signed`: cutoffs newer than that which integrityKey
 * signed with the retention they were applied under (a retention raised since): each covers only the records of the
 * batches its statement names (each instance's chain up to its head as cleanup began), so records chained after it,
 * an import of old records say, are not covered by a retention that no longer applies.
 */
export type Cutoffs = {
  configured: Map<string, string>
  signed: Array<{type: string; cutoff: string; heads: Record<string, number>}>
}

/** The cutoff that covers records of `type` in batch `seq` of `instance` (without them: the configured one only). */
export function cutoffAt(c: Cutoffs, type: string, instance?: string, seq?: number): string | undefined {
  let cutoff = c.configured.get(type)
  if (instance !== undefined && seq !== undefined)
    for (const s of c.signed)
      if (s.type === type && (s.heads[instance] ?? 0) >= seq && (cutoff === undefined || s.cutoff > cutoff)) cutoff = s.cutoff
  return cutoff
}

/** The newest cutoff of any type that covers batch `seq` of `instance`. */
export function newestCutoffAt(c: Cutoffs, instance?: string, seq?: number): string | undefined {
  const types = new Set([...c.configured.keys(), ...c.signed.map((s) => s.type)])
  return [...types]
    .map((t) => cutoffAt(c, t, instance, seq))
    .filter((x): x is string => x !== undefined)
    .sort()
    .at(-1)
}

/**
 * Each type's latest recorded cutoff that its configured retention allows; a newer one is flagged, not honoured:
 * a cutoff is the time of the cleanup minus the retention, so one after (when it was recorded, at the latest now) −
 * retention would hide deletions. With `signer`, a cutoff that integrityKey signed (signRetention) is honoured by
 * the retention its statement says it was applied under too, for the batches the statement names: a retention raised
 * since does not make earlier cleanups look like deletions. Such cutoffs are named in `notes`, once per log type and
 * retention.
 */
export function honouredCutoffs(
  rows: CutoffRow[],
  retentionDays: Partial<Record<LogType, number>> | undefined,
  now: Date,
  signer?: {publicKey: KeyObject; store: ChainStore},
): Cutoffs & {bad: BadRetention[]; notes: string[]} {
  const configured = new Map<string, string>()
  const signedCutoffs: Cutoffs['signed'] = []
  const bad: BadRetention[] = []
  const shorter = new Map<string, {type: string; days: number; configured: number; count: number}>()
  for (const r of rows) {
    if (!Number.isFinite(Date.parse(r.cutoff)) || !Number.isFinite(Date.parse(r.written_at))) {
      bad.push({
        logType: r.log_type,
        cutoff: r.cutoff,
        writtenAt: r.written_at,
        why: 'its cutoff or the time it was recorded is not a time',
      })
      continue
    }
    const days = retentionDays?.[r.log_type as LogType]
    if (days !== undefined) {
      const recorded = Math.min(Date.parse(r.written_at), now.getTime())
      const allows = (d: number, at: number) => Date.parse(r.cutoff) <= at - d * 86_400_000 + RETENTION_SLACK_MS
      if (!allows(days, recorded)) {
        const signed = signer ? signedRetention(r, signer.publicKey, signer.store) : undefined
        if (signed && signed !== 'invalid' && allows(signed.days, Math.min(signed.at, recorded))) {
          const key = `${r.log_type} ${signed.days}`
          const s = shorter.get(key) ?? {type: r.log_type, days: signed.days, configured: days, count: 0}
          s.count++
          shorter.set(key, s)
          signedCutoffs.push({type: r.log_type, cutoff: r.cutoff, heads: signed.heads})
        } else
          bad.push({
            logType: r.log_type,
            cutoff: r.cutoff,
            writtenAt: r.written_at,
            why:
              `newer than ${r.log_type} records are kept (${days} days before it was recorded, with a day's slack)${r.how ? `, from ${r.how}` : ''}` +
              `${signed === 'invalid' ? '; its signed statement does not check with the key (changed, signed by another, or of another row)' : ''}: not honoured, it would hide deletions`,
          })
        continue
      }
    }
    if (!configured.has(r.log_type) || r.cutoff > configured.get(r.log_type)!) configured.set(r.log_type, r.cutoff)
  }
  const notes = [...shorter.values()].map(
    (s) =>
      `${s.count} ${s.type} retention cutoff(s) were applied under a retention of ${s.days} days, shorter than the ${s.configured} ` +
      'configured now: honoured for the records chained before them, as the integrity key signed that retention when they were applied',
  )
  return {configured, signed: signedCutoffs, bad, notes}
}

export type PrunedInstance = {instance: string; fromSeq: number; throughSeq: number; batches: number; records: number}
export type PruneReport = {
  dryRun: boolean
  /** batch rows removed (or, dry, that would be) */
  batches: number
  /** the records whose hashes they held */
  records: number
  instances: PrunedInstance[]
  /** the cutoffs the chains were pruned by, per log type (a type without one holds its batches) */
  cutoffs: Record<string, string>
  /** why an instance, or everything, was not pruned */
  notes: string[]
  interrupted: boolean
}

export type PruneOptions = {
  /** per log type (cutoffAt): batches whose records all lie before the cutoff that covers them may go */
  cutoffs: Cutoffs
  /**
   * The cutoffs verify honours, of every type [default: `cutoffs`]: the start moves on only while each type's newest
   * record pruned (integrity_pruned's `newest`) lies before the cutoff that covers the new start, as verify checks it.
   */
  honoured?: Cutoffs
  dryRun: boolean
  batchSize: number
  signal?: AbortSignal
  /**
   * Only batch rows written before this (UTC, the database's clock at the cleanup's start) may go: a batch of old-dated
   * records written during the cleanup (an import, a replay) holds records its deletes did not see, which must stay chained.
   */
  writtenBefore?: string
}

/** A batch that may be pruned, with its times as its store's cutoffs compare (utcText in PostgreSQL, ISO in MongoDB). */
export type Candidate = {
  seq: string | number
  log_type: string
  count: number
  total: string | number
  hash: Buffer
  max: string
  written: string
}

/** Where a store keeps its chains and where their pruned starts are (PostgreSQL's here, MongoDB's in stores/mongo/prune.ts). */
export type PruneIO = {
  /** every instance with batches */
  instances(): Promise<string[]>
  /** where each pruned chain starts: the last pruned seq, and per log type the newest record time pruned */
  prunedStarts(): Promise<Map<string, {through: number; newest: Record<string, string>}>>
  head(instance: string): Promise<number>
  /** the instance's next `limit` batches after `afterSeq`, oldest first */
  candidates(instance: string, afterSeq: number, limit: number): Promise<Candidate[]>
  /**
   * Removes batches through+1..toSeq (`expected` of them) and records the new start (toSeq, `last`'s hash and total,
   * `newest`); false when another cleanup moved the start first (nothing done then).
   */
  advance(
    instance: string,
    through: number,
    toSeq: number,
    expected: number,
    newest: Record<string, string>,
    last: Candidate,
  ): Promise<boolean>
}

/** Deletes each instance's prunable prefix of batches (see the design above), in bounded steps. */
export async function pruneChainsOf(io: PruneIO, options: PruneOptions): Promise<PruneReport> {
  const report: PruneReport = {
    dryRun: options.dryRun,
    batches: 0,
    records: 0,
    instances: [],
    cutoffs: Object.fromEntries(options.cutoffs.configured),
    notes: [],
    interrupted: false,
  }
  const limit = Math.max(1, Math.min(options.batchSize, 1000))
  const honoured = options.honoured ?? options.cutoffs
  const prunable = (instance: string, b: Candidate) => {
    const cutoff = cutoffAt(options.cutoffs, b.log_type, instance, Number(b.seq))
    return cutoff !== undefined && b.max < cutoff && (options.writtenBefore === undefined || b.written < options.writtenBefore)
  }
  const instances = await io.instances()
  const pruned = await io.prunedStarts()
  for (const instance of instances) {
    if (options.signal?.aborted) {
      report.interrupted = true
      break
    }
    const head = await io.head(instance)
    const start = pruned.get(instance)?.through ?? 0
    let through = start
    const newest = {...pruned.get(instance)?.newest}
    const done: PrunedInstance = {instance, fromSeq: start + 1, throughSeq: start, batches: 0, records: 0}
    for (;;) {
      const page = await io.candidates(instance, through, limit)
      if (page.length && Number(page[0].seq) !== through + 1) {
        // a chain that does not start where it was last pruned is verify's to report, not cleanup's to extend
        report.notes.push(
          `${instance}: its chain starts at batch ${page[0].seq}, not ${through + 1} where it was last pruned: not pruned (verify reports the gap)`,
        )
        break
      }
      const take: Candidate[] = []
      const after = {...newest}
      for (const b of page) {
        const seq = Number(b.seq)
        if (seq !== through + take.length + 1 || seq >= head || !prunable(instance, b)) break
        const next = {...after, [b.log_type]: !after[b.log_type] || b.max > after[b.log_type] ? b.max : after[b.log_type]}
        if (!Object.entries(next).every(([type, at]) => at < (cutoffAt(honoured, type, instance, seq) ?? ''))) break
        Object.assign(after, next)
        take.push(b)
      }
      if (take.length === 0) break
      const last = take.at(-1)!
      const lastSeq = Number(last.seq)
      Object.assign(newest, after)
      if (!options.dryRun && !(await io.advance(instance, through, lastSeq, take.length, {...newest}, last))) {
        report.notes.push(`${instance}: pruned by another cleanup at the same time; left to it`)
        break
      }
      through = lastSeq
      done.throughSeq = lastSeq
      done.batches += take.length
      done.records += take.reduce((n, b) => n + b.count, 0)
      if (take.length < page.length || page.length < limit) break
      if (options.signal?.aborted) {
        report.interrupted = true
        break
      }
    }
    if (done.batches) {
      report.instances.push(done)
      report.batches += done.batches
      report.records += done.records
    }
  }
  return report
}

/** PostgreSQL's batch rows and integrity_pruned, each step of a prune one transaction. */
export const pgPruneIO = (db: Db): PruneIO => ({
  instances: async () => (await db.query(sql.chainInstances())).rows.map((r: {instance: string}) => r.instance),
  prunedStarts: async () =>
    new Map(
      (await db.query(sql.prunedChains())).rows.map((r: {instance: string; through_seq: string; newest: Record<string, string>}) => [
        r.instance,
        {through: Number(r.through_seq), newest: r.newest},
      ]),
    ),
  head: async (instance) => Number((await db.query(sql.chainHead(instance))).rows[0]?.seq ?? 0),
  candidates: async (instance, afterSeq, limit) => (await db.query(sql.pruneCandidates(instance, afterSeq, limit))).rows as Candidate[],
  /** One transaction: the batch rows through `toSeq` go, and integrity_pruned says so. */
  async advance(instance, through, toSeq, expected, newest, last) {
    await db.query('BEGIN')
    try {
      const current = (await db.query(sql.prunedRowForUpdate(instance))).rows[0] as {through_seq: string} | undefined
      const deleted =
        Number(current?.through_seq ?? 0) === through
          ? (await db.query(sql.deleteBatchesThrough(instance, through + 1, toSeq))).rowCount
          : -1
      if (deleted !== expected) {
        await db.query('ROLLBACK')
        return false
      }
      await db.query(sql.upsertPruned({instance, throughSeq: toSeq, hash: last.hash, total: Number(last.total), newest}))
      await db.query('COMMIT')
      return true
    } catch (error) {
      await db.query('ROLLBACK').catch(() => {})
      throw error
    }
  },
})

/** A prune report of nothing pruned, and why. */
export const notPruned = (dryRun: boolean, why: string, cutoffs: Record<string, string> = {}): PruneReport => ({
  dryRun,
  batches: 0,
  records: 0,
  instances: [],
  cutoffs,
  notes: [`not pruned: ${why}`],
  interrupted: false,
})

/**
 * After a cleanup (PostgreSQL's retention.ts, MongoDB's): the chains' batches whose records it (or an earlier one)
 * removed, by the recorded cutoffs (`rows`) verify honours, of the types this cleanup applied (`targets`, `own` giving
 * a target's cutoff as the store's times compare), none after its own. `refused` makes an error of a user that may not
 * prune a reason (the records are gone all the same: the batches stay, and the report says why); others are thrown.
 */
export async function pruneAfterCleanup<T extends {logType: string}>(
  io: PruneIO,
  o: {
    rows: CutoffRow[]
    targets: T[]
    own: (t: T) => string
    retention: Array<{logType: LogType; days: number}>
    configuredDays?: Partial<Record<LogType, number>>
    signingKey?: KeyObject
    store: ChainStore
    now: Date
    dryRun: boolean
    batchSize: number
    signal?: AbortSignal
    writtenBefore: string
    refused: (error: unknown) => string | undefined
  },
): Promise<PruneReport> {
  const bound = o.configuredDays ?? Object.fromEntries(o.retention.map((r) => [r.logType, r.days]))
  const signer = o.signingKey && {publicKey: createPublicKey(o.signingKey), store: o.store}
  const honoured = honouredCutoffs(o.rows, bound, o.now, signer)
  const cutoffs = ownCutoffs(honoured, o.targets, o.own)
  try {
    const {dryRun, batchSize, signal, writtenBefore} = o
    return await pruneChainsOf(io, {cutoffs, honoured, dryRun, batchSize, signal, writtenBefore})
  } catch (error) {
    const why = o.refused(error)
    if (why === undefined) throw error
    return notPruned(o.dryRun, why, Object.fromEntries(cutoffs.configured))
  }
}

/**
 * The cutoffs a cleanup prunes the chains by: those honoured (as verify honours them) of the types it applied, none
 * after its own cutoff (what it just removed). `own` gives a target's cutoff as its store's times compare.
 */
function ownCutoffs<T extends {logType: string}>(honoured: Cutoffs, targets: T[], own: (t: T) => string): Cutoffs {
  const cutoffs: Cutoffs = {configured: new Map(), signed: []}
  const earlier = (a: string, b: string) => (a < b ? a : b)
  for (const t of targets) {
    const recorded = honoured.configured.get(t.logType)
    if (recorded) cutoffs.configured.set(t.logType, earlier(recorded, own(t)))
    for (const x of honoured.signed) if (x.type === t.logType) cutoffs.signed.push({...x, cutoff: earlier(x.cutoff, own(t))})
  }
  return cutoffs
}
