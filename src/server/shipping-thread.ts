// The shipping side of `run`, on a thread of the primary: one shipper per sink
// reads the journal from its checkpoint and delivers; segments every sink has
// passed are deleted. It runs at a lower CPU priority than the proxy (the
// journal holds what it has not shipped yet), and its heap is bounded.
import os from 'node:os'
import {parentPort, workerData} from 'node:worker_threads'
import {listSegments} from '../pipeline/journal.js'
import {Shipper, type ShipperStats, collectSegments} from '../pipeline/shipper.js'
import {type Sink, sinksOf} from '../pipeline/sinks.js'
import type {MongoTarget} from '../stores/mongo/target.js'
import type {IntegrityOptions} from '../stores/postgres/integrity.js'
import {failpoint} from '../util/failpoints.js'
import {heapKeeper} from '../util/heap.js'
import {otherThreadsAt} from '../util/priority.js'
import {CatchUpTrigger} from './pacing.js'

export type ShippingSettings = {
  journalDir: string
  files?: {dir: string; maxBytes: number; backupCount: number}
  databaseUrl?: string
  mongo?: MongoTarget
  integrity?: IntegrityOptions
  nice: number
  /**
   * Past this many journal bytes behind (any sink), shipping neither waits
   * for the proxy nor runs at the background priority, its database backend
   * neither, until every sink is back under a quarter of it: over any window
   * longer than a burst the sinks get the CPU they need, and the lag stays
   * bounded instead of growing until the journal is full.
   */
  catchUpBytes: number
  /** The same bound in time: as many bytes as the journal took in over this long (see CatchUpTrigger). */
  catchUpMs: number
  /**
   * While the proxy workers are saturated, the shippers wait (the journal
   * holds the records, on disk), so a burst gets every core: for at most
   * `ms` of one busy period, and not while catching up.
   */
  defer?: {ms: number}
  /** How many times the thread was started before (0: the first). */
  generation?: number
}
export type ToShipping = {type: 'reopen'} | {type: 'stop'; timeoutMs: number} | {type: 'foreground'; busy: boolean}
export type FromShipping =
  | {type: 'ready'}
  | {type: 'stats'; stats: ShipperStats[]}
  | {type: 'log'; message: string}
  | {type: 'stopped'; stats: ShipperStats[]}
  | {type: 'pace'; catchingUp: boolean}

const s = workerData as ShippingSettings
const port = parentPort!
/** The priority of the process's main thread: "normal" for the shipping threads, whatever nice value the operator started run at. */
const base = os.getPriority(process.pid)
const background = Math.max(base, s.nice)
otherThreadsAt(background)
const log = (message: string) => port.postMessage({type: 'log', message} satisfies FromShipping)

const sinks: Sink[] = sinksOf(s, background, log)
let busySince: number | undefined // the proxy workers are saturated since
/** Whether some sink is catchUpBytes or catchUpMs behind (see ShippingSettings.catchUpBytes): trigger.catchingUp. */
const trigger = new CatchUpTrigger(s.catchUpBytes, s.catchUpMs)
let changedAt = 0 // when catching up last began or ended
/** Shipping runs at the normal priority: catching up, or a sink's oldest missing byte is old (trigger.behind). */
const foreground = () => trigger.catchingUp || trigger.behind
let refusedPriority = false // the system refused to give the sinks their normal priority back (logged once)
const mayShip = () => !s.defer || busySince === undefined || trigger.catchingUp || Date.now() - busySince >= s.defer.ms
/**
 * Enters or leaves catching up, from the lag of the sinks that are delivering (one that is down cannot
 * use the CPU: its outage is the journal's to absorb): the shipping threads and the sinks' backends go
 * to the normal priority and back, and the primary is told (it makes the proxy yield meanwhile). While a
 * delivering sink's oldest missing byte is catchUpMs old (trigger.behindWanted), they go to the normal
 * priority too, without the proxy yielding.
 */
function pace(): void {
  const stats = shippers.map((x) => x.stats)
  const now = trigger.wanted(stats)
  const behind = trigger.behindWanted(stats)
  const lag = trigger.lag.bytes
  // at most one change a second: each moves threads between scheduling classes, which costs
  if ((now === trigger.catchingUp && behind === trigger.behind) || Date.now() - changedAt < 1000) return
  changedAt = Date.now()
  const wasForeground = foreground()
  if (now !== trigger.catchingUp) {
    trigger.catchingUp = now
    port.postMessage({type: 'pace', catchingUp: now} satisfies FromShipping)
    for (const x of shippers) {
      if (now && x.stats.lagBytes === lag) x.stats.catchUps++
      if (now) x.poke()
    }
  }
  trigger.behind = behind
  if (background === base || foreground() === wasForeground) return
  const nice = foreground() ? base : background
  const ok = [otherThreadsAt(nice), ...sinks.map((sink) => sink.priority?.(nice) ?? true)].every(Boolean)
  if (!ok && !refusedPriority) {
    refusedPriority = true
    log(
      `the sinks are ${Math.round(lag / 1048576)} MB and ${Math.round(trigger.lag.ageMs / 1000)} s behind, but the system refused to give shipping its normal ` +
        `CPU priority back (it needs CAP_SYS_NICE or RLIMIT_NICE): it catches up only with the cycles the proxy ` +
        `leaves; backgroundNice 0 keeps it at the normal priority`,
    )
  }
}
const shippers = sinks.map((sink) => new Shipper(s.journalDir, sink, {log, mayShip}))
for (const shipper of shippers) shipper.start()

// In a catch-up V8 let this thread's old space grow from 9 to 24 MB and its buffers by 13 MB before a
// major collection; the primary's resident memory varied by 20 MB from run to run with it.
const keepHeap = heapKeeper(8 * 1024 * 1024)

const snapshot = () => shippers.map((x) => ({...x.stats}))
const report = () => port.postMessage({type: 'stats', stats: snapshot()} satisfies FromShipping)
let ticks = 0
const timer = setInterval(() => {
  if (ticks++ % 8 === 0) otherThreadsAt(foreground() ? base : background) // pool threads that started since
  collectSegments(s.journalDir, shippers)
  const segments = listSegments(s.journalDir)
  for (const x of shippers) x.measureLag(segments)
  pace()
  for (const x of shippers) x.stats.lagMs = trigger.sinkAges.get(x.stats.name) ?? 0
  report()
  keepHeap()
  if (shippers.some((x) => x.stats.written > 0)) failpoint('shipping-crash')
}, 250)

port.on('message', async (msg: ToShipping) => {
  if (msg.type === 'foreground') {
    busySince = msg.busy ? (busySince ?? Date.now()) : undefined
    if (!msg.busy) for (const x of shippers) x.poke()
  } else if (msg.type === 'reopen') {
    for (const sink of sinks)
      await sink
        .reopen?.()
        .catch((error: Error) => log(`sink ${sink.name}: cannot reopen its files (${error.message}); its next write tries again`))
  } else if (msg.type === 'stop') {
    clearInterval(timer)
    const drained = await Promise.all(shippers.map((x) => x.drain(msg.timeoutMs)))
    drained.forEach(
      (ok, i) => !ok && log(`sink ${sinks[i].name}: not caught up at shutdown; the journal keeps the rest for the next start`),
    )
    for (const x of shippers) await x.stop()
    collectSegments(s.journalDir, shippers)
    port.postMessage({type: 'stopped', stats: snapshot()} satisfies FromShipping)
  }
})
port.postMessage({type: 'ready'} satisfies FromShipping)
