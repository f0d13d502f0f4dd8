import {execa} from 'execa'
import {AuditLogsError, ExitCode} from '../errors.js'

export type RunAs = {uid: number; gid: number} | undefined

/**
 * PostgreSQL refuses to run as root. As root we run it as the existing
 * `postgres` OS user; we never create OS accounts on the user's behalf.
 */
export async function serverOsUser(user = 'postgres', isRoot = process.getuid?.() === 0): Promise<RunAs> {
  if (!isRoot) return undefined
  const uid = await execa('id', ['-u', user], {reject: false})
  const gid = await execa('id', ['-g', user], {reject: false})
  if (uid.exitCode !== 0 || gid.exitCode !== 0) {
    throw new AuditLogsError(`PostgreSQL cannot run as root, and there is no "${user}" OS user to run the embedded server as.`, {
      exit: ExitCode.embedded,
      suggestions: [
        'Run audit-logs as a non-root user',
        'or create the user yourself: useradd --system postgres',
        'or set AUDIT_LOGS_DATABASE_URL to use your own PostgreSQL server',
      ],
    })
  }
  return {uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim())}
}

/** The server's user must be able to enter the data directory (a project under /root is not). */
export async function assertEnterable(dir: string, runAs: RunAs): Promise<void> {
  if (!runAs) return
  const probe = await execa('test', ['-x', dir, '-a', '-r', dir], {...runAs, reject: false})
  if (probe.exitCode !== 0) {
    throw new AuditLogsError(`The embedded PostgreSQL runs as the "postgres" OS user, which cannot enter ${dir}.`, {
      exit: ExitCode.embedded,
      suggestions: [
        'Make every parent directory enterable (chmod o+x), or',
        'set AUDIT_LOGS_DATA_DIR to a directory it can enter, such as /var/lib/audit-logs',
      ],
    })
  }
}
