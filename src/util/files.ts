import {closeSync, fdatasyncSync, openSync, renameSync, writeSync} from 'node:fs'

/**
 * Modes of what audit-logs writes. Records hold IPs, user ids, headers and bodies (masked, still personal
 * data): the journal, checkpoints and dead letters are the writer's alone; the JSONL files and exports
 * are readable by its group too (a log shipper), by no one else. The umask can only narrow them.
 */
export const MODES = {privateDir: 0o700, privateFile: 0o600, sharedDir: 0o750, sharedFile: 0o640} as const

/**
 * Replaces `file` whole with `text`: written beside it, synced, then renamed over it, so a crash or a power
 * loss leaves the old content or the new one, never an empty or cut-short file.
 */
export function replaceFile(file: string, text: string, mode: number): void {
  const tmp = `${file}.tmp`
  const fd = openSync(tmp, 'w', mode)
  try {
    writeSync(fd, text)
    fdatasyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, file)
}
