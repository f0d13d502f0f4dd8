import {statfsSync} from 'node:fs'
import {journalBytes} from './journal.js'

const GiB = 1024 ** 3
/** The default bound's share of the free space, its floor (today's 1 GiB, or half the free space when that is less) and its cap. */
export const JOURNAL_SHARE = 0.25
export const JOURNAL_FLOOR = GiB
export const JOURNAL_CAP = 64 * GiB

/**
 * The journal's default bound from the free space of its file system: a
 * quarter of it, at least 1 GiB (but never more than half of what is free)
 * and at most 64 GiB. At the POST load of the benchmark (9,000 req/s, about
 * 8.4 kB of records a request) 1 GiB holds about 14 s; a quarter of 50 GB
 * free about 3 minutes. Pure, for tests; see journalBound.
 */
export function defaultJournalBytes(freeBytes: number): number {
  const floor = Math.min(JOURNAL_FLOOR, Math.floor(freeBytes / 2))
  return Math.max(floor, Math.min(JOURNAL_CAP, Math.floor(freeBytes * JOURNAL_SHARE)))
}

/**
 * The bound in force: the configured one, or the default derived from the
 * free space of `dir`'s file system now, counting the journal already there
 * as free (after a restart with a backlog, the bound must not shrink below it).
 */
export function journalBound(configured: number | undefined, dir: string): {bytes: number; derived?: {freeBytes: number}} {
  if (configured !== undefined) return {bytes: configured}
  let freeBytes = 4 * JOURNAL_FLOOR // unknown (statfs refused): as if 4 GiB were free, i.e. the 1 GiB floor
  try {
    const fs = statfsSync(dir)
    freeBytes = fs.bavail * fs.bsize + journalBytes(dir)
  } catch {
    // keep the assumption above
  }
  return {bytes: defaultJournalBytes(freeBytes), derived: {freeBytes}}
}
