import {createReadStream, existsSync, readdirSync} from 'node:fs'
import path from 'node:path'
import {createInterface} from 'node:readline'
import {createGunzip} from 'node:zlib'
import {usageError} from '../../errors.js'
import type {Filter} from '../../filters/parse.js'
import {toPredicate} from '../../filters/predicate.js'

/** The name of the current JSONL file of a log type; its rotated backups add `.N.gz`. */
const fileName = (logType: Filter['logType']) => (logType === 'access' ? 'access.jsonl' : 'requests.jsonl')

/** The JSONL files `run` writes, current and rotated (gzipped) ones, for one log type. */
export function logFiles(dir: string, logType: Filter['logType']): string[] {
  const base = fileName(logType)
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((n) => n === base || (n.startsWith(base + '.') && n.endsWith('.gz')))
    .map((n) => path.join(dir, n))
}

/**
 * The log directory to read with --source files: one that does not exist, or
 * holds none of this type's files, is an error (a mistyped path must not read
 * as "no matching records").
 */
export function filesSource(dir: string, logType: Filter['logType']): string {
  const base = fileName(logType)
  const hint = ['Give the directory `run` writes its JSONL files to: --log-dir DIR (or logDir / AUDIT_LOGS_LOG_DIR)']
  if (!existsSync(dir)) throw usageError(`The log directory ${dir} does not exist`, hint)
  if (logFiles(dir, logType).length === 0) throw usageError(`The log directory ${dir} holds no ${base} (nor rotated ${base}.N.gz)`, hint)
  return dir
}

/** Streams every record of the files, parsed; a line that is not JSON is skipped. */
export async function* readRecords(dir: string, logType: Filter['logType']): AsyncGenerator<Record<string, unknown>> {
  for (const file of logFiles(dir, logType)) {
    const raw = createReadStream(file)
    const lines = createInterface({input: file.endsWith('.gz') ? raw.pipe(createGunzip()) : raw, crlfDelay: Infinity})
    for await (const line of lines) {
      if (!line) continue
      try {
        yield JSON.parse(line)
      } catch {
        // a torn or foreign line
      }
    }
  }
}

/** The `limit` newest matching records, newest first, in bounded memory. */
export async function queryFiles(dir: string, f: Filter, limit: number): Promise<Record<string, unknown>[]> {
  const match = toPredicate(f)
  const kept: Record<string, unknown>[] = []
  for await (const r of readRecords(dir, f.logType)) {
    if (!match(r)) continue
    kept.push(r)
    if (kept.length > limit * 2) {
      kept.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)))
      kept.length = limit
    }
  }
  kept.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)))
  return kept.slice(0, limit)
}
