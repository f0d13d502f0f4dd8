import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type {ResolvedConfig} from '../config/resolve.js'
import {upstreamTarget} from '../capture/upstream.js'
import {usageError} from '../errors.js'
import type {LoginSettings} from '../capture/logins.js'

/** What a proxy worker needs; passed from the primary as JSON (no database URL: workers never see it). */
export type WorkerSettings = {
  bind: {host: string; port: number}
  upstream: string | null
  capture: boolean
  journalDir: string
  bodyLimit: number
  maxHeaderSize: number
  slowMs: number
  instance: string
  excludePaths: string[]
  excludeExtensions: string[]
  excludeMethods: string[]
  sensitiveFields: string[]
  sensitiveHeaders: string[]
  trustedProxies: string[]
  shutdownTimeoutMs: number
  /** At the journal's bound: hold new requests (block) or drop their records (drop). */
  whenFull: 'block' | 'drop'
  /** A response's last bytes wait until its records are written to the journal (see the setting recordBeforeAnswer). */
  recordBeforeAnswer: boolean
  /** How long a request waits for room (block) before it is refused with 503. */
  blockTimeoutMs: number
  /** Bytes of bodies handed to the builder thread and not built yet, at most (past it: as at the journal's bound). */
  handoffMaxBytes: number
  configFile?: string
  /** How long the app may stay silent (connect, first byte, between bytes) before 504; 0: no limit. */
  upstreamTimeoutMs: number
  /** Requests after which a worker is replaced (its own share of the jitter added); 0: never. */
  maxRequests: number
  maxRequestsJitter: number
  /** Where each worker writes gunicorn-style access lines: '-' for stdout, an absolute file path, or none. */
  accessLog?: string
  /** the login routes' watch, when loginRoutes names any */
  logins?: LoginSettings
}

/** Bodies are kept up to maxBodyLength; AUDIT_LOGS_SAVE_FULL_BODY lifts that to this hard cap. */
export const FULL_BODY_CAP = 1024 * 1024
export const MAX_HEADER_SIZE = 2 * 1024 * 1024

/** The run's events endpoint, from the admin listener's address (one bound to every address is reached on loopback). */
export function eventsUrl(config: Pick<ResolvedConfig, 'adminBind'>): string {
  const {host, port} = parseHostPort('adminBind', config.adminBind)
  const h = ['0.0.0.0', '::', ''].includes(host) ? '127.0.0.1' : host
  return `http://${net.isIPv6(h) ? `[${h}]` : h}:${port}/_audit/events`
}

export function parseHostPort(key: string, value: string): {host: string; port: number} {
  const i = value.lastIndexOf(':')
  const host = value.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0'
  const port = Number(value.slice(i + 1))
  if (!(port >= 0 && port <= 65535)) throw usageError(`${key} "${value}" has no valid port: use HOST:PORT, e.g. 0.0.0.0:8000`)
  return {host, port}
}

type HostPort = {host: string; port: number}
const WILDCARD = new Set(['0.0.0.0', '::', ''])
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1'])

/** Whether a connection to `to` could reach a listener on `listener` of this host (best effort: this host's other addresses are not known). */
export function reaches(to: HostPort, listener: HostPort): boolean {
  if (to.port !== listener.port || to.port === 0) return false // port 0: the OS picks one, never the other's
  if (to.host === listener.host || WILDCARD.has(listener.host) || WILDCARD.has(to.host)) return true
  return LOOPBACK.has(to.host) && LOOPBACK.has(listener.host)
}

/** What run's addresses must not be: the proxy's own upstream (every request would come back to it), the admin listener's. */
export function assertDistinctAddresses(bind: HostPort, admin: HostPort, upstream: string | null): void {
  if (reaches(admin, bind) || reaches(bind, admin)) {
    throw usageError(
      `--bind and --admin-bind overlap (${bind.host}:${bind.port} and ${admin.host}:${admin.port}): the proxy and /metrics need a port each`,
      ['Give --admin-bind another port, e.g. 127.0.0.1:9464'],
    )
  }
  if (!upstream) return
  if (reaches(upstreamTarget(new URL(upstream)), bind)) {
    throw usageError(
      `--upstream ${upstream} is this proxy's own address (--bind ${bind.host}:${bind.port}): every request would be sent back to it`,
      ['Give --upstream the address the app listens on, or spawn it: audit-logs run -- node server.js'],
    )
  }
}

export function workerSettings(config: ResolvedConfig): WorkerSettings {
  return {
    bind: parseHostPort('bind', config.bind),
    upstream: config.upstream ?? null,
    capture: config.capture,
    journalDir: path.resolve(config.journalDir ?? path.join(config.dataDir, 'journal')),
    bodyLimit: config.saveFullBody ? FULL_BODY_CAP : config.maxBodyLength,
    maxHeaderSize: MAX_HEADER_SIZE,
    slowMs: config.slowMs,
    instance: config.instance ?? os.hostname(),
    excludePaths: config.excludePaths,
    excludeExtensions: config.excludeExtensions,
    excludeMethods: config.excludeMethods,
    sensitiveFields: config.sensitiveFields,
    sensitiveHeaders: config.sensitiveHeaders,
    trustedProxies: config.trustedProxies,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    whenFull: config.whenFull,
    recordBeforeAnswer: config.recordBeforeAnswer,
    blockTimeoutMs: config.blockTimeoutMs,
    handoffMaxBytes: config.handoffMaxBytes,
    configFile: config.configFile ? path.resolve(config.configFile) : undefined,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    maxRequests: config.maxRequests,
    maxRequestsJitter: config.maxRequestsJitter,
    accessLog: config.accessLog === undefined || config.accessLog === '-' ? config.accessLog : path.resolve(config.accessLog),
    logins: config.loginRoutes.length
      ? {
          routes: config.loginRoutes,
          successStatus: config.loginSuccessStatus,
          usernameFields: config.loginUsernameFields,
          bruteforceThreshold: config.bruteforceThreshold,
          bruteforceWindowMs: config.bruteforceWindowMs,
        }
      : undefined,
  }
}
