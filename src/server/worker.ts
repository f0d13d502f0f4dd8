import type http from 'node:http'
import {loadConfigFile} from '../config/resolve.js'
import {ClientIp} from '../capture/detect.js'
import {Exclusions} from '../capture/exclusions.js'
import {Masker} from '../capture/masking.js'
import {type Capture, createProxy} from '../capture/proxy.js'
import type {Hooks} from '../capture/record.js'
import {JournalWriter} from '../pipeline/journal.js'
import type {WorkerSettings} from './settings.js'

export type ToPrimary =
  | {type: 'listening'}
  | {type: 'listen-error'; message: string; code?: string}
  | {type: 'counts'; requests: number; captured: number; dropped: number}
export type ToWorker = {type: 'journal-full'; full: boolean} | {type: 'upstream'; url: string} | {type: 'shutdown'}

const send = (msg: ToPrimary) => process.connected && process.send?.(msg)

async function hooksFrom(file: string | undefined): Promise<Hooks> {
  if (!file || file.endsWith('.json')) return {}
  const mod = await loadConfigFile(file)
  const pick = (name: string) => (typeof mod[name] === 'function' ? (mod[name] as never) : undefined)
  return {userId: pick('userId'), extra: pick('extra'), mask: pick('mask')}
}

/**
 * One proxy worker: serves the shared port, builds records and appends
 * them to its own journal segments. It never talks to a database.
 */
export async function startWorker(s: WorkerSettings): Promise<void> {
  const counts = {requests: 0, captured: 0, dropped: 0}
  let journalFull = false
  const journal = s.capture ? new JournalWriter(s.journalDir, `${Date.now().toString(36)}-${process.pid}`) : undefined
  let capture: Capture | undefined
  if (s.capture) {
    capture = {
      record: {masker: new Masker({fields: s.sensitiveFields, headers: s.sensitiveHeaders}), maxBodyLength: s.bodyLimit, slowMs: s.slowMs, instance: s.instance, hooks: await hooksFrom(s.configFile)},
      exclusions: new Exclusions({paths: s.excludePaths, extensions: s.excludeExtensions, methods: s.excludeMethods}),
      clientIp: new ClientIp(s.trustedProxies),
      bodyLimit: s.bodyLimit,
      building: 0,
      emit: (line) => {
        if (journalFull) {
          counts.dropped++
          return
        }
        journal!.append(line)
        counts.captured++
      },
    }
  }
  const server: http.Server = createProxy({upstream: new URL(s.upstream!), capture, maxHeaderSize: s.maxHeaderSize, onRequest: () => counts.requests++})
  const report = setInterval(() => {
    if (counts.requests || counts.captured || counts.dropped) {
      send({type: 'counts', ...counts})
      counts.requests = counts.captured = counts.dropped = 0
    }
  }, 500)
  report.unref()

  let stopping = false
  const shutdown = () => {
    if (stopping) return
    stopping = true
    // Stop accepting; let in-flight requests finish, within the bound.
    server.close(async () => {
      for (let i = 0; i < 100 && capture && capture.building > 0; i++) await new Promise((r) => setTimeout(r, 10))
      journal?.close()
      clearInterval(report)
      send({type: 'counts', ...counts})
      // let the IPC message go out before exiting
      setTimeout(() => process.exit(0), 20)
    })
    server.closeIdleConnections()
    const idle = setInterval(() => server.closeIdleConnections(), 100)
    idle.unref()
    setTimeout(() => server.closeAllConnections(), s.shutdownTimeoutMs).unref()
  }

  process.on('message', (msg: ToWorker) => {
    if (msg.type === 'journal-full') journalFull = msg.full
    if (msg.type === 'shutdown') shutdown()
  })
  process.on('disconnect', shutdown) // the primary is gone
  process.on('SIGINT', shutdown)
  process.on('SIGTERM', shutdown)
  process.on('SIGHUP', () => {})

  server.on('error', (error: NodeJS.ErrnoException) => {
    send({type: 'listen-error', message: error.message, code: error.code})
    setTimeout(() => process.exit(1), 100)
  })
  server.listen({host: s.bind.host, port: s.bind.port}, () => send({type: 'listening'}))
}
