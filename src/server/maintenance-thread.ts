// The maintenance thread of `run --maintenance`: at the start of every period
// (maintenanceIntervalMs) it does the period's work, or skips it when another
// instance holds the lock or has done it (maintenance-work.ts). The thread
// runs at the background priority, and so does its database backend when the
// database is on this host: retention's deletes are the database's work.
import {parentPort, workerData} from 'node:worker_threads'
import {thisThreadAt} from '../util/priority.js'
import {redactText} from '../util/redact.js'
import {type MaintenanceOutcome, type MaintenanceSettings, maintain} from './maintenance-work.js'

export type ToMaintenance = {type: 'stop'}
export type FromMaintenance = {type: 'outcome'; outcome: MaintenanceOutcome} | {type: 'stopped'}

const s = workerData as MaintenanceSettings
const port = parentPort!
thisThreadAt(s.nice)

const stopping = new AbortController()
let timer: NodeJS.Timeout | undefined
let working: Promise<void> | undefined

/**
 * After a period's work (done or found done): the next period, a little after it begins (the
 * database's clock and this one agree to within this margin). While another instance holds the
 * lock, or after a failure: again within the period, a quarter of it later (at most a minute),
 * since the holder may be busy with an earlier period, or may fail.
 */
const START_MARGIN_MS = 200
function nextWait(o: MaintenanceOutcome): number {
  const retry = Math.min(60_000, Math.max(250, s.intervalMs / 4))
  const next = Math.max(0, o.nextAt - Date.now()) + START_MARGIN_MS
  if (o.kind === 'done' || (o.kind === 'skipped' && o.reason === 'done')) return next
  return Math.min(retry, next)
}

async function tick(): Promise<void> {
  let outcome: MaintenanceOutcome
  try {
    outcome = await maintain(s, stopping.signal)
  } catch (error) {
    outcome = {kind: 'failed', error: redactText((error as Error).message), durationMs: 0, nextAt: Date.now() + s.intervalMs}
  }
  port.postMessage({type: 'outcome', outcome} satisfies FromMaintenance)
  if (!stopping.signal.aborted) timer = setTimeout(() => (working = tick()), nextWait(outcome))
}

port.on('message', async (msg: ToMaintenance) => {
  if (msg.type !== 'stop') return
  stopping.abort() // retention stops between two batches
  clearTimeout(timer)
  await working
  port.postMessage({type: 'stopped'} satisfies FromMaintenance)
})
working = tick()
