import {existsSync, mkdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {AuditLogsError, ExitCode} from '../../errors.js'

/** One file a deploy scaffold writes: its name relative to the output directory, and its text. */
export type ScaffoldFile = {name: string; text: string}

/**
 * Writes `files` into `dir`. Every file is checked before any is written: without `force` an existing
 * one is refused and nothing is written (half a Docker set next to an old compose file would not
 * run); each is then made exclusively, so one that appears meanwhile is not replaced either.
 */
export function writeScaffoldFiles(dir: string, files: ScaffoldFile[], force: boolean, command: string): string[] {
  const full = path.resolve(dir)
  const targets = files.map((f) => path.join(full, f.name))
  const existing = targets.filter((t) => existsSync(t))
  if (existing.length > 0 && !force) throw refusal(existing, command)
  mkdirSync(full, {recursive: true})
  for (const [i, f] of files.entries()) {
    try {
      writeFileSync(targets[i], f.text, {flag: force ? 'w' : 'wx'})
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw refusal([targets[i]], command)
      throw error
    }
  }
  return targets
}

const refusal = (existing: string[], command: string) =>
  new AuditLogsError(
    `${existing.join(', ')} already ${existing.length > 1 ? 'exist' : 'exists'}; not overwriting: pass --force to replace`,
    {
      exit: ExitCode.usage,
      suggestions: [`audit-logs ${command} --force`, 'or --dir DIR (--out FILE) to write elsewhere, or --stdout where offered'],
    },
  )
