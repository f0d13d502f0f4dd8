/**
 * Tamper evidence for the PostgreSQL store: the writer role can only insert, but whoever owns the database
 * could change history silently. As CloudTrail's log file integrity validation does, each instance keeps a
 * hash chain of what it wrote and signs the chain's head now and then with a key the database never sees.
 *
 * Design
 * - One chain per instance (config `instance`, default the host name): every batch the writer commits
 *   inserts, in the same transaction as its records, an `integrity_batches` row: instance, seq (1, 2, 3…
 *   per instance, no gaps: the primary key (instance, seq) refuses a fork), the log type, the ids and
 *   created_at of the batch's records (a replayed batch that inserted nothing is not chained again; one that
 *   inserted some is chained whole: the writer may not SELECT, so it cannot tell which rows were there),
 *   one SHA-256 per record, records_hash = SHA-256 of those hashes in order,
 *   prev_hash (the previous batch's hash; 32 zero bytes before seq 1), count, total (records in the chain
 *   so far), min/max created_at, and hash = SHA-256 over all of that and over the ids and created_ats
 *   (chainHash v2; batches written before it have v1, without the ids and created_ats).
 * - A record's hash is over a canonical text PostgreSQL computes from the typed row it stores (sql/integrity.ts
 *   canonicalRow: a jsonb array of the type's columns, created_at as fixed UTC text with microseconds,
 *   duration_ms as its IEEE bytes, the bodies after the array framed by their length: text 2; records chained
 *   before it have text 1, every column in the array, which verify takes too), in the statement that inserts it
 *   (sql/writer.ts insertFromArrayChained: the row json_populate_recordset made, with the table's own types, is
 *   what is stored), so what is hashed is what was stored, whatever jsonb did to key order, numbers or escapes;
 *   verify recomputes it from the table with the same expression and pg_catalog's functions. The chain's hashes (records_hash, hash) are
 *   computed here in Node.
 * - Batches go over several connections at once; the chain step (the batch row and the COMMIT) is
 *   serialised by a lock in the process, so seq and prev_hash follow commit order. The head (last seq,
 *   hash, total) is read from the database at the sink's first batch and after any failure, so a crash
 *   or a replay continues the chain instead of forking it; a second process with the same instance name
 *   meets the primary key, re-reads the head and tries again.
 * - Digests: every integrityDigestIntervalMs (and when the sink stops) the instance signs
 *   {v, instance, seq, hash, total, from, to, newest and oldest (per log type), at} of its head with the Ed25519 key of `integrityKey`
 *   and writes it to `integrity_digests` and to `<logDir>/digests.jsonl`. Someone who rewrites records
 *   AND recomputes the chain cannot sign the new head; someone who deletes the tail leaves a signed
 *   digest the chain no longer reaches. Without a key the chain is still written but no digest is:
 *   verify then says it cannot prove the head (the tail could have been cut).
 * - Retention: cleanup records each cutoff it applies in `integrity_retention`; verify counts chained
 *   records older than their type's cutoff as removed on purpose. A cleanup that completes then prunes
 *   each chain's oldest batch rows whose records are all gone that way (prune.ts), a prefix recorded in
 *   integrity_pruned, so the chain stays one checked piece.
 * - Records first: the sink checks at each connect that the tables exist and its role may write them
 *   (chainUnavailable); if not it logs why once and writes the records unchained. A failed digest never fails
 *   a batch (counted, logged once per distinct error).
 * - Adoption: a head read from the database beyond both what this process committed and the last head this
 *   instance signed in its digest file is warned about and recorded (adoptedFrom) in the next digest.
 * - `import` chains what it inserts as the instance `import@<instance>` and signs its head at the end.
 * - The Chain serves MongoDB too (stores/mongo/integrity.ts) through ChainIO; its digests carry `store: "mongo"`.
 * - Not covered: records written by other means than the sinks and import (bench data from `generate`: verify
 *   reports them as inserted).
 */
import {createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify as verifySignature} from 'node:crypto'
import {appendFile, mkdir, open} from 'node:fs/promises'
import {readFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type pg from 'pg'
import type {Config} from '../../config/schema.js'
import {usageError} from '../../errors.js'
import {MODES} from '../../util/files.js'
import type {LogType} from '../log-types.js'
import * as sql from './sql/integrity.js'

export const ZERO_HASH = Buffer.alloc(32)

export type IntegrityOptions = {
  instance: string
  /** The Ed25519 private key, PEM; without it no digests are written. */
  keyPem?: string
  digestIntervalMs: number
  /** Where digests are appended too (<logDir>/digests.jsonl); none: the database only. */
  digestFile?: string
}

export const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest()

/** SHA-256 over the per-record hashes, in the batch's order. */
export const recordsHashOf = (recordHashes: Buffer) => sha256(recordHashes)

export type ChainLink = {
  instance: string
  seq: number
  logType: string
  count: number
  total: number
  min: string
  max: string
  prevHash: Buffer
  recordsHash: Buffer
}

/**
 * The hash of a batch's keys: each record's id and created_at (as the store gives them back: utcText in
 * PostgreSQL, ISO to the millisecond in MongoDB), one "<id> <created_at>" line a record, in the batch's order.
 */
export const keysHashOf = (ids: readonly string[], ats: readonly string[]) => sha256(ids.map((id, i) => `${id} ${ats[i]}`).join('\n'))

/**
 * A batch's hash: every field of its row but the per-record hashes (which records_hash covers). v2 (with
 * keysHash, what the writer makes now) covers the records' ids and created_at too: in v1 they were not, so an
 * owner could re-date a chained record inside [min, max] in the batch row and delete it, and a batch older
 * than the retention cutoff would pass it off as removed by retention. verify accepts either: a v1 hash
 * cannot be made to match a v2 batch's stored hash, which the next batch and the signed digests hold.
 */
export const chainHash = (b: ChainLink & {keysHash?: Buffer}) =>
  sha256(
    [
      b.keysHash ? 'audit-logs chain v2' : 'audit-logs chain v1',
      b.instance,
      b.seq,
      b.logType,
      b.count,
      b.total,
      b.min,
      b.max,
      b.prevHash.toString('hex'),
      b.recordsHash.toString('hex'),
      ...(b.keysHash ? [b.keysHash.toString('hex')] : []),
    ].join('\n'),
  )

type Head = {seq: number; hash: Buffer; total: number}

/** The store a chain lives in: its digests are marked with it when it is not PostgreSQL (digests.jsonl is shared). */
export type ChainStore = 'postgres' | 'mongo'

/** Whether `signature` (base64) is `publicKey`'s Ed25519 signature of `body`. */
export function signedBy(body: string, signature: string, publicKey: KeyObject): boolean {
  try {
    return verifySignature(null, Buffer.from(body), publicKey, Buffer.from(signature, 'base64'))
  } catch {
    return false
  }
}

/**
 * A retention cutoff as cleanup records it, signed with integrityKey when one is configured: the retention (days) it
 * was applied under and when. verify bounds an unsigned cutoff by the retention configured now, so raising the
 * retention would turn every earlier cutoff into a BAD RETENTION failure, with no way to clear it but to delete the
 * rows that say what was removed. A signed one is also honoured by the retention it says it was recorded under: the
 * key's holder set that policy, and someone who can only write the database cannot sign another.
 */
export type RetentionStatement = {
  v: 1
  kind: 'retention'
  store: ChainStore
  log_type: string
  cutoff: string
  days: number
  at: string
  /** each instance's chain head as cleanup began: the batches whose records the cutoff removed (later ones it does not cover) */
  heads: Record<string, number>
}

/** Signed once the cutoff's records are gone (an interrupted cleanup leaves its cutoff unsigned). */
export function signRetention(
  key: KeyObject,
  s: {store: ChainStore; logType: string; cutoff: Date; days: number; at: Date; heads: Record<string, number>},
): {statement: string; signature: string} {
  const body: RetentionStatement = {
    v: 1,
    kind: 'retention',
    store: s.store,
    log_type: s.logType,
    cutoff: s.cutoff.toISOString(),
    days: s.days,
    at: s.at.toISOString(),
    heads: s.heads,
  }
  const statement = JSON.stringify(body)
  return {statement, signature: sign(null, Buffer.from(statement), key).toString('base64')}
}

/**
 * The retention a recorded cutoff was signed under: undefined when it carries no statement, 'invalid' when its
 * signature does not check with `publicKey` or the statement is not of this row (another type, another cutoff).
 */
export function signedRetention(
  row: {log_type: string; cutoff: string; statement?: string | null; signature?: string | null},
  publicKey: KeyObject,
  store: ChainStore,
): {days: number; at: number; heads: Record<string, number>} | 'invalid' | undefined {
  if (!row.statement && !row.signature) return undefined
  if (!row.statement || !row.signature || !signedBy(row.statement, row.signature, publicKey)) return 'invalid'
  let s: Partial<RetentionStatement>
  try {
    s = JSON.parse(row.statement) as Partial<RetentionStatement>
  } catch {
    return 'invalid'
  }
  const at = Date.parse(String(s.at))
  if (
    s.v !== 1 ||
    s.kind !== 'retention' ||
    s.store !== store ||
    s.log_type !== row.log_type ||
    Date.parse(String(s.cutoff)) !== Date.parse(row.cutoff) ||
    !Number.isFinite(s.days) ||
    (s.days as number) < 0 ||
    !Number.isFinite(at) ||
    typeof s.heads !== 'object' ||
    s.heads === null ||
    !Object.values(s.heads).every((seq) => Number.isInteger(seq))
  )
    return 'invalid'
  return {days: s.days as number, at, heads: s.heads}
}

/**
 * What a Chain needs of its store (it is the same chain for PostgreSQL and MongoDB): the head as stored, the batch
 * row (PostgreSQL: inserted and the transaction committed), a digest. A pg client stands for PostgreSQL's.
 */
export type ChainIO = {
  head(instance: string): Promise<Head | undefined>
  /** Writes the batch row; PostgreSQL commits the records' transaction with it. An empty batch: only the commit. */
  commit(row: sql.BatchRow | undefined): Promise<void>
  digest(instance: string, seq: number, body: string, signature: string): Promise<void>
}

/** PostgreSQL's ChainIO over `client`, in the records' transaction. */
export const pgChainIO = (client: pg.ClientBase): ChainIO => ({
  async head(instance) {
    const row = (await client.query(sql.chainHead(instance))).rows[0] as {seq: string | number; hash: Buffer; total: number} | undefined
    return row ? {seq: Number(row.seq), hash: row.hash, total: Number(row.total)} : undefined
  },
  async commit(row) {
    if (row) await client.query(sql.insertBatch(row))
    await client.query('COMMIT')
  },
  async digest(instance, seq, body, signature) {
    await client.query(sql.insertDigest(instance, seq, body, signature))
  },
})
const ioOf = (target: pg.ClientBase | ChainIO): ChainIO => ('query' in target ? pgChainIO(target) : target)
/** What the writer's chained insert gives per row of the batch (sql/writer.ts insertFromArrayChained). */
export type Inserted = {id: string; at: string; h: Buffer}

/** A chain-conflict: another writer took the seq (same instance name in two processes). Retried by the writer. */
export const isChainConflict = (error: unknown) =>
  (error as {code?: string; table?: string}).code === '23505' && (error as {table?: string}).table === 'integrity_batches'

/** One instance's chain, shared by the sink's connections (see the design above). */
export class Chain {
  private head: Head | undefined
  private lock: Promise<void> = Promise.resolve()
  /** The time range of the records chained since the last digest. */
  private span: {from?: string; to?: string} = {}
  /**
   * Per log type, the newest record chained since the last digest: signed as `newest`, so that verify checks a digest
   * whose head cleanup pruned against each type's own retention (prune.ts), not only the shortest one.
   */
  private newest: Record<string, string> = {}
  /** Per log type, the oldest record chained since the last digest (`oldest`: verify checks where a pruned range ends) */
  private oldest: Record<string, string> = {}

  /** The highest seq this process committed (a head read again after a failure that is not beyond it is its own). */
  private ownSeq = 0
  /** A head read from the database beyond what this instance last signed and committed: recorded in the next digest. */
  private adopted: {seq: number; hash: string; lastSigned: number} | undefined

  /**
   * `digestFile`: the instance's own digests.jsonl; at each load the database's head is compared with the last head
   * signed there, and one beyond it is reported (`warn`) and recorded as adoptedFrom in the next digest.
   */
  constructor(
    readonly instance: string,
    private readonly digestFile?: string,
    private readonly warn: (message: string) => void = () => {},
    readonly store: ChainStore = 'postgres',
  ) {}

  /** Inserts the batch row for `rows` (the records this transaction inserted) and commits, under the chain's lock. */
  async commit(target: pg.ClientBase | ChainIO, logType: LogType, rows: Inserted[]): Promise<void> {
    const io = ioOf(target)
    let release!: () => void
    const previous = this.lock
    this.lock = new Promise((resolve) => (release = resolve))
    await previous
    try {
      if (rows.length === 0) {
        await io.commit(undefined)
        return
      }
      const head = (this.head ??= await this.load(io))
      let min = rows[0].at
      let max = rows[0].at
      for (const r of rows) {
        if (r.at < min) min = r.at
        if (r.at > max) max = r.at
      }
      const recordHashes = Buffer.concat(rows.map((r) => r.h))
      const link: ChainLink = {
        instance: this.instance,
        seq: head.seq + 1,
        logType,
        count: rows.length,
        total: head.total + rows.length,
        min,
        max,
        prevHash: head.hash,
        recordsHash: recordsHashOf(recordHashes),
      }
      const ids = rows.map((r) => r.id)
      const ats = rows.map((r) => r.at)
      const hash = chainHash({...link, keysHash: keysHashOf(ids, ats)})
      await io.commit({...link, logType, ids, ats, recordHashes, hash})
      this.head = {seq: link.seq, hash, total: link.total}
      this.ownSeq = link.seq
      if (!this.span.from || min < this.span.from) this.span.from = min
      if (!this.span.to || max > this.span.to) this.span.to = max
      if (!this.newest[logType] || max > this.newest[logType]) this.newest[logType] = max
      if (!this.oldest[logType] || min < this.oldest[logType]) this.oldest[logType] = min
    } catch (error) {
      this.head = undefined // the commit's outcome may be unknown: read the head again
      throw error
    } finally {
      release()
    }
  }

  /** The head as this chain knows it (read from the store when it does not); under no lock: for a caller that serialises its batches. */
  async current(target: pg.ClientBase | ChainIO): Promise<Head> {
    return (this.head ??= await this.load(ioOf(target)))
  }

  private async load(io: ChainIO): Promise<Head> {
    const head = (await io.head(this.instance)) ?? {seq: 0, hash: ZERO_HASH, total: 0}
    if (this.digestFile && head.seq > this.ownSeq) {
      const lastSigned = await lastSignedSeq(this.digestFile, this.instance, this.store)
      if (lastSigned !== undefined && head.seq > lastSigned && head.seq > (this.adopted?.seq ?? 0)) {
        this.adopted = {seq: head.seq, hash: head.hash.toString('hex'), lastSigned}
        this.warn(
          `integrity: the chain of instance "${this.instance}" in the database goes on to batch ${head.seq}, beyond the last head ` +
            `it signed (${lastSigned}, in ${this.digestFile}): batches ${lastSigned + 1}..${head.seq} were not signed by their writer ` +
            '(a run that was killed leaves them so; so would batches someone else added); the next digest records it (adoptedFrom)',
        )
      }
    }
    return head
  }

  /**
   * Signs the head and writes it (table, then file) when it moved since the last digest. Run when no batch
   * is in flight on `client`; takes the chain's lock so the head it signs is a committed one.
   */
  async digest(target: pg.ClientBase | ChainIO, key: KeyObject, file: string | undefined, signed: {seq: number}): Promise<void> {
    const io = ioOf(target)
    let release!: () => void
    const previous = this.lock
    this.lock = new Promise((resolve) => (release = resolve))
    await previous
    try {
      const head = (this.head ??= await this.load(io))
      if (head.seq === 0 || head.seq === signed.seq) return
      const body = JSON.stringify({
        v: 1,
        // digests.jsonl is shared by the stores: each verify reads its own (no mark: PostgreSQL's, as before)
        ...(this.store === 'postgres' ? {} : {store: this.store}),
        instance: this.instance,
        seq: head.seq,
        hash: head.hash.toString('hex'),
        total: head.total,
        from: this.span.from ?? null,
        to: this.span.to ?? null,
        ...(Object.keys(this.newest).length ? {newest: this.newest, oldest: this.oldest} : {}),
        at: new Date().toISOString(),
        ...(this.adopted ? {adoptedFrom: this.adopted} : {}),
      })
      const signature = sign(null, Buffer.from(body), key).toString('base64')
      await io.digest(this.instance, head.seq, body, signature)
      if (file) {
        // the log directory, when the first to write in it is import, cleanup or event: 0750, as run makes it (doctor warns of o+r)
        await mkdir(path.dirname(file), {recursive: true, mode: MODES.sharedDir})
        // 0640: doctor warns of files in the log directory others can read
        await appendFile(file, JSON.stringify({body, signature}) + '\n', {mode: 0o640})
      }
      signed.seq = head.seq
      this.span = {}
      this.newest = {}
      this.oldest = {}
      this.adopted = undefined
    } finally {
      release()
    }
  }
}

/**
 * Why the chain cannot be written with `client`'s role, or undefined when it can: a missing integrity table
 * (migration 0006 not applied) or a missing grant (`migrate` run instead of `setup-db`). `digests`: the
 * digests table is needed too (a key is configured).
 */
export async function chainUnavailable(client: pg.ClientBase, digests: boolean): Promise<string | undefined> {
  const r = (await client.query(sql.chainReadiness())).rows[0] as Record<string, boolean | null>
  const missing: string[] = []
  if (!r.batches) missing.push('the table integrity_batches does not exist (migration 0006 is not applied)')
  else {
    if (!r.batches_insert) missing.push('the writer role has no INSERT on integrity_batches')
    if (!r.batches_select) missing.push('the writer role has no SELECT on integrity_batches')
  }
  if (digests) {
    if (!r.digests) missing.push('the table integrity_digests does not exist (migration 0006 is not applied)')
    else if (!r.digests_insert) missing.push('the writer role has no INSERT on integrity_digests')
  }
  return missing.length ? missing.join('; ') : undefined
}

/** The highest seq signed for `instance` of `store` among the last digests of `file` (its last 256 KiB); undefined when it has none. */
async function lastSignedSeq(file: string, instance: string, store: ChainStore): Promise<number | undefined> {
  let text: string
  try {
    const handle = await open(file, 'r')
    try {
      const size = (await handle.stat()).size
      const length = Math.min(size, 256 * 1024)
      const buffer = Buffer.alloc(length)
      await handle.read(buffer, 0, length, size - length)
      text = buffer.toString('utf8')
    } finally {
      await handle.close()
    }
  } catch {
    return undefined
  }
  let last: number | undefined
  for (const line of text.split('\n')) {
    try {
      const body = JSON.parse((JSON.parse(line) as {body: string}).body) as {instance?: unknown; seq?: unknown; store?: unknown}
      if ((body.store ?? 'postgres') !== store) continue
      if (body.instance === instance && typeof body.seq === 'number' && (last === undefined || body.seq > last)) last = body.seq
    } catch {
      // a partial first line of the tail, or not a digest
    }
  }
  return last
}

/** The key of `integrityKey`: PEM text, or the path of a PEM file. A clear error for anything but an Ed25519 private key; the key never appears in it. */
export function loadPrivateKey(value: string): {key: KeyObject; pem: string} {
  let pem = value.trim()
  if (!pem.startsWith('-----BEGIN')) {
    try {
      pem = readFileSync(pem, 'utf8')
    } catch (error) {
      // the value is not echoed: it may be key material that is not quite PEM (quoted, base64 alone) taken for a path
      throw usageError(`integrityKey: cannot read the key file it names (${(error as NodeJS.ErrnoException).code ?? 'error'})`, [
        'Make one with `audit-logs verify keygen --out integrity.pem` (or `openssl genpkey -algorithm ed25519 -out integrity.pem`)',
      ])
    }
  }
  let key: KeyObject
  try {
    key = createPrivateKey(pem)
  } catch {
    throw usageError('integrityKey is not a PEM private key: an Ed25519 private key (PKCS#8 PEM) is accepted', [
      'Make one with `audit-logs verify keygen --out integrity.pem`',
    ])
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw usageError(`integrityKey is a ${key.asymmetricKeyType ?? 'symmetric'} key: an Ed25519 private key is accepted`)
  return {key, pem}
}

/** A public key given as PEM text or a PEM file's path (verify --public-key); a private key gives its public half. */
export function loadPublicKey(value: string): KeyObject {
  let pem = value.trim()
  if (!pem.startsWith('-----BEGIN')) {
    try {
      pem = readFileSync(pem, 'utf8')
    } catch (error) {
      throw usageError(`--public-key: cannot read ${value} (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
    }
  }
  let key: KeyObject
  try {
    key = createPublicKey(pem)
  } catch {
    throw usageError('--public-key is not a PEM key: an Ed25519 public key (SPKI PEM) is accepted')
  }
  if (key.asymmetricKeyType !== 'ed25519') throw usageError(`--public-key is a ${key.asymmetricKeyType} key: an Ed25519 key is accepted`)
  return key
}

/** What the PostgreSQL sink of a run (or `event`) chains and signs, from the configuration; undefined when integrity is off. The key is checked here, at start. */
export function integrityOptions(
  config: Pick<Config, 'integrity' | 'integrityKey' | 'integrityDigestIntervalMs' | 'instance'>,
  logDir: string,
): IntegrityOptions | undefined {
  if (!config.integrity) return undefined
  return {
    instance: config.instance ?? os.hostname(),
    keyPem: config.integrityKey ? loadPrivateKey(config.integrityKey).pem : undefined,
    digestIntervalMs: config.integrityDigestIntervalMs,
    digestFile: path.join(path.resolve(logDir), 'digests.jsonl'),
  }
}
