import pg from 'pg'
import type {Config} from '../../config/schema.js'
import {AuditLogsError, ExitCode} from '../../errors.js'
import {redactText, redactUrl} from '../../util/redact.js'

// Counts and sizes come back as int8; they fit a JS number for any audit table.
pg.types.setTypeParser(20, (v) => Number.parseInt(v, 10))

export const DEFAULT_DB_NAME = 'audit_logs'

/** Where the audit database lives: a server (embedded or configured) and a database on it. */
export type Target = {
  /** URL of a maintenance database on the server, for CREATE DATABASE and roles. */
  serverUrl: string
  /** URL of the audit database. */
  databaseUrl: string
  dbName: string
  embedded: boolean
  /** How the user names the URL, for messages (default: --database-url or AUDIT_LOGS_DATABASE_URL). */
  setting?: string
  release(): Promise<void>
}

export function withDatabase(url: string, dbName: string): string {
  const u = new URL(url)
  u.pathname = '/' + encodeURIComponent(dbName)
  return u.toString()
}

function databaseOf(url: string): string | undefined {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''))
  return name || undefined
}

/**
 * The audit database's name is `dbName` when configured, else the one in
 * the URL, else audit_logs; with no URL the embedded server is used.
 */
export async function resolveTarget(
  config: Pick<Config, 'databaseUrl' | 'dbName' | 'dataDir' | 'embeddedPort'> & Partial<Pick<Config, 'backgroundNice'>>,
): Promise<Target> {
  if (config.databaseUrl) {
    const dbName = config.dbName ?? databaseOf(config.databaseUrl) ?? DEFAULT_DB_NAME
    return {
      serverUrl: config.databaseUrl,
      databaseUrl: withDatabase(config.databaseUrl, dbName),
      dbName,
      embedded: false,
      release: async () => {},
    }
  }
  // loaded only here: the shipping threads connect by URL and need none of the embedded server's libraries
  const {acquireEmbedded} = await import('../../embedded/server.js')
  const server = await acquireEmbedded(config.dataDir, {port: config.embeddedPort, nice: config.backgroundNice})
  const dbName = config.dbName ?? DEFAULT_DB_NAME
  return {
    serverUrl: server.adminUrl,
    databaseUrl: withDatabase(server.adminUrl, dbName),
    dbName,
    embedded: true,
    release: () => server.release(),
  }
}

export function clientConfig(url: string): pg.ClientConfig {
  return {
    connectionString: url,
    options: '-c TimeZone=UTC -c DateStyle=ISO',
    connectionTimeoutMillis: 10_000,
    application_name: 'audit-logs',
  }
}

const DATABASE_URL_SETTING = '--database-url or AUDIT_LOGS_DATABASE_URL'

/** Turns a driver error into one a user can act on, with no password in it. */
export function describeConnectError(error: unknown, url: string, setting = DATABASE_URL_SETTING): AuditLogsError {
  const err = error as NodeJS.ErrnoException & {code?: string}
  const where = redactUrl(url)
  if (err.code === '3D000') {
    return new AuditLogsError(`The database in ${where} does not exist.`, {
      exit: ExitCode.database,
      suggestions: ['Create it with `audit-logs setup-db`'],
    })
  }
  if (err.code === '28P01' || err.code === '28000') {
    return new AuditLogsError(`PostgreSQL refused the login for ${where}: ${redactText(err.message)}`, {exit: ExitCode.database})
  }
  return new AuditLogsError(`Cannot connect to PostgreSQL at ${where}: ${redactText(err.message || String(err.code ?? err))}`, {
    exit: ExitCode.database,
    suggestions: [`Check that the server runs and the URL (${setting}) is right`],
  })
}

/** `setting`: how the user names the URL, for the hint of a failure. */
export async function connect(url: string, setting?: string): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(url))
  client.on('error', () => {}) // a dropped connection surfaces on the next query instead of crashing
  try {
    await client.connect()
  } catch (error) {
    await client.end().catch(() => {})
    throw describeConnectError(error, url, setting)
  }
  return client
}
