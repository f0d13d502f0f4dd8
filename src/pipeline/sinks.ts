import {createPrivateKey} from 'node:crypto'
import {readFileSync} from 'node:fs'
import path from 'node:path'
import type pg from 'pg'
import {connect} from '../stores/postgres/connection.js'
import {type FilePosition, RotatingWriter} from '../stores/files/rotating-writer.js'
import {LOG_TYPE, LOG_TYPES, type LogType, byType} from '../stores/log-types.js'
import {backendPid} from '../stores/postgres/sql/session.js'
import {writeLines} from '../stores/postgres/writer.js'
import {Chain, type ChainIO, type IntegrityOptions, chainUnavailable} from '../stores/postgres/integrity.js'
import type {MongoStore} from '../stores/mongo/connection.js'
import type {MongoTarget} from '../stores/mongo/target.js'
import {niceProcess} from '../util/priority.js'

/**
 * A destination the shipper delivers journal lines to. write() succeeds
 * entirely or throws. A sink that is not idempotent can give the shipper a
 * state() to save with each checkpoint, and undo in restore(state), at start,
 * whatever it wrote after that checkpoint (the shipper sends it again).
 */
export type Sink = {
  name: string
  /**
   * Journal lines, without their line breaks: views of the shipper's read buffer, which it reuses for the next batch
   * once this returns (a sink copies what it keeps). Records the sink refuses for what they hold (not for its own
   * state: that throws) are returned, the rest written; the shipper keeps them in the sink's dead-letter file.
   */
  write(lines: Buffer[]): Promise<void | {rejected: Rejection[]}>
  state?(): unknown
  restore?(state: unknown): Promise<void>
  reopen?(): Promise<void>
  close(): Promise<void>
  /** The integrity chain's state (PostgreSQL, MongoDB): whether batches are chained, why not, how many digests failed. */
  integrity?(): {chained: boolean; off?: string; digestErrors: number} | undefined
  /** The CPU priority of the sink's own work outside this process (a local database backend), as the shippers' threads get: false when refused. */
  priority?(nice: number): boolean
}

/** A record a sink refused, and why. */
export type Rejection = {line: Buffer; error: string}

/** The lines as one buffer, each followed by a line break: in `into` when it is large enough, else in a new buffer of their size (a caller can keep it for next time). */
export function joinLines(lines: Buffer[], into?: Buffer): Buffer {
  const total = lines.reduce((n, l) => n + l.length + 1, 0)
  const out = into && into.length >= total ? into.subarray(0, total) : Buffer.allocUnsafeSlow(total)
  let at = 0
  for (const l of lines) {
    at += l.copy(out, at)
    out[at++] = 10
  }
  return out
}

/** Rotating JSONL files, one per log type in the log directory (requests.jsonl, access.jsonl, events.jsonl). */
export function filesSink(dir: string, maxBytes: number, backupCount: number): Sink {
  const files = Object.fromEntries(
    LOG_TYPES.map((t) => [t, new RotatingWriter(path.join(dir, LOG_TYPE[t].file), maxBytes, backupCount)]),
  ) as Record<LogType, RotatingWriter>
  const all = Object.values(files)
  let joined: Buffer | undefined // reused, and grown to the largest batch: each write is done before the next join
  return {
    name: 'files',
    async write(lines) {
      for (const [type, group] of byType(lines)) {
        const data = joinLines(group, joined)
        if (data.buffer !== joined?.buffer) joined = data
        await files[type].write(data)
      }
    },
    // the files' identity and length after each delivered batch: lines past it were written
    // after the last checkpoint by a process that crashed, and are cut before they are sent again
    state: () => Object.fromEntries(LOG_TYPES.map((t) => [t, files[t].position()])),
    async restore(state) {
      const saved = (state ?? {}) as Partial<Record<LogType, FilePosition>>
      for (const t of LOG_TYPES) await files[t].truncateTo(saved[t])
    },
    async reopen() {
      for (const f of all) await f.reopen()
    },
    async close() {
      for (const f of all) await f.close()
    },
  }
}

/** Where a run's records go: the files, PostgreSQL, MongoDB, each when given (the shipping thread and `audit-logs event` build them alike). */
export type SinkPlaces = {
  files?: {dir: string; maxBytes: number; backupCount: number}
  databaseUrl?: string
  mongo?: MongoTarget
  /** The databases' batches chained and their head signed (stores/postgres/integrity.ts; MongoDB's: stores/mongo/integrity.ts) */
  integrity?: IntegrityOptions
}

export function sinksOf(places: SinkPlaces, nice = 0, log: (message: string) => void = (m) => console.error(m)): Sink[] {
  const sinks: Sink[] = []
  if (places.files) sinks.push(filesSink(path.resolve(places.files.dir), places.files.maxBytes, places.files.backupCount))
  if (places.databaseUrl) sinks.push(postgresSink(places.databaseUrl, nice, 2, places.integrity, log))
  if (places.mongo) sinks.push(mongoSink(places.mongo, places.integrity, log))
  return sinks
}

/** The pid of the backend serving `client` when it runs on this host (the embedded server, or a local one): its priority follows the sink's. */
export async function localBackend(client: pg.Client, url: string): Promise<number | undefined> {
  if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(new URL(url).hostname)) return undefined
  const pid = Number((await client.query(backendPid())).rows[0].pid)
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres') ? pid : undefined
  } catch {
    return undefined
  }
}

/**
 * A table a later migration brings missing (42P01), or the writer not granted it (42501): the records
 * wait in the journal (the sink retries) and the error says what to run.
 */
const schemaBehind = (type: LogType) => (error: {code?: string; message?: string}) => {
  if (error.code !== '42P01' && error.code !== '42501') throw error
  // the table the error is about: an integrity table (the chain's) or the type's own
  const table = /\bintegrity_(batches|digests|retention)\b/.exec(error.message ?? '')?.[0] ?? LOG_TYPE[type].table
  throw Object.assign(
    new Error(
      `PostgreSQL ${error.code === '42P01' ? `has no ${table} table` : `refuses the writer ${table}`} ` +
        '(a migration or its grants are missing): run `audit-logs setup-db`; the journal keeps the records meanwhile',
    ),
    {code: error.code},
  )
}

/** SQLSTATE classes that blame the data of a row, not the connection or the schema: data exception, integrity constraint, program limit (an index entry too large). */
const RECORD_ERROR = /^(22|23|54)/
export const blamePostgres = (error: unknown): string | undefined => {
  const code = (error as {code?: unknown}).code
  return typeof code === 'string' && RECORD_ERROR.test(code) ? `PostgreSQL ${code}: ${(error as Error).message}` : undefined
}

/**
 * Writes a batch with `write`; one that the store refuses for the data of
 * some records (`blame` says why, or undefined when the store itself is at
 * fault: then it throws) is halved until those records stand alone, and
 * they are returned: one bad record never holds up the others. The stores
 * are idempotent on id, so a half written again is kept once.
 */
export async function writeIsolating(
  lines: Buffer[],
  write: (lines: Buffer[]) => Promise<Rejection[] | void>,
  blame: (error: unknown) => string | undefined,
  rejected: Rejection[],
): Promise<void> {
  try {
    rejected.push(...((await write(lines)) ?? []))
  } catch (error) {
    const why = blame(error)
    if (why === undefined) throw error
    if (lines.length === 1) {
      rejected.push({line: lines[0], error: why})
      return
    }
    const half = lines.length >> 1
    await writeIsolating(lines.slice(0, half), write, blame, rejected)
    await writeIsolating(lines.slice(half), write, blame, rejected)
  }
}

/**
 * What a database sink's integrity chain needs around its writes (both databases' sinks): whether the chain is off
 * and why (said once in the log, shown in /health), the sink's turns (a write and a digest never overlap), and the
 * signed digests: every integrityDigestIntervalMs, after a batch or from an idle timer, and when the sink stops. `io`
 * gives the store to sign into (connecting if need be). A digest that fails never fails a batch: it is counted, each
 * distinct error logged once, and tried again at the next interval.
 */
function chainKeeper(options: {
  sink: 'postgres' | 'mongo'
  integrity: IntegrityOptions | undefined
  /** what the OFF line says: where records go without the chain, and the fix */
  off: {store: string; verify: string; fix: string}
  io: () => Promise<ChainIO | pg.ClientBase>
  log: (message: string) => void
}) {
  const {integrity, log} = options
  const chain = integrity
    ? new Chain(integrity.instance, integrity.digestFile, (m) => log(`sink ${options.sink}: ${m}`), options.sink)
    : undefined
  const key = integrity?.keyPem ? createPrivateKey(integrity.keyPem) : undefined
  /** Why the chain is off (its tables or the writer's rights are missing): records are then written without it. */
  let off: string | undefined
  const errors = {count: 0, seen: new Set<string>()}
  const signed = {seq: -1}
  let digestAt = Date.now()
  /**
   * The head of this process's first batch is signed at once (until `signed.seq` says one was), not an interval later:
   * verify fails an instance that no digest covers yet (a chain an owner invented has none), so a `verify` in the
   * first minutes of a `run` would fail. One that failed (or found the chain off, or nothing chained) is tried again
   * after a second: this is when it was last tried.
   */
  let firstTriedAt = 0
  let serial: Promise<unknown> = Promise.resolve()
  let writing = 0
  const inTurn = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = serial.then(fn, fn)
    serial = run.catch(() => {})
    return run
  }
  const digest = async () => {
    if (!chain || !key) return
    digestAt = Date.now()
    try {
      const io = await options.io()
      if (off) return
      await chain.digest(io, key, integrity?.digestFile, signed)
    } catch (error) {
      // the batches are committed: a digest that fails is retried at the next interval, never fails a batch
      errors.count++
      const message = (error as Error).message
      if (!errors.seen.has(message)) {
        errors.seen.add(message)
        log(`sink ${options.sink}: the integrity digest of instance "${chain.instance}" failed: ${message} (retried at the next interval)`)
      }
    }
  }
  // an idle sink still signs the head its last batches left (unref: it never keeps the process up)
  const timer =
    chain && key && integrity
      ? setInterval(
          () => {
            if (Date.now() - digestAt >= integrity.digestIntervalMs) inTurn(digest).catch(() => {}) // it never throws: the next tick tries again
          },
          Math.max(1000, Math.min(integrity.digestIntervalMs, 60_000)),
        ).unref()
      : undefined
  return {
    chain,
    /** whether digests are written too (the digests table or collection is needed then) */
    signs: key !== undefined,
    /** the chain to write batches with, or undefined when there is none or it is off */
    live: () => (off ? undefined : chain),
    /** Why the chain is off now (undefined: on), as the last check found; a change is logged. */
    setOff(why: string | undefined) {
      if (!chain) return
      const {store, verify, fix} = options.off
      if (why && why !== off)
        log(
          `sink ${options.sink}: the integrity chain of instance "${chain.instance}" is OFF: ${why}. Records are written to ${store} ` +
            `WITHOUT chaining (${verify} lists them as inserted); fix: run ${fix}, then restart`,
        )
      else if (!why && off) log(`sink ${options.sink}: the integrity chain of instance "${chain.instance}" is on again`)
      off = why
    },
    /** A write, in its turn; a digest after it when the interval has passed. */
    write<T>(fn: () => Promise<T>): Promise<T> {
      writing++
      return inTurn(async () => {
        const r = await fn()
        const first = key !== undefined && signed.seq < 0 && Date.now() - firstTriedAt >= 1000
        if (first) firstTriedAt = Date.now()
        if (integrity && (first || Date.now() - digestAt >= integrity.digestIntervalMs)) await digest()
        return r
      }).finally(() => writing--)
    },
    integrity: () => (chain ? {chained: !off, ...(off ? {off} : {}), digestErrors: errors.count} : undefined),
    /**
     * The last head is signed as the sink stops, so verify can prove the whole chain; but never behind a write still
     * under way (held up by a lock, a server that stopped answering): the shutdown cuts it by ending the connections, as
     * without a chain, and the batch's records stay in the journal.
     */
    async close(end: () => Promise<void>) {
      if (timer) clearInterval(timer)
      if (writing === 0) await inTurn(digest).catch(() => {})
      await end()
    },
  }
}

/**
 * PostgreSQL through the writer (one INSERT a batch), idempotent on id; reconnects after a
 * failure; records it refuses are returned. A batch is written over
 * `connections` connections at once, a share each in its own transaction:
 * one backend parses and indexes on one core and waits for its commit's
 * flush, so one connection left the sink behind a saturated proxy (its lag
 * grew without bound in a 5-minute run). A share written before another
 * failed is written again with the batch: the writer keeps one copy.
 */
export function postgresSink(
  url: string,
  nice = 0,
  connections = 2,
  integrity?: IntegrityOptions,
  log: (message: string) => void = (m) => console.error(m),
): Sink {
  let clients: pg.Client[] = []
  const keeper = chainKeeper({
    sink: 'postgres',
    integrity,
    off: {
      store: 'PostgreSQL',
      verify: 'verify',
      fix: '`audit-logs setup-db` (it applies the migrations and grants the writer)',
    },
    io: async () => {
      if (clients.length === 0) await open()
      return clients[0]
    },
    log,
  })
  let backends: number[] = []
  const open = async () => {
    const made = await Promise.allSettled(Array.from({length: connections}, () => connect(url)))
    const ok = made.flatMap((m) => (m.status === 'fulfilled' ? [m.value] : []))
    const failed = made.find((m): m is PromiseRejectedResult => m.status === 'rejected')
    if (failed) {
      await Promise.all(ok.map((c) => c.end().catch(() => {})))
      throw failed.reason
    }
    clients = ok
    backends = (await Promise.all(clients.map((c) => localBackend(c, url)))).filter((pid): pid is number => pid !== undefined)
    if (nice > 0) for (const pid of backends) niceProcess(pid, nice)
    // the chain's tables and the writer's grants, checked at each connect (the records never wait for them)
    if (keeper.chain) keeper.setOff(await chainUnavailable(clients[0], keeper.signs))
  }
  const end = async () => {
    const was = clients
    clients = []
    backends = [] // their pids may be other processes' later
    await Promise.all(was.map((c) => c.end().catch(() => {})))
  }
  const write = async (lines: Buffer[]) => {
    try {
      if (clients.length === 0) await open()
      const rejected: Rejection[] = []
      const share = Math.ceil(lines.length / clients.length)
      await Promise.all(
        clients.map(async (client, i) => {
          for (const [type, group] of byType(lines.slice(i * share, (i + 1) * share)))
            await writeIsolating(
              group,
              (ls) => writeLines(client, type, ls, keeper.live()).then(() => {}, schemaBehind(type)),
              blamePostgres,
              rejected,
            )
        }),
      )
      return {rejected}
    } catch (error) {
      await end()
      throw error
    }
  }
  return {
    name: 'postgres',
    write: (lines) => keeper.write(() => write(lines)),
    /** Whether the chain is written, and why not (shown in the shipper's state). */
    integrity: keeper.integrity,
    close: () => keeper.close(end),
    priority(level) {
      nice = level
      return backends.map((pid) => niceProcess(pid, level)).every(Boolean)
    },
  }
}

/**
 * MongoDB: unordered insertMany per log type, idempotent on _id (see
 * stores/mongo/writer.ts); connects again after a failure (a server that is
 * down or a primary that stepped down: the shipper retries with backoff).
 * With `integrity`, each batch is chained after its records (stores/mongo/integrity.ts:
 * no transactions there) and the head signed as PostgreSQL's is.
 */
export function mongoSink(
  target: MongoTarget,
  integrity?: IntegrityOptions,
  log: (message: string) => void = (m) => console.error(m),
): Sink {
  let store: MongoStore | undefined
  const keeper = chainKeeper({
    sink: 'mongo',
    integrity,
    off: {store: 'MongoDB', verify: 'verify --source mongo', fix: '`audit-logs setup-db --store mongo`'},
    io: async () => {
      const s = await connected()
      const {mongoChainIO} = await import('../stores/mongo/integrity.js')
      return mongoChainIO(s.db)
    },
    log,
  })
  const connected = async (): Promise<MongoStore> => {
    if (store) return store
    // the driver is loaded only by a run that has this sink (it costs the shipping thread memory)
    const {connectMongo} = await import('../stores/mongo/connection.js')
    const s = await connectMongo(target, {serverSelectionTimeoutMS: 5000})
    if (keeper.chain) {
      // the chain's collections and unique index, checked at each connect (the records never wait for them)
      const {mongoChainUnavailable} = await import('../stores/mongo/integrity.js')
      const {isUnauthorized} = await import('../stores/mongo/plan.js')
      try {
        keeper.setOff(await mongoChainUnavailable(s.db, keeper.signs))
      } catch (error) {
        // a writer made before the chain may not even look at its collections: records first, the chain off
        if (isUnauthorized(error)) keeper.setOff(`the server refuses the writer the integrity collections (${(error as Error).message})`)
        else {
          await s.close().catch(() => {})
          throw error
        }
      }
    }
    return (store = s)
  }
  const end = async () => {
    const was = store
    store = undefined
    await was?.close().catch(() => {})
  }
  const write = async (lines: Buffer[]) => {
    try {
      const {blameDocuments, insertLines} = await import('../stores/mongo/writer.js')
      const {chainBatch} = await import('../stores/mongo/integrity.js')
      const {isUnauthorized} = await import('../stores/mongo/plan.js')
      const s = await connected()
      const rejected: Rejection[] = []
      for (const [type, group] of byType(lines))
        await writeIsolating(
          group,
          async (ls) => {
            const r = await insertLines(s, type, ls)
            const chain = keeper.live()
            if (chain)
              await chainBatch(s.db, chain, type, r.docs).catch((error: unknown) => {
                // the writer may not write the chain: records first, the chain off (said once)
                if (!isUnauthorized(error)) throw error
                keeper.setOff(`the server refuses the writer the integrity collections (${(error as Error).message})`)
              })
            return r.rejected
          },
          blameDocuments,
          rejected,
        )
      return {rejected}
    } catch (error) {
      await end()
      throw error
    }
  }
  return {
    name: 'mongo',
    write: (lines) => keeper.write(() => write(lines)),
    integrity: keeper.integrity,
    close: () => keeper.close(end),
  }
}
