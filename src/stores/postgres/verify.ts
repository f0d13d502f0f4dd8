import {type KeyObject, verify as verifySignature} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {LOG_TYPE, LOG_TYPES, type LogType} from '../log-types.js'
import type {Db} from './db.js'
import {type ChainStore, ZERO_HASH, chainHash, recordsHashOf} from './integrity.js'
import * as sql from './sql/integrity.js'

/**
 * Recomputes the integrity chains (integrity.ts) from what is stored: for each instance with batches since
 * `since`, every batch's hashes and link to the one before, every chained record's hash against its row,
 * missing seqs, the signed digests and whether the chain still reaches the last one; and the rows since
 * `since` that no batch chained. Reads only (the reader role suffices).
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
  /** missing seqs, as ranges */
  gaps: Array<{from: number; to: number}>
  /** batch rows whose own hashes or link do not hold */
  badBatches: Array<{seq: number; why: string}>
  digests: {checked: number; lastSignedSeq: number | null; unsignedTail: number}
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
/** A recorded retention cutoff verify does not honour: newer than the configured retention allows. */
export type BadRetention = {logType: string; cutoff: string; writtenAt: string; why: string}
export type VerifyReport = {
  since: string
  ok: boolean
  instances: InstanceReport[]
  inserted: Array<{table: string; id: string; createdAt: string}>
  /** set when more inserted rows exist than listed */
  insertedTruncated: boolean
  /** retention cutoffs that are newer than the configured retention: they would hide deletions */
  badRetention: BadRetention[]
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

/** A day's slack on the retention bound (cleanup runs late, clocks differ). */
const RETENTION_SLACK_MS = 86_400_000

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
}

/**
 * Where the chains are read from: PostgreSQL's tables (pgChainSource) or MongoDB's collections
 * (stores/mongo/verify.ts), in the shapes of PostgreSQL's rows, so one walk checks both stores.
 */
export type ChainSource = {
  store: ChainStore
  /** The table (collection) of a log type, as reports name it. */
  tableOf(type: LogType): string
  retentionCutoffs(): Promise<Array<{log_type: string; cutoff: string; written_at: string}>>
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
}

export const pgChainSource = (db: Db): ChainSource => ({
  store: 'postgres',
  tableOf: (type) => LOG_TYPE[type].table,
  retentionCutoffs: async () => (await db.query(sql.retentionCutoffs())).rows,
  instancesSince: async (since) => (await db.query(sql.instancesSince(since))).rows,
  batchesFrom: async (instance, fromSeq, limit) => (await db.query(sql.batchesFrom(instance, fromSeq, limit))).rows,
  recordAnomalies: async (type, instance, from, to) => (await db.query(sql.recordAnomalies(type, instance, from, to))).rows,
  digestsOf: async (instance) => (await db.query(sql.digestsOf(instance))).rows,
  unchained: async (type, since, limit) => (await db.query(sql.unchained(type, since, limit))).rows,
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
  // each type's latest cutoff that its configured retention allows; a newer one is flagged, not honoured:
  // a cutoff is the time of the cleanup minus the retention, so one after (when it was recorded, at the latest now) − retention hides deletions
  const cutoffs = new Map<string, string>()
  const badRetention: BadRetention[] = []
  for (const r of await source.retentionCutoffs()) {
    const days = options.retentionDays?.[r.log_type as LogType]
    if (days !== undefined) {
      const recorded = Math.min(Date.parse(r.written_at), now.getTime())
      const bound = recorded - days * 86_400_000 + RETENTION_SLACK_MS
      if (Date.parse(r.cutoff) > bound) {
        badRetention.push({
          logType: r.log_type,
          cutoff: r.cutoff,
          writtenAt: r.written_at,
          why: `newer than ${r.log_type} records are kept (${days} days before it was recorded, with a day's slack): not honoured, it would hide deletions`,
        })
        continue
      }
    }
    if (!cutoffs.has(r.log_type) || r.cutoff > cutoffs.get(r.log_type)!) cutoffs.set(r.log_type, r.cutoff)
  }
  const fileDigests = readDigestFile(options.digestFile, warnings, source.store)
  const rows = await source.instancesSince(options.since)
  const names = new Set(rows.map((r) => r.instance))
  // an instance whose batches are all gone but whose digests are in the file
  for (const d of fileDigests) {
    try {
      const body = JSON.parse(d.body) as DigestBody
      if (typeof body.instance === 'string' && !names.has(body.instance)) {
        names.add(body.instance)
        rows.push({instance: body.instance, first: null, last: null})
      }
    } catch {
      // reported as a bad digest below, when its instance is known
    }
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
      gaps: [],
      badBatches: [],
      digests: {checked: 0, lastSignedSeq: null, unsignedTail: 0},
      badDigests: [],
      headUnproven: false,
      unsigned: null,
      adopted: [],
    }
    instances.push(report)
    const hashes = new Map<number, string>() // seq → hash of the batches walked (to check the digests against)
    const writtenMs = new Map<number, number>() // seq → when the batch row was written
    if (report.firstSeq !== null && report.lastSeq !== null) {
      // the batch before the first is read too, for the first one's link
      let expected = Math.max(1, report.firstSeq - 1)
      let previous: {seq: number; hash: Buffer; total: number} | undefined =
        expected === 1 && report.firstSeq === 1 ? {seq: 0, hash: ZERO_HASH, total: 0} : undefined
      const types = new Set<LogType>()
      for (;;) {
        const page = await source.batchesFrom(row.instance, expected, pageSize)
        if (page.length === 0) break
        for (const b of page) {
          const seq = Number(b.seq)
          const total = Number(b.total)
          if (seq > expected) {
            report.gaps.push({from: expected, to: seq - 1})
            previous = undefined
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
          const hash = chainHash({
            instance: row.instance,
            seq,
            logType: b.log_type,
            count: b.count,
            total,
            min: b.min,
            max: b.max,
            prevHash: b.prev_hash,
            recordsHash: b.records_hash,
          })
          if (!hash.equals(b.hash)) why.push('its hash is not the hash of its fields')
          if (previous && previous.seq === seq - 1) {
            if (!previous.hash.equals(b.prev_hash)) why.push(`its prev_hash is not batch ${seq - 1}'s hash`)
            if (previous.total + b.count !== total) why.push(`its total is not batch ${seq - 1}'s total plus its count`)
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
        const cutoff = cutoffs.get(type)
        for (const a of anomalies) {
          const ref: RecordRef = {table, id: a.id, createdAt: a.at, seq: Number(a.seq)}
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
      if (report.firstSeq !== null && d.seq < report.firstSeq - 1) continue // before the range
      report.digests.checked++
      if (!options.publicKey) continue
      if (!d.signature) {
        report.badDigests.push({seq: d.seq, source: d.source, why: 'unsigned'})
        continue
      }
      let good: boolean
      try {
        good = verifySignature(null, Buffer.from(d.body), options.publicKey, Buffer.from(d.signature, 'base64'))
      } catch {
        good = false
      }
      if (!good) {
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
    if (report.lastSeq !== null) report.digests.unsignedTail = report.lastSeq - (lastSigned ?? (report.firstSeq ?? 1) - 1)
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
    if (r.unsigned) continue // a failure, reported as such
    if (options.publicKey && r.digests.lastSignedSeq === null && r.lastSeq !== null)
      warnings.push(`${r.instance}: no valid signed digest covers its chain: the head is unproven (a cut tail would go unseen)`)
    else if (r.digests.unsignedTail > 0)
      warnings.push(
        `${r.instance}: ${r.digests.unsignedTail} batch(es) after the last signed digest (seq ${r.digests.lastSignedSeq}): signed at the next digest`,
      )
  }
  const ok =
    inserted.length === 0 &&
    badRetention.length === 0 &&
    instances.every(
      (r) => !r.changed.length && !r.deleted.length && !r.gaps.length && !r.badBatches.length && !r.badDigests.length && !r.unsigned,
    )
  return {since: options.since.toISOString(), ok, instances, inserted, insertedTruncated, badRetention, warnings}
}
