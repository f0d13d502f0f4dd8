import {eventLine} from '../events/record.js'
import {parseStatus, type StatusTerm} from '../filters/parse.js'
import {statusMatches} from '../filters/predicate.js'
import {bodyText} from './body.js'
import type {Masker} from './masking.js'
import type {Exchange} from './record.js'

/**
 * Login attempts without app changes: on the configured login routes the
 * proxy records a LOGIN or LOGIN_FAILED event from the response's status,
 * with the username taken from the request body's configured field (never
 * the password: no other field is read). Repeated failures from one address
 * or for one username within a window flag the request
 * `suspicious:bruteforce` and raise one SECURITY event per window.
 */
export type LoginSettings = {
  /** "METHOD /path" or "METHOD /path STATUSES" (the statuses that mean success, in the filter language: 302, 2xx,302) */
  routes: string[]
  /** success when a route names none */
  successStatus: string
  usernameFields: string[]
  bruteforceThreshold: number
  bruteforceWindowMs: number
}

type Route = {method: string; path: string; success: StatusTerm[]}

const ROUTE = /^([A-Z]{1,20})\s+(\/\S*)(?:\s+(\S+))?$/
export const ROUTE_FORM = '"METHOD /path" or "METHOD /path STATUSES", e.g. "POST /login" or "POST /accounts/login/ 302"'

/** The routes, parsed; a wrong one throws with the accepted form. */
export function parseRoutes(routes: string[], successStatus: string): Route[] {
  return routes.map((text) => {
    const m = ROUTE.exec(text.trim())
    if (!m) throw new Error(`login route "${text}" is not understood: ${ROUTE_FORM}`)
    return {method: m[1], path: m[2], success: parseStatus(m[3] ?? successStatus).any}
  })
}

const matches = (terms: StatusTerm[], s: number) => terms.some((t) => statusMatches(t, s))

/** Failures per key (an address, a username) within the window: timestamps, oldest first; memory bounded by MAX_KEYS. */
class FailureWindow {
  private readonly failures = new Map<string, number[]>()
  private readonly alerted = new Map<string, number>()
  private static readonly MAX_KEYS = 20_000
  constructor(
    private readonly threshold: number,
    private readonly windowMs: number,
  ) {}

  /** Counts a failure; returns the failures in the window, and whether this one starts an alert (once per window per key). */
  add(key: string, now: number): {count: number; alert: boolean} {
    let list = this.failures.get(key)
    if (!list) {
      if (this.failures.size >= FailureWindow.MAX_KEYS) this.failures.delete(this.failures.keys().next().value!)
      this.failures.set(key, (list = []))
    }
    list.push(now)
    while (list.length && list[0] <= now - this.windowMs) list.shift()
    if (list.length > this.threshold) list.shift() // only whether the threshold is reached matters: a flood costs no memory
    const count = list.length
    if (count < this.threshold) return {count, alert: false}
    const until = this.alerted.get(key) ?? 0
    if (until > now) return {count, alert: false}
    if (this.alerted.size >= FailureWindow.MAX_KEYS) this.alerted.delete(this.alerted.keys().next().value!)
    this.alerted.set(key, now + this.windowMs)
    return {count, alert: true}
  }
}

/** The username field of a login body (JSON or a form), bounded; undefined when there is none. */
export function usernameOf(text: string | null, type: string, fields: string[]): string | undefined {
  if (!text) return undefined
  let value: unknown
  try {
    if (/json/i.test(type)) {
      const body = JSON.parse(text) as Record<string, unknown>
      if (body && typeof body === 'object') value = fields.map((f) => body[f]).find((v) => typeof v === 'string' || typeof v === 'number')
    } else if (/x-www-form-urlencoded/i.test(type) || !type) {
      const form = new URLSearchParams(text)
      value = fields.map((f) => form.get(f)).find((v) => v !== null)
    }
  } catch {
    return undefined // not the body the route promised: no username
  }
  return value === undefined || value === null || value === '' ? undefined : String(value).slice(0, 200)
}

export class LoginWatch {
  private readonly routes: Route[]
  private readonly byIp: FailureWindow
  private readonly byUser: FailureWindow

  constructor(
    private readonly settings: LoginSettings,
    private readonly options: {masker: Masker; instance: string},
  ) {
    this.routes = parseRoutes(settings.routes, settings.successStatus)
    this.byIp = new FailureWindow(settings.bruteforceThreshold, settings.bruteforceWindowMs)
    this.byUser = new FailureWindow(settings.bruteforceThreshold, settings.bruteforceWindowMs)
  }

  /**
   * For an exchange on a login route: the event lines to journal, and the flags its request record gets.
   * Undefined for any other exchange, and for an answer that says nothing about the credentials (5xx, none).
   */
  observe(x: Exchange, userId: string | null, now = Date.now()): {lines: string[]; flags: string[]} | undefined {
    const path = x.url.split('?', 1)[0]
    const route = this.routes.find((r) => r.method === x.method && r.path === path)
    if (!route || x.status <= 0 || x.status >= 500) return undefined
    const ok = matches(route.success, x.status)
    const type = String(x.requestHeaders['content-type'] ?? '')
    const username = usernameOf(
      bodyText(x.requestBody, x.requestHeaders as Record<string, string>).text,
      type,
      this.settings.usernameFields,
    )
    const requestId = x.requestHeaders['x-request-id'] as string | undefined
    const event = (input: Record<string, unknown>) =>
      eventLine(
        {
          created_at: new Date(x.start).toISOString(),
          request_id: requestId,
          ...(x.ip ? {ip: x.ip.replace(/^::ffff:/, '')} : {}),
          ...input,
        },
        this.options,
      ).line
    const who = username ?? (ok ? (userId ?? undefined) : undefined)
    const lines = [
      event({
        action: ok ? 'LOGIN' : 'LOGIN_FAILED',
        ...(who || userId ? {actor: {id: (ok ? userId : undefined) ?? who, ...(who ? {name: who} : {})}} : {}),
        extra: {route: `${route.method} ${route.path}`, status_code: x.status, source: 'proxy'},
      }),
    ]
    const flags: string[] = []
    if (!ok) {
      const {bruteforceThreshold: threshold, bruteforceWindowMs: windowMs} = this.settings
      const keys: Array<['ip' | 'user', string]> = []
      if (x.ip) keys.push(['ip', x.ip])
      if (username) keys.push(['user', username])
      for (const [kind, key] of keys) {
        const {count, alert} = (kind === 'ip' ? this.byIp : this.byUser).add(key, now)
        if (count < threshold) continue
        if (!flags.length) flags.push('suspicious:bruteforce')
        if (alert)
          lines.push(
            event({
              action: 'BRUTEFORCE_SUSPECTED',
              severity: 'SECURITY',
              ...(kind === 'user' ? {actor: {id: key, name: key}} : {}),
              reason: `${count} failed logins ${kind === 'ip' ? `from ${key}` : `for ${key}`} within ${Math.round(windowMs / 1000)} s (bruteforceThreshold ${threshold})`,
              extra: {key: kind, failures: count, window_ms: windowMs, route: `${route.method} ${route.path}`, source: 'proxy'},
            }),
          )
      }
    }
    return {lines, flags}
  }
}
