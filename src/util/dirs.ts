import {accessSync, constants, mkdirSync, statSync} from 'node:fs'
import {AuditLogsError, ExitCode} from '../errors.js'

const WHY: Record<string, string> = {
  ENOTDIR: 'part of the path is a file, not a directory',
  EEXIST: 'it is a file, not a directory',
  ENOENT: 'it does not exist',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'the disk is full',
}

/**
 * Makes `dir` (and its parents, with `mode`; with `create: false` it must exist) and
 * checks this user can write in it, before anything depends on it: a clear
 * error naming the directory and the setting that chose it, where a thread
 * would otherwise die on a bare ENOTDIR.
 */
export function writableDir(dir: string, what: string, setting: string, {create = true, mode = 0o777} = {}): void {
  try {
    if (create) mkdirSync(dir, {recursive: true, mode})
    else if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), {code: 'EEXIST'})
    accessSync(dir, constants.W_OK | constants.X_OK)
  } catch (error) {
    const e = error as NodeJS.ErrnoException
    throw new AuditLogsError(`Cannot use ${dir} as the ${what}: ${(e.code && WHY[e.code]) ?? e.message}`, {
      exit: ExitCode.usage,
      suggestions: [`Set ${setting} to a directory this user can write`],
    })
  }
}
