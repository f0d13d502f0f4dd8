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

/**
 * Forks `count` proxy workers, and a replacement for each one that dies while the run is not stopping.
 * `stderr`: a file descriptor the workers write their stderr to (errorLog names a file), else the primary's.
 */
export function startWorkers(settings: WorkerSettings, count: number, on: WorkerEvents, stderr?: number): Workers {
  // A small young generation keeps each worker's RSS down; its scavenges are cheap at this size.
  cluster.setupPrimary({
    exec: WORKER_ENTRY,
    execArgv: [...process.execArgv, '--max-semi-space-size=2'],
    silent: false,
    ...(stderr === undefined ? {} : {stdio: ['inherit', 'inherit', stderr, 'ipc']}),
  })
  let startupError: string | undefined
  let stopping = false
  /** workers being replaced (maxRequests): their exit is expected, and starts no other replacement */
  const retiring = new Set<Worker>()
  const fork = () => {
    const w = cluster.fork({AUDIT_LOGS_WORKER_SETTINGS: JSON.stringify(settings)})
    w.on('message', (msg: ToPrimary) => {
      if (msg.type === 'listening') on.listening(w)
      if (msg.type === 'counts') on.counts(w, msg)
      if (msg.type === 'listen-error') startupError = msg.message
      if (msg.type === 'retire') retire(w, msg.served)
    })
    return w
  }
  /**
   * gunicorn's max_requests: the replacement is started first, and the old worker told to shut down
   * (stop accepting, finish what it holds, flush its records) only once the replacement listens,
   * so the listening socket always has a worker behind it and no request waits for a fork.
   */
  const retire = (w: Worker, served: number) => {
    if (stopping || on.stopping() || retiring.has(w)) return
    retiring.add(w)
    on.log(`worker ${w.process.pid} served ${served} requests (maxRequests): starting its replacement`)
    const next = fork()
    const listening = (msg: ToPrimary) => {
      if (msg.type !== 'listening') return
      next.off('message', listening)
      next.off('exit', failed)
      if (!w.isDead() && w.isConnected()) w.send({type: 'shutdown', retiring: true} satisfies ToWorker)
    }
    // the replacement could not start: the old worker goes on serving (the exit handler starts another replacement)
    const failed = () => {
      next.off('message', listening)
      retiring.delete(w)
    }
    next.on('message', listening)
    next.once('exit', failed)
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
    if (retiring.delete(w)) {
      if (code !== 0 || signal) on.log(`worker ${w.process.pid}, being replaced, ended with ${signal ?? `code ${code}`}`)
      else on.log(`worker ${w.process.pid} stopped: replaced, its requests answered and its records flushed`)
      return // its replacement is started already
    }
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
