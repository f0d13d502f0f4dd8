import cluster, {type Worker} from 'node:cluster'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {AuditLogsError, ExitCode} from '../errors.js'
import {type Deadline, deadlineIn, settledBy} from './lifecycle.js'
import type {WorkerSettings} from './settings.js'
import type {ToPrimary, ToWorker} from './worker.js'

const here = fileURLToPath(import.meta.url)
const WORKER_ENTRY = path.join(path.dirname(here), here.endsWith('.ts') ? 'worker-main.ts' : 'worker-main.js')

/** The proxy worker processes alive now. */
export const liveWorkers = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => Boolean(w))

/** Tells every live worker. */
export const broadcast = (msg: ToWorker): void => liveWorkers().forEach((w) => w.isConnected() && w.send(msg))

export type WorkerEvents = {
  log(m: string): void
  /** the run is stopping (a signal came): a worker that dies now is not replaced */
  stopping(): boolean
  listening(w: Worker): void
  counts(w: Worker, msg: Extract<ToPrimary, {type: 'counts'}>): void
  exited(w: Worker): void
}

export type Workers = {
  /** resolves once every first worker listens; rejects when one could not start */
  listening: Promise<void>
  /**
   * Asks every worker to shut down (stop accepting, finish in-flight requests, flush the journal) and
   * waits for them by the deadline; one still running then is killed (the journal keeps what it wrote).
   */
  stop(deadline: Deadline): Promise<void>
}

/** Forks `count` proxy workers, and a replacement for each one that dies while the run is not stopping. */
export function startWorkers(settings: WorkerSettings, count: number, on: WorkerEvents): Workers {
  // A small young generation keeps each worker's RSS down; its scavenges are cheap at this size.
  cluster.setupPrimary({exec: WORKER_ENTRY, execArgv: [...process.execArgv, '--max-semi-space-size=2'], silent: false})
  let startupError: string | undefined
  let stopping = false
  const fork = () => {
    const w = cluster.fork({AUDIT_LOGS_WORKER_SETTINGS: JSON.stringify(settings)})
    w.on('message', (msg: ToPrimary) => {
      if (msg.type === 'listening') on.listening(w)
      if (msg.type === 'counts') on.counts(w, msg)
      if (msg.type === 'listen-error') startupError = msg.message
    })
    return w
  }
  const listening = Array.from({length: count}, () => fork()).map(
    (w) =>
      new Promise<void>((resolve, reject) => {
        w.on('message', (msg: ToPrimary) => msg.type === 'listening' && resolve())
        w.on('exit', () =>
          reject(new AuditLogsError(`A proxy worker could not start: ${startupError ?? 'it exited'}`, {exit: ExitCode.failure})),
        )
      }),
  )
  let lastRestart = 0
  let restart: NodeJS.Timeout | undefined
  const onExit = (w: Worker, code: number, signal: string) => {
    on.exited(w)
    if (stopping || on.stopping()) return
    on.log(`worker ${w.process.pid} died (${signal ?? `code ${code}`}); starting a replacement`)
    const wait = Date.now() - lastRestart < 1000 ? 1000 : 0 // a crash loop must not spin
    lastRestart = Date.now()
    restart = setTimeout(() => !stopping && !on.stopping() && fork(), wait)
  }
  cluster.on('exit', onExit)
  return {
    listening: Promise.all(listening).then(() => {}),
    async stop(deadline) {
      stopping = true
      clearTimeout(restart)
      const all = liveWorkers()
      broadcast({type: 'shutdown'})
      const exited = Promise.all(all.map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve())))))
      if (!(await settledBy(exited, deadline))) {
        for (const w of all) {
          if (w.isDead()) continue
          on.log(`worker ${w.process.pid} did not stop within the shutdown limit; killed (the journal keeps what it had written)`)
          w.process.kill('SIGKILL')
        }
        await settledBy(exited, deadlineIn(1000))
      }
      cluster.off('exit', onExit)
    },
  }
}
