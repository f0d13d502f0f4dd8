import {existsSync, readlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'

/**
 * Raises the nice value of the calling thread only (Linux keeps one per
 * thread), so background audit work yields the CPU to the proxy and the app
 * when the cores are busy, and still has every idle cycle. Raising a nice
 * value needs no privilege. Elsewhere, or for 0, it does nothing. Unlike
 * niceProcess it leaves the scheduling group alone: that group is the whole
 * session, the proxy and the app included.
 */
export function niceThisThread(nice: number): void {
  if (process.platform !== 'linux' || nice <= 0) return
  try {
    raiseNice(Number(readlinkSync('/proc/thread-self').split('/').pop()), nice)
  } catch {
    // not permitted or not available: run at the normal priority
  }
}

/**
 * Raises the nice value of another process on this host and of its
 * scheduling group: PostgreSQL puts every backend in a session of its own,
 * and Linux (autogroup) shares the CPU between sessions before it looks at
 * nice values. Best effort: not permitted, not local, or not Linux → unchanged.
 */
export function niceProcess(pid: number, nice: number): boolean {
  if (process.platform !== 'linux' || nice <= 0 || !(pid > 0)) return false
  try {
    raiseNice(pid, nice)
    if (existsSync(`/proc/${pid}/autogroup`)) writeFileSync(`/proc/${pid}/autogroup`, String(Math.min(19, nice)))
    return true
  } catch {
    return false
  }
}

/** Sets the nice value of a thread or process to `nice` (at most 19) if it is lower; never lowers it. */
function raiseNice(id: number, nice: number): void {
  if (os.getPriority(id) < nice) os.setPriority(id, Math.min(19, nice))
}
