import type pg from 'pg'
import type {Config} from '../config/schema.js'
import {AuditLogsError, ExitCode} from '../errors.js'
import {FilesSource} from './files/source.js'
import type {MongoStore} from './mongo/connection.js'
import {MongoSource} from './mongo/source.js'
import {assertMigrated} from './postgres/partitions.js'
import {PostgresSource} from './postgres/source.js'
import type {RecordSource, SourceKind} from './source.js'

/** How each store is reached; each is opened only when asked for (the files need no database, PostgreSQL no MongoDB driver). */
export type SourceOpeners = {logDir: () => Promise<string>; db: () => Promise<pg.ClientBase>; mongo: () => Promise<MongoStore>}

/** The one place a reader's source is chosen (`--source`, the configuration). */
export async function openSource(kind: SourceKind, open: SourceOpeners): Promise<RecordSource> {
  if (kind === 'files') return new FilesSource(await open.logDir())
  if (kind === 'mongo') return new MongoSource(await open.mongo())
  const db = await open.db()
  await assertMigrated(db)
  return new PostgresSource(db)
}

/**
 * Without --source, the store the configuration writes to: MongoDB when it is
 * the only one; with both, PostgreSQL, and MongoDB (said on stderr through
 * `warn`) when PostgreSQL cannot be connected to, since it holds the same records.
 */
export async function openConfiguredSource(
  stores: Config['stores'],
  open: SourceOpeners,
  warn: (message: string) => void,
): Promise<RecordSource> {
  if (stores !== 'both') return openSource(stores, open)
  try {
    return await openSource('postgres', open)
  } catch (error) {
    // a connection refused, timed out or not allowed (exit 3); a database that needs migrating is not a reason to read elsewhere
    if (!(error instanceof AuditLogsError && error.exit === ExitCode.database)) throw error
    warn(`${error.message.replace(/\.$/, '')}; reading from MongoDB instead (stores = both). Give --source postgres to insist.`)
    return openSource('mongo', open)
  }
}
