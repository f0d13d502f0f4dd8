import pg from 'pg'
import {AuditLogsError, ExitCode} from '../errors.js'
import {FilesSource} from '../stores/files/source.js'
import type {MongoStore} from '../stores/mongo/connection.js'
import {MongoSource} from '../stores/mongo/source.js'
import {clientConfig, connect} from '../stores/postgres/connection.js'
import {assertMigrated} from '../stores/postgres/partitions.js'
import {roleNames} from '../stores/postgres/setup.js'
import {quoteIdent} from '../stores/postgres/sql/quote.js'
import type {Db} from '../stores/postgres/db.js'
import {PostgresSource} from '../stores/postgres/source.js'
import type {RecordSource, SourceKind} from '../stores/source.js'
import {redactText} from '../util/redact.js'

/**
 * The viewer's records, for many requests at once. PostgreSQL: a pool, one
 * connection lent per page (or for as long as an export or a live tail runs),
 * every connection acting as the reader role (SET ROLE): the viewer holds no
 * right to write, whatever user the configured URL names. MongoDB (a pool of
 * its own in the driver) and the files: one source shared.
 */
export type SourcePool = {
  kind: SourceKind
  /**
   * A source for one piece of work; `release` when it is done. `long`: an export, which may outlast a page's
   * statement timeout. `parallel`: up to that many connections for `stats`, whose statements then run at once.
   */
  lease(options?: {long?: boolean; parallel?: number}): Promise<{source: RecordSource; release: (broken?: boolean) => void}>
  close(): Promise<void>
}

export async function use<T>(pool: SourcePool, fn: (s: RecordSource) => Promise<T>, options?: {parallel?: number}): Promise<T> {
  const {source, release} = await pool.lease(options)
  let broken = false
  try {
    return await fn(source)
  } catch (error) {
    broken = true // a connection whose statement failed or was cut is not lent again
    throw error
  } finally {
    release(broken)
  }
}

const POOL_SIZE = 10

/** A page's statements end after this long: one heavy filter cannot hold a connection without end. */
const PAGE_STATEMENT_TIMEOUT = '60s'

export function sharedSource(source: RecordSource, close: () => Promise<void> = async () => {}): SourcePool {
  return {kind: source.kind, lease: async () => ({source, release: () => {}}), close}
}

export const filesPool = (logDir: string): SourcePool => sharedSource(new FilesSource(logDir))
export const mongoPool = (store: MongoStore): SourcePool => sharedSource(new MongoSource(store), () => store.close())

/**
 * The reader role of `setup-db` is `<dbName>_reader`. A URL that logs in as it
 * is used as it is; one that logs in as a member of it (the owner, a superuser,
 * the embedded server's user) acts as it; any other is refused, naming both ways.
 */
export async function postgresPool(databaseUrl: string, dbName: string): Promise<SourcePool> {
  const reader = roleNames(dbName).reader
  const probe = await connect(databaseUrl)
  try {
    const {rows} = await probe.query(
      `SELECT current_user AS me, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS present,
         CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) THEN pg_has_role(current_user, $1, 'MEMBER') ELSE false END AS member`,
      [reader],
    )
    const {me, present, member} = rows[0] as {me: string; present: boolean; member: boolean}
    if (!present)
      throw new AuditLogsError(`The viewer reads as the reader role ${reader}, which does not exist.`, {
        exit: ExitCode.database,
        suggestions: ['Run `audit-logs setup-db` first'],
      })
    if (me !== reader && !member)
      throw new AuditLogsError(`The viewer reads as the reader role ${reader}; ${me} is not it and not a member of it.`, {
        exit: ExitCode.database,
        suggestions: [`Give a URL that logs in as ${reader} (its password is readerPassword), or GRANT ${reader} TO ${me}`],
      })
    // tried, not assumed: a membership without the right to SET ROLE (PostgreSQL 16's WITH SET FALSE) fails here, not on every page
    await probe.query(`SET ROLE ${quoteIdent(reader)}`).catch((error: Error) => {
      throw new AuditLogsError(`The viewer cannot act as the reader role ${reader}: ${redactText(error.message)}`, {
        exit: ExitCode.database,
      })
    })
    const {rows: temp} = await probe.query(`SELECT has_database_privilege(current_database(), 'TEMPORARY') AS ok`)
    if (!temp[0].ok)
      throw new AuditLogsError(`The reader role ${reader} may not make temporary tables, which exports (csv, ndjson) need.`, {
        exit: ExitCode.database,
        suggestions: ['Run `audit-logs setup-db` again: it grants the reader TEMPORARY'],
      })
    await assertMigrated(probe)
  } finally {
    await probe.end()
  }
  const pool = new pg.Pool({...clientConfig(databaseUrl), max: POOL_SIZE, idleTimeoutMillis: 30_000})
  pool.on('error', () => {}) // an idle connection that drops is replaced on the next lease
  // a lent connection that drops (a restart, a terminated backend) surfaces on its next query, never as a crash:
  // the pool takes its own listener off while a connection is lent
  pool.on('connect', (client) => client.on('error', () => {}))
  const asReader = new WeakSet<pg.PoolClient>()
  const connection = async (long: boolean) => {
    const client = await pool.connect()
    try {
      if (!asReader.has(client)) {
        // before the connection's first query: it acts as the reader, or it is not used at all
        await client.query(`SET ROLE ${quoteIdent(reader)}`)
        await client.query(`SET statement_timeout = '${PAGE_STATEMENT_TIMEOUT}'`)
        asReader.add(client)
      }
      // an export streams as long as it takes; its connection is not lent again with that setting
      if (long) await client.query('SET statement_timeout = 0')
    } catch (error) {
      client.release(true)
      throw error
    }
    return client
  }
  return {
    kind: 'postgres',
    lease: async (options = {}) => {
      const long = Boolean(options.long)
      const first = await connection(long)
      const more: pg.PoolClient[] = []
      // the extra connections only while the pool has room and nobody waits: a busy viewer runs the statements on one
      const room = () => pool.waitingCount === 0 && (pool.idleCount > 0 || pool.totalCount < POOL_SIZE)
      for (let i = 1; i < (options.parallel ?? 1) && room(); i++) more.push(await connection(false))
      const spread = more.length ? spreadOver([first, ...more]) : undefined
      return {
        source: new PostgresSource(first, spread ? {parallel: spread} : {}),
        release: (broken) => {
          first.release(broken || long)
          for (const c of more) c.release(broken)
        },
      }
    },
    close: () => pool.end(),
  }
}

/** A Db over several connections: each query goes to a connection that is free (one query at a time on each), else waits for one. */
function spreadOver(clients: pg.PoolClient[]): Db {
  const free = [...clients]
  const waiting: Array<(c: pg.PoolClient) => void> = []
  const take = () => (free.length ? Promise.resolve(free.pop()!) : new Promise<pg.PoolClient>((r) => waiting.push(r)))
  const give = (c: pg.PoolClient) => {
    const next = waiting.shift()
    if (next) next(c)
    else free.push(c)
  }
  const query = async (q: never) => {
    const c = await take()
    try {
      return await c.query(q)
    } finally {
      give(c)
    }
  }
  return {query: query as unknown as Db['query'], parallel: true}
}
