import {execFileSync} from 'node:child_process'
import {existsSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
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
  let ok = true
  for (const tid of tids) {
    if (tid === process.pid || threadNice.get(tid) === nice) continue
    threadNice.set(tid, nice)
    ok = setNice(tid, nice) && ok
  }
  return ok
}

/** The background priority for the other threads (see otherThreadsAt). */
export const backgroundOtherThreads = (nice: number): void => {
  if (nice > 0) otherThreadsAt(nice)
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

/** Sets the nice value of a thread or process (at most 19); at 19 it joins the idle class when chrt(1) is there, below it leaves it. False when refused. */
function setNice(id: number, nice: number): boolean {
  const target = Math.min(19, Math.max(0, nice))
  try {
    if (os.getPriority(id) !== target) os.setPriority(id, target)
  } catch {
    return false
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
  let ok = true
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`).map(Number)) {
      try {
        if (os.getPriority(tid) !== nice) os.setPriority(tid, nice)
      } catch {
        ok = false
      }
    }
  } catch {
    return false // gone
  }
  return ok
}
