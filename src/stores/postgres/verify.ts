import type {KeyObject} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {LOG_TYPE, LOG_TYPES, type LogType} from '../log-types.js'
import type {Db} from './db.js'
import {type ChainStore, ZERO_HASH, chainHash, recordsHashOf, signedBy} from './integrity.js'
import * as sql from './sql/integrity.js'
import {type BadRetention, type CutoffRow, type Cutoffs, cutoffAt, honouredCutoffs, newestCutoffAt} from './prune.js'

/**
 * Recomputes the integrity chains (integrity.ts) from what is stored: for each instance with batches since
 * `since`, every batch's hashes and link to the one before, every chained record's hash against its row,
 * missing seqs, the signed digests and whether the chain still reaches the last one; and the rows since
 * `since` that no batch chained. A chain's prefix that cleanup pruned (prune.ts, integrity_pruned) is no gap when
 * the retention honoured here covers it: the first remaining batch links to the recorded hash, and the digests
 * whose head was pruned are checked against that retention. Reads only (the reader role suffices).
 */
export type RecordRef = {table: string; id: string; createdAt: string; seq: number}
export type InstanceReport = {
  instance: string
  firstSeq: number | null
  lastSeq: number | null
  batches: number
  records: number
  changed: RecordRef[]
  deleted: RecordRef[]
  /** chained records older than their type's retention cutoff, gone as cleanup said */
  removedByRetention: number
  /** where the chain starts after cleanup pruned its oldest batch rows (integrity_pruned, honoured): those seqs are no gap */
  pruned: {throughSeq: number; records: number; prunedAt: string} | null
  /** missing seqs, as ranges */
  gaps: Array<{from: number; to: number}>
  /** batch rows whose own hashes or link do not hold */
  badBatches: Array<{seq: number; why: string}>
  /** prunedChecked: signed digests whose head was pruned, checked against the retention verify honours */
  digests: {checked: number; lastSignedSeq: number | null; unsignedTail: number; prunedChecked: number}
  badDigests: Array<{seq: number; source: 'database' | 'file'; why: string}>
  /** true when the head could not be proven (no key, no digest): a cut tail would go unseen */
  headUnproven: boolean
  /**
   * With a public key (digests expected): batches no valid digest signs although they should be (the instance has
   * no valid digest at all, or they are older than 2 × the digest interval): a failure, as an invented instance or a
   * forged tail looks.
   */
  unsigned: {from: number; to: number; why: string} | null
  /**
   * Batches the writer found in the database beyond the last head it had signed, and continued from (its signed
   * digest's adoptedFrom): not signed by whoever wrote them. A run that was killed leaves its last batches so; batches
   * an owner added would look the same. A warning: check them.
   */
  adopted: Array<{from: number; to: number}>
}
export type {BadRetention}
/** A chain's pruned start (integrity_pruned) verify does not honour: what it says was pruned is newer than the retention it honours. */
export type BadPruning = {instance: string; throughSeq: number; why: string}
export type VerifyReport = {
  since: string
  ok: boolean
  instances: InstanceReport[]
  inserted: Array<{table: string; id: string; createdAt: string}>
  /** set when more inserted rows exist than listed */
  insertedTruncated: boolean
  /** retention cutoffs that are newer than the configured retention: they would hide deletions */
  badRetention: BadRetention[]
  /** pruned chain starts that are not honoured: the batches they say were pruned were not all past retention */
  badPruning: BadPruning[]
  warnings: string[]
}

export type VerifyOptions = {
  since: Date
  publicKey?: KeyObject
  digestFile?: string
  pageSize?: number
  listLimit?: number
  /** integrityDigestIntervalMs: batches older than twice this after the last valid digest fail (with a public key) */
  digestIntervalMs?: number
  /** each log type's configured retention (days): a recorded cutoff newer than it allows is not honoured */
  retentionDays?: Partial<Record<LogType, number>>
  now?: Date
}

export type BatchRow = {
  seq: string | number
  log_type: string
  count: number
  total: string | number
  min: string
  max: string
  record_hashes: Buffer
  records_hash: Buffer
  prev_hash: Buffer
  hash: Buffer
  written_ms: number
  /** keysHashOf the batch's ids and created_ats as stored (chainHash v2) */
  keys_hash: Buffer
}

/**
 * Where the chains are read from: PostgreSQL's tables (pgChainSource) or MongoDB's collections
 * (stores/mongo/verify.ts), in the shapes of PostgreSQL's rows, so one walk checks both stores.
 */
export type ChainSource = {
  store: ChainStore
  /** The table (collection) of a log type, as reports name it. */
  tableOf(type: LogType): string
  /** The cutoffs records were removed by (cleanup's, recorded; MongoDB's TTL horizon as of `now`); `warn` says what could not be read. */
  retentionCutoffs(now: Date, warn: (text: string) => void): Promise<CutoffRow[]>
  instancesSince(since: Date): Promise<Array<{instance: string; first: string | number | null; last: string | number | null}>>
  batchesFrom(instance: string, fromSeq: number, limit: number): Promise<BatchRow[]>
  recordAnomalies(
    type: LogType,
    instance: string,
    from: number,
    to: number,
  ): Promise<Array<{seq: string | number; id: string; at: string; missing: boolean}>>
  digestsOf(instance: string): Promise<Array<{seq: string | number; body: string; signature: string | null}>>
  unchained(type: LogType, since: Date, limit: number): Promise<Array<{id: string; at: string}>>
  /** The last seq of each of these instances (those with batches). */
  headsOf(instances: string[]): Promise<Array<{instance: string; head: string | number}>>
  /** Where cleanup's pruning left each chain's start (integrity_pruned); 'absent' where nothing prunes (no table, MongoDB). */
  prunedStarts(): Promise<PrunedRow[] | 'absent' | 'unreadable'>
}

export type PrunedRow = {instance: string; through_seq: string; hash: Buffer; total: string; newest: unknown; pruned_at: string}

export const pgChainSource = (db: Db): ChainSource => ({
  store: 'postgres',
  tableOf: (type) => LOG_TYPE[type].table,
  retentionCutoffs: async () => (await db.query(sql.retentionCutoffs())).rows,
  instancesSince: async (since) => (await db.query(sql.instancesSince(since))).rows,
  batchesFrom: async (instance, fromSeq, limit) => (await db.query(sql.batchesFrom(instance, fromSeq, limit))).rows,
  recordAnomalies: async (type, instance, from, to) => (await db.query(sql.recordAnomalies(type, instance, from, to))).rows,
  digestsOf: async (instance) => (await db.query(sql.digestsOf(instance))).rows,
  unchained: async (type, since, limit) => (await db.query(sql.unchained(type, since, limit))).rows,
  headsOf: async (instances) => (await db.query(sql.instancesWithBatches(instances))).rows,
  async prunedStarts() {
    const ready = (await db.query(sql.prunedReadiness())).rows[0] as {exists: boolean; readable: boolean}
    if (!ready.exists) return 'absent'
    if (!ready.readable) return 'unreadable'
    return (await db.query(sql.prunedChains())).rows
  },
})

type FileDigest = {body: string; signature: string | null}

/** The digests of `file` that are `store`'s (a digest without a mark is PostgreSQL's); lines that do not parse are kept (reported later). */
function readDigestFile(file: string | undefined, warnings: string[], store: ChainStore = 'postgres'): FileDigest[] {
  if (!file) return []
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      warnings.push(`cannot read the digest file ${file}: ${(error as Error).message}`)
    return []
  }
  const out: FileDigest[] = []
  for (const [i, line] of text.split('\n').entries()) {
    if (!line.trim()) continue
    try {
      const d = JSON.parse(line) as FileDigest
      if (typeof d.body === 'string') {
        if (storeOf(d.body) === store) out.push({body: d.body, signature: typeof d.signature === 'string' ? d.signature : null})
      } else throw new Error('no body')
    } catch {
      warnings.push(`the digest file ${file} has a line that is not a digest (line ${i + 1})`)
    }
  }
  return out
}

const storeOf = (body: string): ChainStore | undefined => {
  try {
    return (JSON.parse(body) as {store?: ChainStore}).store ?? 'postgres'
  } catch {
    return 'postgres' // reported as a bad digest where its instance is known
  }
}

type DigestBody = {
  v: number
  instance: string
  seq: number
  hash: string
  total: number
  adoptedFrom?: {seq: number; hash: string; lastSigned: number}
}

export const verifyChains = (db: Db, options: VerifyOptions): Promise<VerifyReport> => verifyChainsOf(pgChainSource(db), options)

export async function verifyChainsOf(source: ChainSource, options: VerifyOptions): Promise<VerifyReport> {
  const pageSize = options.pageSize ?? 1000
  const listLimit = options.listLimit ?? 1000
  const warnings: string[] = []
  const now = options.now ?? new Date()
  // each type's latest cutoff that its configured retention allows; a newer one is flagged, not honoured (prune.ts)
  const recorded = await source.retentionCutoffs(now, (text) => warnings.push(text))
  const signer = options.publicKey && {publicKey: options.publicKey, store: source.store}
  const {bad: badRetention, notes, ...cutoffs} = honouredCutoffs(recorded, options.retentionDays, now, signer)
  warnings.push(...notes)
  const {pruned, badPruning} = await prunedChains(source, cutoffs, warnings)
  const fileDigests = readDigestFile(options.digestFile, warnings, source.store)
  const rows = await source.instancesSince(options.since)
  const names = new Set(rows.map((r) => r.instance))
  // an instance whose batches are all gone but whose digests are in the file; or whose batches all lie before `since`
  // (a pruned chain's head of old records, say): its head is read, so that a digest beyond it is still a cut tail
  const fromFile = new Set<string>()
  for (const d of fileDigests) {
    try {
      const body = JSON.parse(d.body) as DigestBody
      if (typeof body.instance === 'string' && !names.has(body.instance)) fromFile.add(body.instance)
    } catch {
      // reported as a bad digest below, when its instance is known
    }
  }
  const heads = new Map<string, string | number>(
    fromFile.size ? (await source.headsOf([...fromFile])).map((r) => [r.instance, r.head]) : [],
  )
  for (const instance of fromFile) {
    names.add(instance)
    rows.push({instance, first: null, last: heads.get(instance) ?? null})
  }
  const instances: InstanceReport[] = []
  for (const row of rows) {
    const report: InstanceReport = {
      instance: row.instance,
      firstSeq: row.first === null ? null : Number(row.first),
      lastSeq: row.last === null ? null : Number(row.last),
      batches: 0,
      records: 0,
      changed: [],
      deleted: [],
      removedByRetention: 0,
      pruned: null,
      gaps: [],
      badBatches: [],
      digests: {checked: 0, lastSignedSeq: null, unsignedTail: 0, prunedChecked: 0},
      badDigests: [],
      headUnproven: false,
      unsigned: null,
      adopted: [],
    }
    instances.push(report)
    const hashes = new Map<number, string>() // seq → hash of the batches walked (to check the digests against)
    const writtenMs = new Map<number, number>() // seq → when the batch row was written
    const start = pruned.get(row.instance)
    if (start) report.pruned = {throughSeq: start.through, records: start.total, prunedAt: start.prunedAt}
    if (report.firstSeq !== null && report.lastSeq !== null) {
      // the batch before the first is read too, for the first one's link
      let expected = Math.max(1, report.firstSeq - 1)
      let previous: {seq: number; hash: Buffer; total: number; pruned?: boolean} | undefined =
        expected === 1 && report.firstSeq === 1 ? {seq: 0, hash: ZERO_HASH, total: 0} : undefined
      const types = new Set<LogType>()
      for (;;) {
        const page = await source.batchesFrom(row.instance, expected, pageSize)
        if (page.length === 0) break
        for (const b of page) {
          const seq = Number(b.seq)
          const total = Number(b.total)
          if (seq > expected) {
            // the seqs a recorded prune justifies are no gap, and the first batch after them links to the pruned one's hash
            const from = start && expected <= start.through ? start.through + 1 : expected
            if (seq > from) report.gaps.push({from, to: seq - 1})
            previous =
              start && seq - 1 === start.through ? {seq: start.through, hash: start.hash, total: start.total, pruned: true} : undefined
          }
          if (seq >= report.firstSeq) {
            report.batches++
            report.records += b.count
          }
          if ((LOG_TYPES as readonly string[]).includes(b.log_type)) types.add(b.log_type as LogType)
          const why: string[] = []
          const recordsHash = recordsHashOf(b.record_hashes)
          if (b.record_hashes.length !== b.count * 32)
            why.push(`it holds ${b.record_hashes.length / 32} record hashes for ${b.count} records`)
          if (!recordsHash.equals(b.records_hash)) why.push('its records_hash is not the hash of its record hashes')
          const fields = {
            instance: row.instance,
            seq,
            logType: b.log_type,
            count: b.count,
            total,
            min: b.min,
            max: b.max,
            prevHash: b.prev_hash,
            recordsHash: b.records_hash,
          }
          // v2 (the records' ids and created_ats included) or v1 (batches written before it): see chainHash
          if (!chainHash({...fields, keysHash: b.keys_hash}).equals(b.hash) && !chainHash(fields).equals(b.hash))
            why.push('its hash is not the hash of its fields (its records, their ids and times)')
          if (previous && previous.seq === seq - 1) {
            const as = previous.pruned ? ' (as integrity_pruned recorded it)' : ''
            if (!previous.hash.equals(b.prev_hash)) why.push(`its prev_hash is not batch ${seq - 1}'s hash${as}`)
            if (previous.total + b.count !== total) why.push(`its total is not batch ${seq - 1}'s total${as} plus its count`)
          }
          if (why.length && seq >= report.firstSeq) report.badBatches.push({seq, why: why.join('; ')})
          hashes.set(seq, b.hash.toString('hex'))
          writtenMs.set(seq, Number(b.written_ms))
          previous = {seq, hash: b.hash, total}
          expected = seq + 1
        }
        if (page.length < pageSize) break
      }
      report.lastSeq = expected - 1
      // (a missing batch just before the first one in range is a gap too: the walk started there)
      report.gaps = report.gaps.filter((g) => g.to >= report.firstSeq! - 1)

      for (const type of types) {
        const anomalies = await source.recordAnomalies(type, row.instance, report.firstSeq, report.lastSeq)
        const table = source.tableOf(type)
        for (const a of anomalies) {
          const ref: RecordRef = {table, id: a.id, createdAt: a.at, seq: Number(a.seq)}
          const cutoff = cutoffAt(cutoffs, type, row.instance, ref.seq)
          if (!a.missing) report.changed.push(ref)
          else if (cutoff && a.at < cutoff) report.removedByRetention++
          else report.deleted.push(ref)
        }
      }
    }

    // the digests: the database's and the file's, each signature checked and each head found in the chain
    const fromDb = (await source.digestsOf(row.instance)).map((d) => ({
      seq: Number(d.seq),
      body: d.body,
      signature: d.signature,
      source: 'database' as const,
    }))
    const dbSeqs = new Set(fromDb.map((d) => d.seq))
    const fromFile = fileDigests.flatMap((d) => {
      try {
        const body = JSON.parse(d.body) as DigestBody
        return body.instance === row.instance
          ? [{seq: Number(body.seq), body: d.body, signature: d.signature, source: 'file' as const}]
          : []
      } catch {
        return []
      }
    })
    for (const d of fromFile)
      if (!dbSeqs.has(d.seq)) report.badDigests.push({seq: d.seq, source: 'file', why: 'the digest file has it, the database does not'})
    let lastSigned: number | null = null
    for (const d of [...fromDb, ...fromFile]) {
      if (start && d.seq <= start.through) {
        // a signed head that cleanup pruned: what it signs must be older than the retention verify honours
        const why = prunedDigestProblem(row.instance, d, start, options, cutoffs)
        if (why !== undefined) report.digests.prunedChecked++
        if (why) report.badDigests.push({seq: d.seq, source: d.source, why})
        continue
      }
      if (report.firstSeq !== null && d.seq < report.firstSeq - 1) continue // before the range
      report.digests.checked++
      if (!options.publicKey) continue
      if (!d.signature) {
        report.badDigests.push({seq: d.seq, source: d.source, why: 'unsigned'})
        continue
      }
      if (!signedBy(d.body, d.signature, options.publicKey)) {
        report.badDigests.push({
          seq: d.seq,
          source: d.source,
          why: 'bad signature (its body or signature was changed, or another key signed it)',
        })
        continue
      }
      let body: DigestBody
      try {
        body = JSON.parse(d.body) as DigestBody
      } catch {
        report.badDigests.push({seq: d.seq, source: d.source, why: 'its body is not JSON'})
        continue
      }
      if (body.instance !== row.instance || Number(body.seq) !== d.seq) {
        report.badDigests.push({seq: d.seq, source: d.source, why: `it signs instance ${body.instance} seq ${body.seq}, not this row's`})
        continue
      }
      const chained = hashes.get(d.seq)
      if (chained === undefined) {
        if (report.lastSeq === null || d.seq > report.lastSeq)
          report.badDigests.push({
            seq: d.seq,
            source: d.source,
            why: `the chain ends at ${report.lastSeq ?? 'nothing'}: batches up to the signed head ${d.seq} are gone`,
          })
        // else: inside a gap, already reported
        continue
      }
      if (chained !== body.hash) {
        report.badDigests.push({seq: d.seq, source: d.source, why: `batch ${d.seq}'s hash is not the signed one: the chain was rewritten`})
        continue
      }
      if (lastSigned === null || d.seq > lastSigned) lastSigned = d.seq
      const a = body.adoptedFrom
      if (a && Number.isInteger(a.seq) && Number.isInteger(a.lastSigned) && a.seq > a.lastSigned && d.source === 'database')
        report.adopted.push({from: a.lastSigned + 1, to: a.seq})
    }
    report.digests.lastSignedSeq = lastSigned
    if (start && options.publicKey) {
      const why = prunedBoundaryProblem(row.instance, [...fromDb, ...fromFile], start, options.publicKey, cutoffs)
      if (why) report.badDigests.push(why)
    }
    if (report.lastSeq !== null && report.firstSeq !== null)
      report.digests.unsignedTail = report.lastSeq - (lastSigned ?? (report.firstSeq ?? 1) - 1)
    report.headUnproven = !options.publicKey || lastSigned === null
    // with a public key digests are expected: batches no valid digest signs are a failure when the instance has none
    // at all (an instance the owner invented has none), or when they are older than twice the digest interval
    if (options.publicKey && report.lastSeq !== null && report.firstSeq !== null) {
      const from = lastSigned === null ? report.firstSeq : lastSigned + 1
      if (from <= report.lastSeq) {
        if (lastSigned === null)
          report.unsigned = {from, to: report.lastSeq, why: 'unsigned batches: no valid signed digest of this instance covers its chain'}
        else if (options.digestIntervalMs !== undefined) {
          let oldest = Infinity
          for (let seq = from; seq <= report.lastSeq; seq++) oldest = Math.min(oldest, writtenMs.get(seq) ?? Infinity)
          if (now.getTime() - oldest > 2 * options.digestIntervalMs)
            report.unsigned = {
              from,
              to: report.lastSeq,
              why: `unsigned batches: written more than twice the digest interval (${options.digestIntervalMs} ms) after the last signed digest (seq ${lastSigned}) and signed by none`,
            }
        }
      }
    }
  }

  // rows no batch chained, in every table
  const inserted: VerifyReport['inserted'] = []
  let insertedTruncated = false
  for (const type of LOG_TYPES) {
    const left = listLimit - inserted.length
    if (left <= 0) {
      insertedTruncated = true
      break
    }
    const found = await source.unchained(type, options.since, left + 1)
    if (found.length > left) insertedTruncated = true
    for (const r of found.slice(0, left)) inserted.push({table: source.tableOf(type), id: r.id, createdAt: r.at})
  }

  if (!options.publicKey)
    warnings.push('no public key (--public-key, or integrityKey configured): digests were not checked, the chain heads are unproven')
  for (const r of instances) {
    for (const a of r.adopted)
      warnings.push(
        `${r.instance}: batches ${a.from}..${a.to} were found in the database by the writer beyond the last head it had signed, ` +
          'and continued from: no digest of their writer signs them (a run that was killed leaves them so; so would batches someone added)',
      )
    if (r.unsigned || r.firstSeq === null) continue // a failure, reported as such; or no batch in the range
    if (options.publicKey && r.digests.lastSignedSeq === null && r.lastSeq !== null)
      warnings.push(`${r.instance}: no valid signed digest covers its chain: the head is unproven (a cut tail would go unseen)`)
    // (without a public key no digest is checked, so none counts as signed: the warning above says so once)
    else if (options.publicKey && r.digests.unsignedTail > 0)
      warnings.push(
        `${r.instance}: ${r.digests.unsignedTail} batch(es) after the last signed digest (seq ${r.digests.lastSignedSeq}): signed at the next digest`,
      )
  }
  const ok =
    inserted.length === 0 &&
    badRetention.length === 0 &&
    badPruning.length === 0 &&
    instances.every(
      (r) => !r.changed.length && !r.deleted.length && !r.gaps.length && !r.badBatches.length && !r.badDigests.length && !r.unsigned,
    )
  return {since: options.since.toISOString(), ok, instances, inserted, insertedTruncated, badRetention, badPruning, warnings}
}

type PrunedStart = {through: number; hash: Buffer; total: number; prunedAt: string}

/**
 * Where each chain starts after cleanup pruned it (integrity_pruned, prune.ts), when what it says was pruned lies
 * before the retention cutoffs verify honours; an entry that does not is reported (badPruning) and not honoured, so
 * the missing batches are gaps again. Without the table (migration 0007) or the right to read it: no pruned starts.
 */
async function prunedChains(
  source: ChainSource,
  cutoffs: Cutoffs,
  warnings: string[],
): Promise<{pruned: Map<string, PrunedStart>; badPruning: BadPruning[]}> {
  const pruned = new Map<string, PrunedStart>()
  const badPruning: BadPruning[] = []
  const rows = await source.prunedStarts()
  if (rows === 'absent') return {pruned, badPruning}
  if (rows === 'unreadable') {
    warnings.push('cannot read integrity_pruned (run `audit-logs setup-db`, which grants it): chains cleanup pruned show as gaps')
    return {pruned, badPruning}
  }
  for (const r of rows) {
    const why: string[] = []
    const newest = r.newest && typeof r.newest === 'object' ? Object.entries(r.newest) : []
    if (newest.length === 0) why.push('it names no log type')
    for (const [type, at] of newest) {
      // the pruned batches are those up to through_seq: a signed cutoff covers them if its heads reach it
      const cutoff = cutoffAt(cutoffs, type, r.instance, Number(r.through_seq))
      if (typeof at !== 'string') why.push(`its ${type} time is not a time`)
      else if (!cutoff) why.push(`its ${type} batches (records up to ${at}) were pruned, but no ${type} retention cutoff is honoured`)
      else if (!(at < cutoff)) why.push(`its ${type} batches hold records up to ${at}, not before the ${type} cutoff honoured (${cutoff})`)
    }
    if (why.length)
      badPruning.push({
        instance: r.instance,
        throughSeq: Number(r.through_seq),
        why: `${why.join('; ')}: not honoured, it would hide deletions`,
      })
    else pruned.set(r.instance, {through: Number(r.through_seq), hash: r.hash, total: Number(r.total), prunedAt: r.pruned_at})
  }
  return {pruned, badPruning}
}

/**
 * A digest whose head cleanup pruned: undefined when not checked (no public key, or signed before --since), null when
 * it holds, else why not: its signature, its head's hash against the one integrity_pruned recorded, and the newest
 * record of each log type it signs (`newest`) against that type's cutoff verify honours; a digest from before
 * `newest` existed: its newest record (`to`) against the newest cutoff (batches of every type it signs were pruned, so
 * each lay before its own type's cutoff). Deleting recent batches and recording them as pruned shows here.
 */
function prunedDigestProblem(
  instance: string,
  d: {seq: number; body: string; signature: string | null},
  start: PrunedStart,
  options: VerifyOptions,
  cutoffs: Cutoffs,
): string | null | undefined {
  if (!options.publicKey) return undefined
  let body: DigestBody & {at?: unknown; to?: unknown; newest?: unknown}
  try {
    body = JSON.parse(d.body) as DigestBody & {at?: unknown; to?: unknown; newest?: unknown}
  } catch {
    return 'its body is not JSON'
  }
  // the signature first: an unsigned or forged digest's own `at` must not excuse it from the checks
  if (!d.signature) return 'unsigned'
  if (!signedBy(d.body, d.signature, options.publicKey))
    return 'bad signature (its body or signature was changed, or another key signed it)'
  if (body.instance !== instance || Number(body.seq) !== d.seq) return `it signs instance ${body.instance} seq ${body.seq}, not this row's`
  if (typeof body.at === 'string' && Date.parse(body.at) < options.since.getTime()) return undefined
  if (d.seq === start.through && body.hash !== start.hash.toString('hex'))
    return `its head, batch ${d.seq}, was pruned, but integrity_pruned recorded another hash for it: the chain was rewritten`
  // per log type where the digest says (`newest`, since it exists), else its newest record against the newest cutoff
  const newest = body.newest && typeof body.newest === 'object' ? Object.entries(body.newest as Record<string, unknown>) : []
  for (const [type, at] of newest) {
    const cutoff = cutoffAt(cutoffs, type, instance, d.seq)
    if (typeof at === 'string' && !(cutoff && at < cutoff))
      return (
        `its head, batch ${d.seq}, was pruned, but it signs ${type} records up to ${at}, newer than the ${type} retention ` +
        `verify honours (cutoff ${cutoff ?? 'none'}): batches were deleted that retention did not remove`
      )
  }
  const newestCutoff = newestCutoffAt(cutoffs, instance, d.seq)
  if (!newest.length && typeof body.to === 'string' && !(newestCutoff && body.to < newestCutoff))
    return (
      `its head, batch ${d.seq}, was pruned, but it signs records up to ${body.to}, newer than the retention verify honours ` +
      `(newest cutoff ${newestCutoff ?? 'none'}): batches were deleted that retention did not remove`
    )
  return null
}

/**
 * Where a pruned range ends between two digests: the first valid digest after it signs the pruned batches since the
 * digest before them together with the remaining ones (its span). Pruned batches of a type held records older than
 * that type's cutoff, so that digest's oldest record of some type (`oldest`; before it existed, `from` against the
 * newest cutoff) must be older than the type's cutoff; when none is, the batches pruned after the last digest were
 * recent: deleted, not removed by retention. Skipped where the range ends on a digest, or the digest after it adopted
 * batches it did not chain (adoptedFrom: its span misses them).
 */
function prunedBoundaryProblem(
  instance: string,
  digests: Array<{seq: number; body: string; signature: string | null; source: 'database' | 'file'}>,
  start: PrunedStart,
  publicKey: KeyObject,
  cutoffs: Cutoffs,
): {seq: number; source: 'database' | 'file'; why: string} | undefined {
  // only digests that the key signed count: a row the owner added (unsigned, or signed by another key) proves nothing
  const signsThis = (d: {seq: number; body: string}) => {
    try {
      const b = JSON.parse(d.body) as DigestBody
      return b.instance === instance && Number(b.seq) === d.seq
    } catch {
      return false
    }
  }
  const valid = digests.filter((d) => d.signature && signedBy(d.body, d.signature, publicKey) && signsThis(d))
  if (valid.some((d) => d.seq === start.through)) return undefined
  const before = Math.max(0, ...valid.filter((d) => d.seq < start.through).map((d) => d.seq))
  const after = valid.filter((d) => d.seq > start.through).sort((a, b) => a.seq - b.seq)
  for (const d of after) {
    let body: DigestBody & {from?: unknown; oldest?: unknown}
    try {
      body = JSON.parse(d.body) as DigestBody & {from?: unknown; oldest?: unknown}
    } catch {
      continue
    }
    if (body.instance !== instance || body.adoptedFrom) return undefined
    const oldest = body.oldest && typeof body.oldest === 'object' ? Object.entries(body.oldest as Record<string, unknown>) : []
    // the digest's span reaches d.seq: only a cutoff that covers all of it (the one at d.seq) may call its oldest old
    const cutoff = (type: string) => cutoffAt(cutoffs, type, instance, d.seq)
    const newestCutoff = newestCutoffAt(cutoffs, instance, d.seq)
    const old = oldest.length
      ? oldest.some(([type, at]) => typeof at === 'string' && cutoff(type) !== undefined && at < cutoff(type)!)
      : typeof body.from !== 'string' || (newestCutoff !== undefined && body.from < newestCutoff)
    if (old) return undefined
    return {
      seq: d.seq,
      source: d.source,
      why:
        `batches ${before + 1}..${start.through} were recorded as pruned, but this digest, which signs them with the batches after ` +
        `them, holds no record older than its type's retention cutoff: batches were deleted that retention did not remove`,
    }
  }
  return undefined
}
