import os from 'node:os'
import type {AlertItem} from './conditions.js'
import {redactEndpoint, registerSecret} from '../util/redact.js'
import {headline, textBody, webhookBody} from './message.js'

export type ChannelName = 'webhook' | 'email'

/** Where alerts go: one attempt per message; a failure is the caller's to log and count. */
export type Channel = {
  name: ChannelName
  /** scheme://host: what logs may show of its address (a webhook's path often holds its token) */
  shown: string
  send(items: AlertItem[]): Promise<void>
  close(): void
}

/**
 * A webhook URL's user and password (https://user:password@host/...) as an `Authorization: Basic` header,
 * and the URL without them: fetch refuses a URL that holds credentials. The header's value is registered
 * as a secret, as the password is (registerEndpoint), so no message shows it.
 */
export function webhookTarget(url: string): {target: string; authorization?: string} {
  const u = new URL(url)
  if (!u.username && !u.password) return {target: url}
  const credentials = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`
  u.username = ''
  u.password = ''
  const authorization = `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`
  registerSecret(authorization.slice('Basic '.length))
  return {target: u.href, authorization}
}

/**
 * A webhook: one POST of JSON (or Slack's shape) per message, cut after timeoutMs; no redirect followed.
 * A user and password in the URL are sent as Basic authentication.
 */
export function webhookChannel(url: string, format: 'json' | 'slack', instance: string, timeoutMs: number): Channel {
  const aborts = new Set<AbortController>()
  const {target, authorization} = webhookTarget(url)
  return {
    name: 'webhook',
    shown: redactEndpoint(url),
    async send(items) {
      const abort = new AbortController()
      aborts.add(abort)
      const timer = setTimeout(() => abort.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
      try {
        const res = await fetch(target, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'audit-logs-alerts',
            ...(authorization ? {authorization} : {}),
          },
          body: webhookBody(format, instance, items, new Date()),
          redirect: 'manual',
          signal: abort.signal,
        })
        await res.arrayBuffer().catch(() => {}) // the answer is read (and let go) within the same timeout
        if (res.status < 200 || res.status > 299) throw new Error(`HTTP ${res.status}`)
      } catch (error) {
        if (abort.signal.aborted) throw abort.signal.reason as Error
        const cause = (error as {cause?: {code?: string; message?: string}}).cause
        throw cause?.message ? new Error(cause.message) : error
      } finally {
        clearTimeout(timer)
        aborts.delete(abort)
      }
    },
    close() {
      for (const a of aborts) a.abort(new Error('the run is stopping'))
    },
  }
}

/**
 * E-mail over SMTP (nodemailer): smtp:// (STARTTLS when the server offers it) or smtps:// (TLS from the
 * start), credentials in the URL. Each timeout of nodemailer is timeoutMs; one connection per message
 * (alerts are rare: a pool would hold a connection open for nothing).
 */
export async function emailChannel(
  smtpUrl: string,
  from: string | undefined,
  to: string[],
  instance: string,
  timeoutMs: number,
): Promise<Channel> {
  // loaded only when alerts are mailed: nodemailer is a sizeable library the proxy otherwise never needs
  const nodemailer = await import('nodemailer')
  const u = new URL(smtpUrl)
  const secure = u.protocol === 'smtps:'
  const transport = nodemailer.createTransport({
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : secure ? 465 : 587,
    secure,
    auth: u.username || u.password ? {user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password)} : undefined,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  })
  const sender = from ?? `audit-logs@${os.hostname()}`
  return {
    name: 'email',
    shown: redactEndpoint(smtpUrl),
    async send(items) {
      await transport.sendMail({from: sender, to, subject: headline(instance, items), text: textBody(instance, items)})
    },
    close() {
      transport.close()
    },
  }
}

/**
 * One channel's outbox: at most one message in flight; what comes meanwhile waits in a map keyed by
 * condition and state (a newer digest replaces an older one), so the outbox is bounded by the number
 * of conditions and goes out as one message when the channel is free. A failed message is not sent again.
 */
export class Outbox {
  private readonly pending = new Map<string, AlertItem>()
  private sending: Promise<void> | undefined

  constructor(
    readonly channel: Channel,
    private readonly outcome: (ok: boolean, error?: Error) => void,
  ) {}

  add(items: AlertItem[]): void {
    for (const i of items) {
      const key = `${i.condition}:${i.sink ?? ''}:${i.state}`
      this.pending.delete(key) // to the end: the order stays the order of events
      this.pending.set(key, i)
    }
    this.flush()
  }

  /** Whether a message is on its way now. */
  get busy(): boolean {
    return this.sending !== undefined
  }

  /** Resolves when nothing is in flight (what is pending then stays unsent). */
  idle(): Promise<void> {
    return this.sending ?? Promise.resolve()
  }

  private flush(): void {
    if (this.sending || this.pending.size === 0) return
    const items = [...this.pending.values()]
    this.pending.clear()
    this.sending = this.channel.send(items).then(
      () => this.outcome(true),
      (error: Error) => this.outcome(false, error),
    )
    void this.sending.finally(() => {
      this.sending = undefined
      this.flush()
    })
  }
}
