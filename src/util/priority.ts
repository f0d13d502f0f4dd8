import {execFileSync} from 'node:child_process'
import {existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** A program on PATH, or undefined. */
function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(path.delimiter)) {
    const file = path.join(dir, name)
    if (dir && existsSync(file)) return file
  }
  return undefined
}
let idleChrt: string | undefined | null = null // null: not looked for yet
/** chrt(1), if it is on PATH and the idle class is allowed here (a container's seccomp policy may refuse it): looked for once, when first needed. */
function chrt(): string | undefined {
  if (idleChrt === null) {
    idleChrt = process.platform === 'linux' ? onPath('chrt') : undefined
    try {
      if (idleChrt) execFileSync(idleChrt, ['--idle', '0', 'true'], {stdio: 'ignore'})
    } catch {
      idleChrt = undefined
    }
  }
  return idleChrt
}

/**
 * The background priority: a nice value, and at 19, the lowest, the idle
 * scheduling class too (SCHED_IDLE, through chrt(1), from util-linux). A nice
 * value alone still lets a background thread keep a core for the rest of its
 * time slice after the proxy or the app wakes up; an idle-class thread gives
 * it up at once. Raising a nice value or entering the idle class needs no
 * privilege.
 */
const IDLE_CLASS_AT = 19
/** chrt(1) when `nice` asks for the idle class and the system allows it. */
const idleChrtFor = (nice: number) => (nice >= IDLE_CLASS_AT ? chrt() : undefined)

/** The words that start a program at the background priority (`nice -n N`, and `chrt --idle 0` at 19), as far as the system has them. */
export function backgroundCommand(nice: number): string[] {
  if (process.platform !== 'linux' || nice <= 0) return []
  const niceBin = onPath('nice')
  const idle = idleChrtFor(nice)
  return [...(niceBin ? [niceBin, '-n', String(Math.min(19, nice))] : []), ...(idle ? [idle, '--idle', '0'] : [])]
}

/** The priority each thread of this process was last set to (by id), so each is set once per change. */
const threadNice = new Map<number, number>()

/**
 * Puts every thread of this process but its main thread at priority `nice`:
 * in the primary those are the shipping thread, the libuv pool that does its
 * file reads, writes and gzip, and V8's helper threads that collect its
 * garbage — the main thread (which hands connections to the workers and
 * serves the admin listener) keeps its priority. Pool threads start lazily,
 * so this is called again from time to time; each thread is set once per
 * change. Lowering the nice value again (0: the sinks must catch up) needs
 * CAP_SYS_NICE or RLIMIT_NICE; returns false when it was refused.
 */
export function otherThreadsAt(nice: number): boolean {
  if (process.platform !== 'linux') return true
  let tids: number[]
  try {
    tids = readdirSync('/proc/self/task').map(Number)
  } catch {
    return true
  }
  const target = Math.min(19, Math.max(0, nice))
  const changed = tids.filter((tid) => tid !== process.pid && threadNice.get(tid) !== target)
  if (changed.length === 0) return true
  for (const tid of changed) threadNice.set(tid, target)
  const ok = threadsAt(changed, target)
  // The scheduling class for all of them with one chrt, and the main thread back to the normal class:
  // each chrt is a fork of this process, and one per thread at every change cost most of a core.
  const idle = chrt()
  const wantIdle = target >= IDLE_CLASS_AT
  if (idle && changed.some((tid) => (policyOf(tid) === SCHED_IDLE) !== wantIdle)) {
    try {
      execFileSync(idle, ['--all-tasks', wantIdle ? '--idle' : '--other', '--pid', '0', String(process.pid)], {stdio: 'ignore'})
      if (wantIdle) execFileSync(idle, ['--other', '--pid', '0', String(process.pid)], {stdio: 'ignore'})
    } catch {
      // the nice values alone, then
    }
  }
  return ok
}

/**
 * Sets the nice value of another process on this host and of its scheduling
 * group: PostgreSQL puts every backend in a session of its own, and Linux
 * (autogroup) shares the CPU between sessions before it looks at nice
 * values. Best effort: not permitted, not local, or not Linux → false.
 */
export function niceProcess(pid: number, nice: number): boolean {
  if (process.platform !== 'linux' || !(pid > 0)) return false
  if (!setNice(pid, nice)) return false
  try {
    if (existsSync(`/proc/${pid}/autogroup`)) writeFileSync(`/proc/${pid}/autogroup`, String(Math.min(19, nice)))
    return true
  } catch {
    return false
  }
}

/** Whether an error of setpriority(2) or chrt means the thread is gone (not a refusal). */
const gone = (error: unknown) =>
  (error as NodeJS.ErrnoException).code === 'ESRCH' || /ESRCH|no such process/i.test((error as Error).message)

/** Sets the nice value of a thread or process (0-19); at 19 it joins the idle class when chrt(1) is there, below it leaves it. False when refused (a thread that is gone is not a refusal). */
function setNice(id: number, nice: number): boolean {
  const target = Math.min(19, Math.max(0, nice))
  try {
    if (os.getPriority(id) !== target) os.setPriority(id, target)
  } catch (error) {
    return gone(error)
  }
  const idle = chrt()
  try {
    if (idle && target >= IDLE_CLASS_AT) execFileSync(idle, ['--idle', '--pid', '0', String(id)], {stdio: 'ignore'})
    else if (idle && policyOf(id) === SCHED_IDLE) execFileSync(idle, ['--other', '--pid', '0', String(id)], {stdio: 'ignore'})
  } catch {
    // the nice value alone, then
  }
  return true
}

/**
 * Whether this process may lower a nice value again (give a thread its
 * priority back): root or CAP_SYS_NICE, or an RLIMIT_NICE that allows it.
 * Raising one never needs a privilege, so without this a process that slows
 * a thread down could not undo it. Linux only; read from /proc once.
 */
let mayRaise: boolean | undefined
export function canRestorePriority(): boolean {
  if (mayRaise !== undefined) return mayRaise
  mayRaise = false
  if (process.platform !== 'linux') return mayRaise
  try {
    const capEff = /^CapEff:\s+([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]
    const CAP_SYS_NICE = 23n
    if (capEff && (BigInt(`0x${capEff}`) >> CAP_SYS_NICE) & 1n) return (mayRaise = true)
    // "Max nice priority  <soft>  <hard>": a soft limit of 20 - n allows nice values down to n
    const soft = /^Max nice priority\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1]
    const base = os.getPriority(process.pid)
    mayRaise = soft === 'unlimited' || (soft !== undefined && 20 - Number(soft) <= base)
  } catch {
    // unknown: as if not
  }
  return mayRaise
}

const SCHED_IDLE = 5
/** A thread's or process's scheduling policy, from /proc (field 41 of stat), or -1. */
function policyOf(id: number): number {
  try {
    const stat = readFileSync(`/proc/${id}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[38])
  } catch {
    return -1
  }
}

/**
 * Sets the nice value of every thread of another process on this host (a
 * proxy worker: its main thread, its record builder, its pool), without the
 * idle class or its scheduling group. Raising needs no privilege; lowering
 * again needs CAP_SYS_NICE: false when refused.
 */
export function processThreadsAt(pid: number, nice: number): boolean {
  if (process.platform !== 'linux') return false
  try {
    return threadsAt(readdirSync(`/proc/${pid}/task`).map(Number), nice)
  } catch {
    return true // gone: nothing to set
  }
}

/** Sets the nice value of each thread (no scheduling class); false when one refused (a thread that is gone is not a refusal). */
function threadsAt(tids: number[], nice: number): boolean {
  let ok = true
  for (const tid of tids) {
    try {
      if (os.getPriority(tid) !== nice) os.setPriority(tid, nice)
    } catch (error) {
      ok = gone(error) && ok
    }
  }
  return ok
}

/**
 * Puts the calling thread (a worker thread's own OS thread, found through
 * /proc/thread-self) at priority `nice`, and no other: a thread with a small,
 * occasional job (run's maintenance) leaves the other threads' priorities to
 * their owners. Linux only; false when refused or not possible.
 */
export function thisThreadAt(nice: number): boolean {
  if (process.platform !== 'linux' || nice <= 0) return false
  try {
    const tid = Number(path.basename(readlinkSync('/proc/thread-self')))
    return tid > 0 && setNice(tid, nice)
  } catch {
    return false
  }
}
