import {createHash} from 'node:crypto'
import {readFileSync, readdirSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import type {Db} from './db.js'
import {AuditLogsError, ExitCode} from '../../errors.js'
import {setLocalRole} from './sql/session.js'
import * as sql from './sql/migrations.js'

export type Migration = {version: number; name: string; file: string; checksum: string; up: string}
export type MigrationStatus = {version: number; name: string; state: 'applied' | 'pending'; appliedAt?: string}

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations', import.meta.url))
const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/

/**
 * A migration file's `-- Up` section, and the checksum of the whole file (pure). A `-- Down`
 * section, where a file has one, documents how to undo it by hand; it is never run.
 */
export function parseMigration(file: string, text: string): Migration {
  const match = FILE_NAME.exec(path.basename(file))
  if (!match)
    throw new AuditLogsError(`Migration file name ${path.basename(file)} is not of the form NNNN_name.sql`, {exit: ExitCode.migration})
  const up = /^--\s*Up\s*$/im.exec(text)
  const down = /^--\s*Down\s*$/im.exec(text)
  if (!up) throw new AuditLogsError(`Migration ${path.basename(file)} has no "-- Up" section`, {exit: ExitCode.migration})
  const upEnd = down && down.index > up.index ? down.index : text.length
  return {
    version: Number(match[1]),
    name: match[2],
    file: path.basename(file),
    checksum: createHash('sha256').update(text).digest('hex'),
    up: text.slice(up.index + up[0].length, upEnd).trim(),
  }
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
  const migrations = files.map((f) => parseMigration(f, readFileSync(path.join(dir, f), 'utf8')))
  const seen = new Set<number>()
  for (const m of migrations) {
    if (seen.has(m.version)) throw new AuditLogsError(`Two migrations share version ${m.version}`, {exit: ExitCode.migration})
    seen.add(m.version)
  }
  return migrations
}

type Applied = {version: number; name: string; checksum: string; applied_at: Date}

async function applied(client: Db): Promise<Applied[]> {
  const exists = await client.query(sql.migrationsTableExists())
  if (!exists.rows[0].exists) return []
  return (await client.query(sql.listApplied())).rows
}

/** An applied migration whose file changed since is refused: the schema would no longer match the files. */
function checkUnchanged(all: Migration[], done: Applied[]): void {
  for (const row of done) {
    const file = all.find((m) => m.version === row.version)
    if (file && file.checksum !== row.checksum) {
      throw new AuditLogsError(
        `Migration ${file.file} was changed after it was applied (checksum ${row.checksum.slice(0, 12)}… in the database, ${file.checksum.slice(0, 12)}… on disk).`,
        {exit: ExitCode.migration, suggestions: ['Restore the file as it was applied, and put schema changes in a new migration file']},
      )
    }
  }
}

export async function migrationStatus(client: Db, dir = MIGRATIONS_DIR): Promise<MigrationStatus[]> {
  const all = loadMigrations(dir)
  const done = await applied(client)
  checkUnchanged(all, done)
  return all.map((m) => {
    const row = done.find((d) => d.version === m.version)
    return row
      ? {version: m.version, name: m.name, state: 'applied', appliedAt: row.applied_at.toISOString()}
      : {version: m.version, name: m.name, state: 'pending'}
  })
}

/**
 * Applies every pending migration in one transaction under an advisory
 * lock: two concurrent runs serialise, and the second finds nothing to do.
 */
export async function migrate(
  client: Db,
  options: {dryRun?: boolean; dir?: string; role?: string} = {},
): Promise<{applied: Migration[]; sql: string[]}> {
  const all = loadMigrations(options.dir)
  await client.query('BEGIN')
  try {
    await client.query(sql.lockSchema())
    if (options.role) await client.query(setLocalRole(options.role))
    await client.query(sql.createMigrationsTable())
    const done = await applied(client)
    checkUnchanged(all, done)
    const doneVersions = new Set(done.map((d) => d.version))
    const pending = all.filter((m) => !doneVersions.has(m.version))
    for (const m of pending) {
      if (options.dryRun) continue
      try {
        await client.query(m.up)
      } catch (error) {
        throw new AuditLogsError(`Migration ${m.file} failed: ${(error as Error).message}`, {exit: ExitCode.migration, cause: error})
      }
      await client.query(sql.recordApplied(m.version, m.name, m.checksum))
    }
    await client.query(options.dryRun ? 'ROLLBACK' : 'COMMIT')
    return {applied: pending, sql: pending.map((m) => `-- ${m.file}\n${m.up}`)}
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  }
}
