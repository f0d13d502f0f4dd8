import type pg from 'pg'
import {FilesSource} from './files/source.js'
import {assertMigrated} from './postgres/partitions.js'
import {PostgresSource} from './postgres/source.js'
import type {RecordSource, SourceKind} from './source.js'

/**
 * The one place a reader's source is chosen (`--source`, the configuration).
 * Each store is opened only when asked for: the files need no database.
 */
export async function openSource(
  kind: SourceKind,
  open: {logDir: () => Promise<string>; db: () => Promise<pg.ClientBase>},
): Promise<RecordSource> {
  if (kind === 'files') return new FilesSource(await open.logDir())
  const db = await open.db()
  await assertMigrated(db)
  return new PostgresSource(db)
}
