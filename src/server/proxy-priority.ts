import os from 'node:os'
import {canRestorePriority, processThreadsAt} from '../util/priority.js'
import {liveWorkers} from './workers.js'

/**
 * How far the proxy workers' nice value goes up while the sinks catch up: at 15 (weight 36 against
 * 1024) the shipping thread and the app win a contended core, while the proxy still runs whenever
 * they wait (measured: the PostgreSQL sink's lag then stays flat under a saturating POST load).
 */
const PROXY_YIELD_NICE = 15

export type ProxyPriority = {
  /** the sinks are catching up now (as the shipping thread last said) */
  readonly catchingUp: boolean
  /** the shipping thread says the sinks begin (true) or end catching up */
  set(catchingUp: boolean): void
  /** a worker that just started listening gets the priority the others have */
  greet(pid: number | undefined): void
}

/**
 * While the sinks catch up (catchUpLagBytes behind), the proxy workers yield the CPU to them: their
 * nice value PROXY_YIELD_NICE above the primary's, back to it once the sinks have caught up. So
 * under a sustained saturating load the proxy is served at the rate the sinks keep, and their lag
 * stays bounded. Only where the priority can be given back (root, CAP_SYS_NICE, RLIMIT_NICE):
 * raising a nice value needs no privilege, lowering it does, and a proxy left slowed would lose
 * against the app for good.
 */
export function proxyPriority(log: (m: string) => void): ProxyPriority {
  const base = os.getPriority(process.pid)
  const mayYield = canRestorePriority()
  let catchingUp = false
  let proxyYields = false
  let told = false
  return {
    get catchingUp() {
      return catchingUp
    },
    set(now) {
      if (now && !mayYield && !told && (told = true))
        log(
          'the sinks are catching up; the proxy workers are not made to yield to them: this user cannot give them their priority back afterwards (it needs CAP_SYS_NICE or RLIMIT_NICE)',
        )
      catchingUp = now
      if (!mayYield || now === proxyYields) return
      proxyYields = now
      for (const w of liveWorkers()) if (w.process.pid) processThreadsAt(w.process.pid, now ? base + PROXY_YIELD_NICE : base)
    },
    greet(pid) {
      if (proxyYields && pid) processThreadsAt(pid, base + PROXY_YIELD_NICE)
    },
  }
}
