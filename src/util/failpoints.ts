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

const SETTING = 'AUDIT_LOGS_FAILPOINT'
/** The run's marker directory of once(), handed from the primary to its threads and workers through the environment. */
const MARKERS = 'AUDIT_LOGS_FAILPOINT_MARKERS'

/** Whether the failpoint is set for this run. */
export const enabled = (name: Failpoint): boolean => process.env[SETTING] === name

const fired = new Set<Failpoint>() // without a marker directory: once per thread

/**
 * True the first time it is asked in the whole run while the failpoint is set, false after: across the
 * primary, its threads, every proxy worker and each one's threads, started again or not. A marker
 * file created exclusively in the run's directory (see shareFailpoints) decides; without one, once per
 * thread.
 */
export function once(name: Failpoint): boolean {
  if (!enabled(name)) return false
  const dir = process.env[MARKERS]
  if (!dir) {
    if (fired.has(name)) return false
    fired.add(name)
    return true
  }
  try {
    writeFileSync(path.join(dir, name), `${process.pid}\n`, {flag: 'wx'})
    return true
  } catch {
    return false // fired before (EEXIST), or the directory is gone: the run is ending
  }
}

const effects: Record<Exclude<Failpoint, 'proxy-busy'>, () => void> = {
  'builder-crash'() {
    if (once('builder-crash')) throw new Error('failpoint builder-crash')
  },
  'builder-slow'() {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300)
  },
  'shipping-crash'() {
    if (once('shipping-crash')) throw new Error('failpoint shipping-crash: the shipping thread dies')
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
