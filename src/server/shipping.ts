import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {Worker} from 'node:worker_threads'
import {backoffMs} from '../pipeline/backoff.js'
import {SHIPPER_COUNTERS, type ShipperStats} from '../pipeline/shipper.js'
import {redactText} from '../util/redact.js'
import type {FromShipping, ShippingSettings, ToShipping} from './shipping-thread.js'

const here = fileURLToPath(import.meta.url)
const ENTRY = path.join(path.dirname(here), here.endsWith('.ts') ? 'shipping-thread.ts' : 'shipping-thread.js')

export type Shipping = {
  /** The sinks' latest stats (refreshed four times a second). */
  stats(): ShipperStats[]
  /** When the stats were last refreshed (ms since the epoch): a busy host or a restarting thread leaves them stale. */
  statsAt(): number
  reopen(): void
  /** Whether the proxy workers are saturated now (shipping waits, within its bounds). */
  foreground(busy: boolean): void
  /** Delivers what it can within timeoutMs, then closes the sinks. */
  stop(timeoutMs: number): Promise<void>
}

/**
 * Starts the shipping thread (see shipping-thread.ts); resolves once its
 * sinks are set up. A thread that dies later is started again, with backoff:
 * the journal holds the records meanwhile and the checkpoints say where to resume.
 */
export async function startShipping(
  settings: ShippingSettings,
  log: (m: string) => void,
  onPace: (catchingUp: boolean) => void = () => {},
): Promise<Shipping> {
  let stats: ShipperStats[] = []
  let statsAt = Date.now()
  // totals of threads that died, so counters keep growing across a restart
  const carried = new Map<string, ShipperStats>()
  const withCarried = (list: ShipperStats[]) =>
    list.map((x) => {
      const c = carried.get(x.name)
      return c ? {...x, ...Object.fromEntries(SHIPPER_COUNTERS.map((k) => [k, x[k] + c[k]]))} : x
    })
  let thread: Worker | undefined // the live thread, if any
  let stopping = false
  let stopped: (() => void) | undefined
  let restarts = 0
  let busy = false // the proxy workers are saturated: told to every shipping thread, a restarted one too

  const spawn = (generation: number) =>
    new Promise<void>((resolve, reject) => {
      const t = new Worker(ENTRY, {
        workerData: {...settings, generation} satisfies ShippingSettings,
        resourceLimits: {maxYoungGenerationSizeMb: 4},
      })
      let ready = false
      let failure: Error | undefined
      t.on('message', (msg: FromShipping) => {
        if (msg.type === 'ready') {
          ready = true
          if (stopping)
            void t.terminate() // started again while the server was stopping
          else {
            thread = t
            if (busy) t.postMessage({type: 'foreground', busy} satisfies ToShipping)
          }
          resolve()
        } else if (msg.type === 'stats') {
          stats = withCarried(msg.stats)
          statsAt = Date.now()
        } else if (msg.type === 'log') log(msg.message)
        else if (msg.type === 'pace') onPace(msg.catchingUp)
        else if (msg.type === 'stopped') {
          stats = withCarried(msg.stats)
          stopped?.()
        }
      })
      t.on('error', (error) => (failure = error))
      t.on('exit', (code) => {
        if (thread === t) thread = undefined
        onPace(false) // a thread started again begins without a catch-up; the proxy must not be left yielding
        if (stopping) return stopped?.()
        if (!ready && generation === 0) return reject(failure ?? new Error(`the shipping thread exited with code ${code}`))
        for (const x of stats) carried.set(x.name, x) // stats include what was carried
        const wait = backoffMs(++restarts, 500, 30_000)
        log(
          `shipping stopped (${redactText(failure?.message ?? `exit code ${code}`)}); starting it again in ${wait} ms — the journal keeps the records`,
        )
        setTimeout(
          () =>
            !stopping &&
            spawn(generation + 1).then(
              () => log('shipping started again'),
              () => {},
            ),
          wait,
        ).unref()
      })
    })

  await spawn(0)
  return {
    stats: () => stats,
    statsAt: () => statsAt,
    reopen: () => thread?.postMessage({type: 'reopen'} satisfies ToShipping),
    foreground(now: boolean) {
      busy = now
      thread?.postMessage({type: 'foreground', busy} satisfies ToShipping)
    },
    async stop(timeoutMs) {
      stopping = true
      const t = thread
      if (!t) return
      // the thread delivers for up to timeoutMs and cuts a write that hangs after that; past a few
      // seconds more it is stopped regardless (the journal and the checkpoints hold where it was)
      const limit = timeoutMs + 5000
      const ended = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), limit)
        stopped = () => {
          clearTimeout(timer)
          resolve(true)
        }
        t.postMessage({type: 'stop', timeoutMs} satisfies ToShipping)
      })
      if (!ended) log(`shipping did not stop within ${limit} ms; it is stopped now (the journal keeps what the sinks lack)`)
      await t.terminate()
    },
  }
}
