import {accessSync, constants, existsSync, mkdirSync, readdirSync, rmdirSync, statSync} from 'node:fs'
import path from 'node:path'
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

/**
 * Of `dirs`, the outermost missing part of each: the directories that making them would create.
 * Taken before a start, so that a start that fails can remove what it made (removeIfEmpty).
 */
export function missingDirs(dirs: string[]): string[] {
  const missing = new Set<string>()
  for (const dir of dirs) {
    let outermost: string | undefined
    for (let d = path.resolve(dir); !existsSync(d); d = path.dirname(d)) {
      outermost = d
      if (path.dirname(d) === d) break
    }
    if (outermost) missing.add(outermost)
  }
  return [...missing]
}

/**
 * Removes `dir` if it holds nothing but (nested) empty directories, as a start that failed leaves
 * what it made. A file anywhere in it keeps ALL of it as it is: an empty directory inside a tree that
 * holds files may be one a program needs (an initialised PostgreSQL data directory has several:
 * pg_notify, pg_tblspc, ...; removing them leaves a server that can never start again). Never follows
 * a symbolic link. Returns whether it is gone.
 */
export function removeIfEmpty(dir: string): boolean {
  if (!onlyEmptyDirs(dir)) return false
  return removeTree(dir)
}

/** Whether `dir` is a directory whose tree holds no file, link or other entry but directories. */
function onlyEmptyDirs(dir: string): boolean {
  let entries
  try {
    entries = readdirSync(dir, {withFileTypes: true})
  } catch {
    return false
  }
  return entries.every((entry) => entry.isDirectory() && onlyEmptyDirs(path.join(dir, entry.name)))
}

/** Removes a tree of empty directories, deepest first; stops at anything that appeared meanwhile. */
function removeTree(dir: string): boolean {
  let entries
  try {
    entries = readdirSync(dir, {withFileTypes: true})
  } catch {
    return false
  }
  for (const entry of entries) if (!(entry.isDirectory() && removeTree(path.join(dir, entry.name)))) return false
  try {
    rmdirSync(dir)
    return true
  } catch {
    return false // something appeared in it meanwhile (another process's start), or it may not be removed
  }
}
