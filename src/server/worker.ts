import type http from 'node:http'
import net from 'node:net'
import type {Duplex} from 'node:stream'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {performance} from 'node:perf_hooks'
import {Worker} from 'node:worker_threads'
import {WireBatch} from '../capture/wire.js'
import {ClientIp} from '../capture/client-ip.js'
import {Exclusions} from '../capture/exclusions.js'
import {IntakeGate} from '../capture/gate.js'
import {type Capture, createProxy} from '../capture/proxy.js'
import {enabled, failpoint} from '../util/failpoints.js'
import {Masker} from '../capture/masking.js'
import {accessLogLine, accessLogStream} from './access-log.js'
import type {FromBuilder, ToBuilder} from './builder-thread.js'
import type {WorkerSettings} from './settings.js'

export type ToPrimary =
  | {type: 'listening'}
  /** it served its maxRequests: the primary starts its replacement, then tells it to shut down */
  | {type: 'retire'; served: number}
  | {type: 'listen-error'; message: string; code?: string}
  | {
      type: 'counts'
      requests: number
      captured: number
      dropped: number
      problem?: string
      elu: number
      waited: number
      refused: number
      waiting: number
    }
export type ToWorker =
  | {type: 'journal-full'; full: boolean}
  | {type: 'sinks-behind'; behind: boolean}
  | {type: 'shutdown'; retiring?: boolean}
  | {type: 'reopen'}

/** How long a worker being replaced (maxRequests) still serves requests on its open kept-alive connections: see shutdown. */
const RETIRE_GRACE_MS = 1000

const send = (msg: ToPrimary) => process.connected && process.send?.(msg)
const here = fileURLToPath(import.meta.url)
const BUILDER_ENTRY = path.join(path.dirname(here), here.endsWith('.ts') ? 'builder-thread.ts' : 'builder-thread.js')

type Counts = {requests: number; captured: number; dropped: number; problem?: string}

/**
 * Hands exchanges to the builder thread in batches: one message per turn of
 * the event loop, or per 256 exchanges or 1 MiB of bodies. Bodies handed off
 * and not built yet are bounded by s.handoffMaxBytes (see the setting
 * handoffMaxBytes): past it, with a gate (whenFull: block) it closes the gate
 * instead of dropping, and opens it again below three quarters of the bound.
 */
function startBuilder(s: WorkerSettings, counts: Counts, gate?: IntakeGate, died: {then?: () => void} = {}) {
  const thread = new Worker(BUILDER_ENTRY, {
    workerData: {...s, writerId: `${Date.now().toString(36)}-${process.pid}`},
    resourceLimits: {maxYoungGenerationSizeMb: 6},
  })
  let batch = new WireBatch()
  let scheduled = false
  let inFlight = 0 // bytes of batches sent and not yet reported built
  let seq = 0
  // the held responses of the batch being filled, and of each batch sent until the builder says it is journaled
  let waiters: Array<() => void> = []
  const held = new Map<number, Array<() => void>>()
  const flush = () => {
    scheduled = false
    if (!batch.items.length) return
    const {items, arena} = batch.seal()
    const bytes = arena.length + items.length * 512 // the bodies, and about what an exchange's other fields take (read before the arena is transferred)
    const ack = waiters.length > 0
    if (ack) held.set(++seq, waiters)
    thread.postMessage({type: 'batch', items, arena, bytes, seq, ack} satisfies ToBuilder, [arena.buffer as ArrayBuffer])
    inFlight += bytes
    batch = new WireBatch()
    waiters = []
  }
  let closing = false
  // A builder thread that dies would leave the proxy capturing into nothing: the worker exits with
  // it and the primary starts a replacement (exchanges handed off and not yet built are lost, and
  // the log says so).
  thread.on('error', (error) => process.stderr.write(`[audit-logs] a record builder thread failed: ${error.message}\n`))
  let dead = false
  thread.on('exit', () => {
    if (closing) return
    dead = true
    process.stderr.write(
      `[audit-logs] worker ${process.pid}: its record builder stopped with ${inFlight} bytes of exchanges not built; the worker exits and is replaced\n`,
    )
    // the responses held for those records are let go: the records are lost (said above), the app's answers need not be
    for (const answers of [...held.values(), waiters]) for (const answer of answers) answer()
    held.clear()
    waiters = []
    counts.problem = "a worker's record builder stopped: the records of the exchanges it held are lost (the worker is replaced)"
    died.then?.() // the worker reports its counts (not server.close(): closing its cluster listener while it exits hung a request in CI)
    setTimeout(() => process.exit(1), 200) // time for those answers, and the counts, to be written
  })
  const ready = new Promise<void>((resolve, reject) => {
    thread.once('error', reject)
    thread.on('message', (msg: FromBuilder) => {
      if (msg.type === 'ready') resolve()
      if (msg.type === 'counts') {
        counts.captured += msg.captured
        counts.dropped += msg.dropped
        counts.problem = msg.problem ?? counts.problem
        inFlight -= msg.builtBytes
        if (gate && inFlight + batch.bytes < s.handoffMaxBytes * 0.75) gate.set('handoff', false)
      }
      if (msg.type === 'journaled')
        for (const n of msg.seqs) {
          for (const answer of held.get(n) ?? []) answer()
          held.delete(n)
        }
    })
  })
  return {
    ready,
    submit(x: Parameters<Capture['submit']>[0], full: boolean, journaled?: () => void) {
      if (dead) {
        // the worker is exiting (it stopped accepting): what it still answers is counted lost
        counts.dropped += full ? 2 : 1
        return journaled?.()
      }
      // past the bound with a gate, the exchange is kept (its response was sent) and new requests wait until the builder catches up
      if (inFlight + batch.bytes > s.handoffMaxBytes && gate) gate.set('handoff', true)
      else if (inFlight + batch.bytes > s.handoffMaxBytes) {
        counts.dropped += full ? 2 : 1 // its request and access records
        counts.problem = "a worker's record builder is far behind its proxy (the host is short of CPU)"
        journaled?.() // dropped and counted (whenFull: drop): the response is not held for it
        return
      }
      batch.add(x, full)
      if (journaled) waiters.push(journaled)
      if (batch.items.length >= 256 || batch.bytes >= 1024 * 1024) flush()
      else if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
    },
    post: (msg: ToBuilder) => thread.postMessage(msg),
    async close() {
      closing = true
      flush()
      await new Promise<void>((resolve) => {
        thread.on('message', (msg: FromBuilder) => msg.type === 'closed' && resolve())
        thread.postMessage({type: 'close'} satisfies ToBuilder)
      })
      await thread.terminate()
    },
  }
}

/**
 * One proxy worker: serves the shared port and taps bodies; its builder
 * thread turns exchanges into records and appends them to the worker's own
 * journal segments. It never talks to a database.
 */
export async function startWorker(s: WorkerSettings): Promise<void> {
  failpoint('replacement-fails') // a worker that dies before it listens
  // a message from the primary can come while the worker starts (a shutdown): it is kept until the worker can act on it
  let handle: ((msg: ToWorker) => void) | undefined
  const early: ToWorker[] = []
  process.on('message', (msg: ToWorker) => (handle ? handle(msg) : early.push(msg)))
  const counts: Counts = {requests: 0, captured: 0, dropped: 0}
  // whenFull: block: at the journal's bound (the primary says) or the hand-off bound, new requests wait here
  const gate = s.capture && s.whenFull === 'block' ? new IntakeGate(s.blockTimeoutMs) : undefined
  const builderDied: {then?: () => void} = {}
  const builder = s.capture ? startBuilder(s, counts, gate, builderDied) : undefined
  await builder?.ready
  const capture: Capture | undefined = builder && {
    exclusions: new Exclusions({paths: s.excludePaths, extensions: s.excludeExtensions, methods: s.excludeMethods}),
    clientIp: new ClientIp(s.trustedProxies),
    bodyLimit: s.bodyLimit,
    submit: builder.submit,
    holdAnswer: s.recordBeforeAnswer,
  }
  // gunicorn's max_requests: this worker's share, jitter included (randint(0, jitter), both ends)
  const retireAfter = s.maxRequests > 0 ? s.maxRequests + Math.floor(Math.random() * (s.maxRequestsJitter + 1)) : 0
  let served = 0
  let stopping = false
  // upgraded connections (WebSockets): http's closeAllConnections does not know them, and net's close waits for them
  const upgraded = new Set<Duplex>()
  const accessLog = s.accessLog ? accessLogStream(s.accessLog) : undefined
  const masker = accessLog && Masker.of(s)
  const server: http.Server = createProxy({
    upstream: new URL(s.upstream!),
    capture,
    gate,
    maxHeaderSize: s.maxHeaderSize,
    upstreamTimeoutMs: s.upstreamTimeoutMs,
    draining: () => stopping,
    onExchange: accessLog && ((x, httpVersion) => accessLog.write(accessLogLine(x, httpVersion, masker!))),
    onRequest: () => {
      counts.requests++
      // the worker goes on serving until its replacement listens and the primary says shutdown; it asks
      // again after as many more if the primary could not start a replacement (it ignores a worker it is replacing)
      if (retireAfter > 0 && ++served % retireAfter === 0) send({type: 'retire', served})
    },
  })
  // how busy the proxy's event loop was over the last half second: the primary defers shipping while it is saturated
  let loop = performance.eventLoopUtilization()
  const busyFailpoint = enabled('proxy-busy') // the proxy reports itself saturated
  const sendCounts = (elu: number) => {
    send({type: 'counts', ...counts, elu, waited: gate?.waited ?? 0, refused: gate?.refused ?? 0, waiting: gate?.waiting ?? 0})
    counts.requests = counts.captured = counts.dropped = 0
    counts.problem = undefined
    if (gate) gate.waited = gate.refused = 0
  }
  const report = setInterval(() => {
    const now = performance.eventLoopUtilization()
    sendCounts(busyFailpoint ? 1 : performance.eventLoopUtilization(now, loop).utilization)
    loop = now
  }, 500)
  report.unref()
  builderDied.then = () => {
    stopping = true // answers ask their clients to close their connections
    sendCounts(0)
    setTimeout(() => sendCounts(0), 150) // what it answered since, before it exits at 200 ms
  }

  const shutdown = (retiring = false) => {
    if (stopping) return
    stopping = true
    // at the run's end, requests waiting for room are refused now, not held to the end of the shutdown; a
    // worker being replaced lets them wait their turn (its replacement serves the new ones)
    if (!retiring) gate?.shutdown()
    // Stop accepting; let in-flight requests finish, within the bound; then flush the records.
    const closed = async () => {
      if (retiring && enabled('retire-hangs')) return // never exits: the primary's bound must
      await builder?.close()
      await accessLog?.close()
      clearInterval(report)
      sendCounts(0)
      setTimeout(() => process.exit(0), 20) // let the IPC message go out
    }
    const closeIdle = () => {
      server.closeIdleConnections()
      const idle = setInterval(() => server.closeIdleConnections(), 100)
      idle.unref()
    }
    if (retiring) {
      // A kept-alive connection closed while idle races the client's next request on it (ECONNRESET).
      // A worker being replaced stops listening only (net's close: http's also closes the idle
      // connections) and serves what comes on its open connections for RETIRE_GRACE_MS, answering
      // with Connection: close (the proxy's draining), so a busy client moves to the new worker itself.
      net.Server.prototype.close.call(server, () => void closed())
      setTimeout(closeIdle, RETIRE_GRACE_MS).unref()
    } else {
      server.close(() => void closed())
      closeIdle()
    }
    // at shutdownTimeoutMs (gunicorn's graceful_timeout) what is still open is cut: a long download, an SSE
    // stream, a WebSocket; then the listener's close completes and the records are flushed
    setTimeout(() => {
      const open = upgraded.size
      server.closeAllConnections()
      for (const socket of upgraded) socket.destroy()
      if (open)
        process.stderr.write(
          `[audit-logs] worker ${process.pid}: ${open} WebSocket connection(s) still open after shutdownTimeoutMs (${s.shutdownTimeoutMs} ms) closed\n`,
        )
    }, s.shutdownTimeoutMs).unref()
  }

  handle = (msg) => {
    if (msg.type === 'journal-full') {
      if (gate) gate.set('journal', msg.full)
      else builder?.post({type: 'journal-full', full: msg.full})
    }
    if (msg.type === 'sinks-behind') gate?.set('lag', msg.behind)
    if (msg.type === 'shutdown') shutdown(msg.retiring)
    if (msg.type === 'reopen') accessLog?.reopen()
  }
  for (const msg of early.splice(0)) handle(msg)
  process.on('disconnect', () => shutdown()) // the primary is gone
  process.on('SIGINT', () => shutdown())
  process.on('SIGTERM', () => shutdown())
  process.on('SIGHUP', () => {})

  server.on('upgrade', (_req, socket: Duplex) => {
    upgraded.add(socket)
    socket.once('close', () => upgraded.delete(socket))
  })
  server.on('error', (error: NodeJS.ErrnoException) => {
    send({type: 'listen-error', message: error.message, code: error.code})
    setTimeout(() => process.exit(1), 100)
  })
  server.listen({host: s.bind.host, port: s.bind.port}, () => send({type: 'listening'}))
}
