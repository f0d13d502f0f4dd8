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

/** A replacement (maxRequests) that dies before it listens is tried again this many times in all, 1 s, 2 s, 4 s… apart. */
export const REPLACEMENT_TRIES = 4
/**
 * A worker being replaced cuts what it still holds at shutdownTimeoutMs and exits once its records are
 * flushed; one still running this much later is killed (the journal keeps what it had written), as at
 * the run's end (half of SHUTDOWN_MARGIN_MS).
 */
export const RETIRED_KILL_MARGIN_MS = 2500

/**
 * glibc's malloc arenas in a worker, unless the environment names its own number: by default each thread that
 * allocates (the builder thread, libuv's pool, V8's helpers) gets an arena of its own, up to 8 per core, and
 * each keeps the memory freed in it. Two held a worker under load about 5 MB lower, with no cost seen in its CPU
 * per request (bench/RESULTS.md). Only the workers: the primary's own malloc is set before any of our code runs,
 * and what it spawns (the app) must get the environment as the user gave it.
 */
const MALLOC_ARENAS = '2'

/**
 * Forks `count` proxy workers, and a replacement for each one that dies while the run is not stopping.
 * `stderr`: where the workers' stderr goes (errorLog names a file: the primary writes it there, and
 * reopens it on SIGHUP), else they share the primary's.
 */
export function startWorkers(settings: WorkerSettings, count: number, on: WorkerEvents, stderr?: (text: Buffer) => void): Workers {
  // A small young generation keeps each worker's RSS down; its scavenges are cheap at this size.
  cluster.setupPrimary({
    exec: WORKER_ENTRY,
    execArgv: [...process.execArgv, '--max-semi-space-size=2'],
    silent: false,
    ...(stderr === undefined ? {} : {stdio: ['inherit', 'inherit', 'pipe', 'ipc']}),
  })
  let startupError: string | undefined
  let stopping = false
  const isStopping = () => stopping || on.stopping()
  /** workers being replaced (maxRequests): their exit is expected, and starts no other replacement */
  const retiring = new Set<Worker>()
  /** replacements started for a retiring worker and not listening yet: which worker, which try */
  const replacing = new Map<Worker, {old: Worker; attempt: number}>()
  const timers = new Set<NodeJS.Timeout>()
  const later = (ms: number, f: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t)
      f()
    }, ms)
    timers.add(t)
  }
  const fork = () => {
    const w = cluster.fork({
      AUDIT_LOGS_WORKER_SETTINGS: JSON.stringify(settings),
      MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? MALLOC_ARENAS,
    })
    if (stderr) w.process.stderr?.on('data', stderr)
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
   * (stop accepting, finish what it holds within shutdownTimeoutMs, flush its records) only once the
   * replacement listens, so the listening socket always has a worker behind it and no request waits
   * for a fork.
   */
  const retire = (w: Worker, served: number) => {
    if (isStopping() || retiring.has(w)) return
    retiring.add(w)
    on.log(`worker ${w.process.pid} served ${served} requests (maxRequests): starting its replacement`)
    replace(w, 1)
  }
  const replace = (old: Worker, attempt: number) => {
    const next = fork()
    replacing.set(next, {old, attempt})
    const listening = (msg: ToPrimary) => {
      if (msg.type !== 'listening') return
      next.off('message', listening)
      replacing.delete(next)
      if (old.isDead() || !old.isConnected()) return
      old.send({type: 'shutdown', retiring: true} satisfies ToWorker)
      const limit = settings.shutdownTimeoutMs + RETIRED_KILL_MARGIN_MS
      const kill = setTimeout(() => {
        if (old.isDead()) return
        on.log(
          `worker ${old.process.pid}, being replaced, did not stop within shutdownTimeoutMs and ${RETIRED_KILL_MARGIN_MS} ms; killed (the journal keeps what it had written)`,
        )
        old.process.kill('SIGKILL')
      }, limit)
      kill.unref() // the run's own stop kills it too, at its deadline
      old.once('exit', () => clearTimeout(kill))
    }
    next.on('message', listening)
  }
  /** A replacement died before it listened: the old worker, still serving and still to be replaced, waits for another try. */
  const replacementFailed = (next: Worker, code: number, signal: string) => {
    const {old, attempt} = replacing.get(next)!
    replacing.delete(next)
    const why = signal ?? `code ${code}`
    if (old.isDead()) return false // gone meanwhile: this is a worker to start again like any other
    if (attempt < REPLACEMENT_TRIES) {
      const wait = 1000 * 2 ** (attempt - 1)
      on.log(`the replacement of worker ${old.process.pid} (maxRequests) could not start (${why}); trying again in ${wait} ms`)
      later(wait, () => !isStopping() && replace(old, attempt + 1))
    } else {
      retiring.delete(old)
      on.log(
        `the replacement of worker ${old.process.pid} (maxRequests) could not start after ${REPLACEMENT_TRIES} tries (${why}); the worker goes on serving, and is replaced after maxRequests more`,
      )
    }
    return true
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
  const onExit = (w: Worker, code: number, signal: string) => {
    on.exited(w)
    if (replacing.has(w) && (isStopping() || replacementFailed(w, code, signal))) return
    if (retiring.delete(w)) {
      if (code !== 0 || signal) on.log(`worker ${w.process.pid}, being replaced, ended with ${signal ?? `code ${code}`}`)
      else on.log(`worker ${w.process.pid} stopped: replaced, its requests answered and its records flushed`)
      return // its replacement listens, is starting, or is tried again (one that fails with this worker gone is started again below)
    }
    if (isStopping()) return
    on.log(`worker ${w.process.pid} died (${signal ?? `code ${code}`}); starting a replacement`)
    const wait = Date.now() - lastRestart < 1000 ? 1000 : 0 // a crash loop must not spin
    lastRestart = Date.now()
    later(wait, () => !isStopping() && fork())
  }
  cluster.on('exit', onExit)
  return {
    listening: Promise.all(listening).then(() => {}),
    async stop(deadline) {
      stopping = true
      for (const t of timers) clearTimeout(t)
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
