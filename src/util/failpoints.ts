// Test failpoints: AUDIT_LOGS_FAILPOINT=<name> makes one named point of `run` fail or stall the way a
// test needs. Production code calls them by name; unset (always, outside the tests) each is a no-op.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export type Failpoint =
  /** the proxy reports its event loop saturated (as under a burst) */
  | 'proxy-busy'
  /** the first record builder thread of the run dies after its first batch (its worker's replacement's does not) */
  | 'builder-crash'
  /** a record builder far behind its proxy: the thread stalls 300 ms at every batch */
  | 'builder-slow'
  /** the first shipping thread of the run dies once it has delivered something (the one started again does not) */
  | 'shipping-crash'
  /** the 2nd and 3rd proxy workers started in the run exit before they listen (with workers: 1, a replacement's first two tries) */
  | 'replacement-fails'
  /** a proxy worker being replaced (maxRequests) never finishes its shutdown: the primary must kill it */
  | 'retire-hangs'

const SETTING = 'AUDIT_LOGS_FAILPOINT'
/** The run's marker directory of once(), handed from the primary to its threads and workers through the environment. */
const MARKERS = 'AUDIT_LOGS_FAILPOINT_MARKERS'

/** Whether the failpoint is set for this run. */
export const enabled = (name: Failpoint): boolean => process.env[SETTING] === name

/**
 * True the first time it is asked in the whole run while the failpoint is set, false after: across the
 * primary, its threads, every proxy worker and each one's threads, started again or not. A marker
 * file created exclusively in the run's directory (see shareFailpoints) decides; without one, once per
 * thread.
 */
export function once(name: Failpoint): boolean {
  return enabled(name) && mark(name)
}

/** Creates the marker `key` exclusively: true for the first in the run to ask (see once). */
const marks = new Set<string>()
function mark(key: string): boolean {
  const dir = process.env[MARKERS]
  if (!dir) {
    if (marks.has(key)) return false
    marks.add(key)
    return true
  }
  try {
    writeFileSync(path.join(dir, key), `${process.pid}\n`, {flag: 'wx'})
    return true
  } catch {
    return false // fired before (EEXIST), or the directory is gone: the run is ending
  }
}

/**
 * How many times the failpoint was asked before, in the whole run (0 the first time), counted as once()
 * is, by marker files; without a marker directory, per thread. Undefined when it is not set.
 */
export function nth(name: Failpoint): number | undefined {
  if (!enabled(name)) return undefined
  for (let i = 0; i < 100; i++) if (mark(`${name}.${i}`)) return i
  return 100
}

const effects: Record<Exclude<Failpoint, 'proxy-busy' | 'retire-hangs'>, () => void> = {
  'builder-crash'() {
    if (once('builder-crash')) throw new Error('failpoint builder-crash')
  },
  'builder-slow'() {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300)
  },
  'shipping-crash'() {
    if (once('shipping-crash')) throw new Error('failpoint shipping-crash: the shipping thread dies')
  },
  'replacement-fails'() {
    const i = nth('replacement-fails')
    if (i === 1 || i === 2) throw new Error(`failpoint replacement-fails: proxy worker ${i + 1} of the run does not start`)
  },
}

/** The named failpoint's effect, where the code calls it (it may throw); nothing when it is not set. */
export function failpoint(name: keyof typeof effects): void {
  if (enabled(name)) effects[name]()
}

/**
 * In the primary, before it starts any thread or worker: the run's marker directory for once(), in the
 * environment they inherit. Returns its removal. Nothing when no failpoint is set.
 */
export function shareFailpoints(): () => void {
  if (!process.env[SETTING] || process.env[MARKERS]) return () => {}
  const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-failpoints-'))
  process.env[MARKERS] = dir
  return () => {
    delete process.env[MARKERS]
    rmSync(dir, {recursive: true, force: true})
  }
}
