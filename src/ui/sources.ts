import pg from 'pg'
import {AuditLogsError, ExitCode} from '../errors.js'
import {FilesSource} from '../stores/files/source.js'
import type {MongoStore} from '../stores/mongo/connection.js'
import {MongoSource} from '../stores/mongo/source.js'
import {clientConfig, connect} from '../stores/postgres/connection.js'
import {assertMigrated} from '../stores/postgres/partitions.js'
import {roleNames} from '../stores/postgres/setup.js'
import {quoteIdent} from '../stores/postgres/sql/quote.js'
import {PostgresSource} from '../stores/postgres/source.js'
import type {RecordSource, SourceKind} from '../stores/source.js'

/**
 * The viewer's records, for many requests at once. PostgreSQL: a pool, one
 * connection lent per page (or for as long as an export or a live tail runs),
 * every connection acting as the reader role (SET ROLE): the viewer holds no
 * right to write, whatever user the configured URL names. MongoDB (a pool of
 * its own in the driver) and the files: one source shared.
 */
export type SourcePool = {
  kind: SourceKind
  /** A source for one piece of work; `release` when it is done. */
  lease(): Promise<{source: RecordSource; release: (broken?: boolean) => void}>
  close(): Promise<void>
}

export async function use<T>(pool: SourcePool, fn: (s: RecordSource) => Promise<T>): Promise<T> {
  const {source, release} = await pool.lease()
  try {
    return await fn(source)
  } finally {
    release()
  }
}

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
    await assertMigrated(probe)
  } finally {
    await probe.end()
  }
  const pool = new pg.Pool({...clientConfig(databaseUrl), max: 10, idleTimeoutMillis: 30_000})
  pool.on('error', () => {}) // an idle connection that drops is replaced on the next lease
  const asReader = new WeakSet<pg.PoolClient>()
  return {
    kind: 'postgres',
    lease: async () => {
      const client = await pool.connect()
      if (!asReader.has(client)) {
        // before the connection's first query: it acts as the reader, or it is not used at all
        try {
          await client.query(`SET ROLE ${quoteIdent(reader)}`)
        } catch (error) {
          client.release(true)
          throw error
        }
        asReader.add(client)
      }
      return {source: new PostgresSource(client), release: (broken) => client.release(broken)}
    },
    close: () => pool.end(),
  }
}
