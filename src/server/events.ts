import {randomBytes} from 'node:crypto'
import type http from 'node:http'
import {Masker} from '../capture/masking.js'
import type {ResolvedConfig} from '../config/resolve.js'
import {EventError, eventLine} from '../events/record.js'
import {JournalWriter} from '../pipeline/journal.js'
import {writerId} from './own-records.js'
import type {Hooks} from '../capture/record.js'
import type {RunPlan} from './run-plan.js'
import {isLoopback} from '../util/net.js'
import {sameSecret} from '../util/secrets.js'

/**
 * POST /_audit/events on the admin listener: an app's events (JSON, one
 * object or an array; or NDJSON) validated one by one, the good ones
 * journaled and synced to disk before the answer, so a 2xx means durable.
 * The answer says which were refused and why. Bounded: a bearer token, the
 * batch's size in events and bytes (over one, 413), events a second per
 * client address (429), each naming its bound with nothing of the batch
 * kept; an event over its bytes is refused alone, the rest kept.
 */
export type EventIngest = {
  handle(req: http.IncomingMessage, res: http.ServerResponse): void
  /** the token an app spawned by run is given (AUDIT_LOGS_EVENTS_TOKEN), when events take one */
  readonly token: string | undefined
  counts(): {accepted: number; refused: number; rejectedBatches: number}
  close(): void
}

type Limits = {maxBatch: number; maxBatchBytes: number; maxEventBytes: number; ratePerClient: number}

/** A token bucket per client address: `rate` events a second, as many at once (at least one whole batch). */
class RateLimiter {
  private readonly buckets = new Map<string, {tokens: number; at: number}>()
  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {}

  /** Takes n events' worth; the seconds to wait when there is not enough. */
  take(client: string, n: number, now = Date.now()): number {
    let b = this.buckets.get(client)
    if (!b) {
      if (this.buckets.size >= 10_000) this.buckets.delete(this.buckets.keys().next().value!) // the oldest client: memory stays bounded
      b = {tokens: this.burst, at: now}
      this.buckets.set(client, b)
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate)
    b.at = now
    if (n === 0) return b.tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - b.tokens) / this.rate))
    if (b.tokens >= n) {
      b.tokens -= n
      return 0
    }
    return Math.max(1, Math.ceil((n - b.tokens) / this.rate))
  }
}

function answer(res: http.ServerResponse, code: number, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  if (res.headersSent) return
  res.writeHead(code, {'content-type': 'application/json', 'cache-control': 'no-store', ...headers})
  res.end(JSON.stringify(body))
}

/**
 * The token events take: the configured eventsToken; else, for an app that run spawns or the viewer
 * it serves (--ui, unless eventsAllowNoToken), one made for this run (given to them only); else none, and events are refused
 * unless eventsAllowNoToken and the admin listener is loopback-only.
 */
export function eventsToken(config: Pick<ResolvedConfig, 'eventsToken' | 'command' | 'ui' | 'eventsAllowNoToken'>): string | undefined {
  if (config.eventsToken) return config.eventsToken
  // the viewer alone makes none where events are open without one: the apps that send them so must go on being heard
  const made = config.command?.length || (config.ui && !config.eventsAllowNoToken)
  return made ? randomBytes(24).toString('hex') : undefined
}

export function eventIngest(
  plan: RunPlan,
  config: ResolvedConfig,
  options: {token: string | undefined; hooks: Hooks; full: () => boolean},
): EventIngest {
  const limits: Limits = {
    maxBatch: config.eventsMaxBatch,
    maxBatchBytes: config.eventsMaxBatchBytes,
    maxEventBytes: config.eventsMaxEventBytes,
    ratePerClient: config.eventsRatePerClient,
  }
  const {token} = options
  const openWithoutToken = token === undefined && config.eventsAllowNoToken && isLoopback(plan.admin.host)
  const masker = Masker.of(plan.settings)
  const limiter = new RateLimiter(limits.ratePerClient, Math.max(limits.ratePerClient, limits.maxBatch))
  const counts = {accepted: 0, refused: 0, rejectedBatches: 0}
  let journal: JournalWriter | undefined // made with the first event: a run that gets none leaves no empty segment
  const writer = () => (journal ??= new JournalWriter(plan.settings.journalDir, writerId('events'), {syncEveryFlush: true}))

  const refuse = (res: http.ServerResponse, code: number, error: string, headers: Record<string, string> = {}) => {
    counts.rejectedBatches++
    answer(res, code, {error}, headers)
  }

  /** Why a request may not send events (undefined: it may), as the answer to give. */
  function denied(req: http.IncomingMessage): {code: number; error: string; headers?: Record<string, string>} | undefined {
    if (openWithoutToken) return undefined
    if (!token)
      return {
        code: 403,
        error:
          'events are off: no eventsToken is configured (AUDIT_LOGS_EVENTS_TOKEN); or set eventsAllowNoToken with a loopback admin listener',
      }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
    if (sameSecret(m?.[1], token)) return undefined
    return {
      code: 401,
      error: m ? 'the bearer token is wrong' : 'an Authorization: Bearer <eventsToken> header is needed',
      headers: {'www-authenticate': 'Bearer realm="audit-logs events"'},
    }
  }

  /** The events of a body, or why the body as a whole is refused. */
  function parseBody(body: Buffer, ndjson: boolean): {events: Array<{value?: unknown; error?: string; line?: number}>} | {error: string} {
    if (!ndjson) {
      let value: unknown
      try {
        value = JSON.parse(body.toString('utf8'))
      } catch (error) {
        return {error: `the body is not JSON (${(error as Error).message}); send an event object, an array of them, or NDJSON`}
      }
      return {events: (Array.isArray(value) ? value : [value]).map((v) => ({value: v}))}
    }
    const events: Array<{value?: unknown; error?: string; line?: number}> = []
    let start = 0
    for (let n = 1; start < body.length; n++) {
      let end = body.indexOf(10, start)
      if (end < 0) end = body.length
      const bytes = end - start
      const text = body.toString('utf8', start, end).trim()
      start = end + 1
      if (!text) continue
      if (bytes > limits.maxEventBytes)
        events.push({line: n, error: `the line is ${bytes} bytes, over eventsMaxEventBytes (${limits.maxEventBytes})`})
      else {
        try {
          events.push({line: n, value: JSON.parse(text)})
        } catch (error) {
          events.push({line: n, error: `not JSON: ${(error as Error).message}`})
        }
      }
    }
    return {events}
  }

  async function ingest(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, ndjson: boolean) {
    const parsed = parseBody(body, ndjson)
    if ('error' in parsed) return refuse(res, 400, parsed.error)
    const {events} = parsed
    if (events.length === 0) return refuse(res, 400, 'no events in the body')
    if (events.length > limits.maxBatch)
      return refuse(res, 413, `a batch of ${events.length} events, over eventsMaxBatch (${limits.maxBatch}): send smaller batches`)
    const wait = limiter.take(req.socket.remoteAddress ?? '', events.length)
    if (wait) return refuse(res, 429, `over eventsRatePerClient (${limits.ratePerClient} events a second)`, {'retry-after': String(wait)})
    const ids: string[] = []
    const lines: string[] = []
    const refused: Array<{index: number; line?: number; error: string}> = []
    events.forEach((e, index) => {
      if (e.error) return refused.push({index, line: e.line, error: e.error})
      try {
        const built = eventLine(e.value, {masker, instance: plan.settings.instance, mask: options.hooks.mask})
        const bytes = Buffer.byteLength(built.line)
        if (bytes > limits.maxEventBytes)
          throw new EventError(`the event is ${bytes} bytes as stored, over eventsMaxEventBytes (${limits.maxEventBytes})`)
        ids.push(built.id)
        lines.push(built.line)
      } catch (error) {
        if (!(error instanceof EventError)) throw error
        refused.push({index, ...(e.line === undefined ? {} : {line: e.line}), error: error.message})
      }
    })
    counts.refused += refused.length
    if (lines.length) {
      try {
        await writer().appendDurable(lines)
      } catch (error) {
        counts.refused += lines.length
        return refuse(
          res,
          503,
          `${(error as Error).message}; this batch may not be on disk: send it again (events with their ids are kept once)`,
          {
            'retry-after': '1',
          },
        )
      }
      counts.accepted += lines.length
    }
    answer(res, lines.length ? 200 : 400, {accepted: lines.length, ids, refused})
  }

  return {
    token,
    counts: () => ({...counts}),
    handle(req, res) {
      if (req.method !== 'POST') return refuse(res, 405, 'POST events here', {allow: 'POST'})
      const no = denied(req)
      if (no) {
        // nothing of an unauthorised body is read: the connection ends with the answer
        refuse(res, no.code, no.error, {...no.headers, connection: 'close'})
        res.on('finish', () => req.destroy())
        return
      }
      const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
      const ndjson = type === 'application/x-ndjson' || type === 'application/jsonl' || type === 'application/ndjson'
      if (!ndjson && type !== 'application/json') {
        req.resume()
        return refuse(res, 415, 'Content-Type: application/json (an event or an array of events) or application/x-ndjson (one a line)')
      }
      if (!plan.settings.capture) {
        req.resume()
        return refuse(res, 503, 'this run keeps no records (capture is off): events are refused')
      }
      // a client over its rate is refused before its body is read
      const wait = limiter.take(req.socket.remoteAddress ?? '', 0)
      if (wait) {
        req.resume()
        return refuse(res, 429, `over eventsRatePerClient (${limits.ratePerClient} events a second)`, {'retry-after': String(wait)})
      }
      if (options.full()) {
        req.resume()
        return refuse(res, 503, 'the journal is full (the stores are behind): events are refused until it has room', {'retry-after': '5'})
      }
      const tooLarge = () =>
        refuse(res, 413, `the body is over eventsMaxBatchBytes (${limits.maxBatchBytes} bytes): send smaller batches`, {
          connection: 'close',
        })
      if (Number(req.headers['content-length'] ?? 0) > limits.maxBatchBytes) {
        tooLarge()
        res.on('finish', () => req.destroy())
        return
      }
      const chunks: Buffer[] = []
      let size = 0
      req.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > limits.maxBatchBytes) {
          // nothing more is read or kept: the connection ends with the answer
          req.pause()
          req.removeAllListeners('data')
          tooLarge()
          res.on('finish', () => req.destroy())
          return
        }
        chunks.push(chunk)
      })
      req.on('end', () => {
        if (size > limits.maxBatchBytes) return
        ingest(req, res, Buffer.concat(chunks), ndjson).catch((error: Error) =>
          refuse(res, 500, `the events could not be taken: ${error.message}`),
        )
      })
      req.on('error', () => {})
    },
    close() {
      journal?.close()
    },
  }
}
