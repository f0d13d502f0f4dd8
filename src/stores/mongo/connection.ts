import {type Collection, type Db, MongoClient, MongoServerError} from 'mongodb'
import {AuditLogsError, ExitCode} from '../../errors.js'
import {redactText, redactUrl} from '../../util/redact.js'
import type {LogType} from '../source.js'
import type {Doc} from './documents.js'
import {MONGO_URI_SETTING, type MongoTarget} from './target.js'

export type {MongoTarget} from './target.js'

/** A connected store: the client, its database, and the collection of each log type. */
export type MongoStore = {
  client: MongoClient
  db: Db
  collection(logType: LogType): Collection<Doc>
  target: MongoTarget
  close(): Promise<void>
}

/** Server errors that say the login was refused. */
const AUTH_CODES = new Set([18, 13]) // AuthenticationFailed, Unauthorized

/** Turns a driver error into one a user can act on, naming the setting, with no password in it. */
export function describeMongoError(error: unknown, uri: string): AuditLogsError {
  const err = error as Error & {code?: unknown}
  const where = redactUrl(uri)
  if (err instanceof MongoServerError && AUTH_CODES.has(Number(err.code)))
    return new AuditLogsError(`MongoDB refused the login for ${where}: ${redactText(err.message)}`, {
      exit: ExitCode.database,
      suggestions: [`Check the user and password in ${MONGO_URI_SETTING} (percent-encode special characters)`],
    })
  return new AuditLogsError(`Cannot connect to MongoDB at ${where}: ${redactText(err.message || String(err))}`, {
    exit: ExitCode.database,
    suggestions: [`Check that the server runs and the connection string (${MONGO_URI_SETTING}) is right`],
  })
}

/** Options for every client: UTC dates, bounded waits for a server, no retry of a write the shipper retries itself. */
export const clientOptions = (serverSelectionTimeoutMS = 10_000) => ({
  serverSelectionTimeoutMS,
  connectTimeoutMS: 10_000,
  appName: 'audit-logs',
  ignoreUndefined: true,
})

/**
 * Connects and proves it: a ping needs the login to succeed, so a wrong
 * password fails here (exit 3), with the setting named and no password shown.
 */
export async function connectMongo(target: MongoTarget, options: {serverSelectionTimeoutMS?: number} = {}): Promise<MongoStore> {
  let client: MongoClient
  try {
    client = new MongoClient(target.uri, clientOptions(options.serverSelectionTimeoutMS))
  } catch (error) {
    throw describeMongoError(error, target.uri) // options the driver refuses
  }
  const db = client.db(target.dbName)
  try {
    await client.connect()
    // ping alone is allowed before authentication on some servers; listing collections needs the login
    await db.command({ping: 1})
    await db.listCollections({}, {nameOnly: true}).toArray()
  } catch (error) {
    await client.close().catch(() => {})
    throw describeMongoError(error, target.uri)
  }
  return {
    client,
    db,
    collection: (logType) => db.collection<Doc>(target.collections[logType]),
    target,
    close: () => client.close(),
  }
}
