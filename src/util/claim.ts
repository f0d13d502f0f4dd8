import {closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync} from 'node:fs'
import path from 'node:path'
import {isAlive, procStat} from './process.js'

/**
 * A directory one process at a time writes (a `run`'s journal, its log
 * directory): `file` in it holds the owner's pid and start time, made
 * exclusively; a claim whose process is gone (a kill -9, a reboot) is taken
 * over, one whose process runs calls `onTaken`. A missing directory is made
 * with `mode`. Returns the release.
 */
export function claimDirectory(dir: string, name: string, onTaken: (owner: {pid: number}) => never, mode: number): () => void {
  // made with its mode (a journal's 0700, a log directory's 0750): the sinks that write in it later leave an existing one as it is
  mkdirSync(dir, {recursive: true, mode})
  const file = path.join(dir, name)
  const me = `${process.pid} ${procStat(process.pid)?.start ?? ''}\n`
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o644)
      try {
        writeSync(fd, me)
      } finally {
        closeSync(fd)
      }
      return () => {
        try {
          if (readFileSync(file, 'utf8') === me) unlinkSync(file)
        } catch {
          // gone already
        }
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    let claim: string[]
    try {
      claim = readFileSync(file, 'utf8').trim().split(' ')
    } catch {
      continue // removed meanwhile: try again
    }
    const pid = Number(claim[0])
    const started = claim[1]
    const stat = procStat(pid)
    // a pid reused since (after a reboot) is not the owner, nor is one that died but is not reaped yet
    const live = pid > 0 && pid !== process.pid && isAlive(pid) && (!stat || ((!started || stat.start === started) && stat.state !== 'Z'))
    if (live) onTaken({pid})
    try {
      unlinkSync(file) // its owner is gone
    } catch {
      // another start took it over first: the exclusive create decides
    }
  }
  throw new Error(`could not claim ${file}: other processes keep taking it`)
}
