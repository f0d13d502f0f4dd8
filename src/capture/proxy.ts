import http, {type IncomingMessage} from 'node:http'
import https from 'node:https'
import {randomUUID} from 'node:crypto'
import type {Duplex} from 'node:stream'
import {BodyTap} from './body.js'
import {connectionOptions, hopByHop} from './hop-by-hop.js'
import type {ClientIp} from './client-ip.js'
import type {Exclusions} from './exclusions.js'
import type {GateOutcome, IntakeGate} from './gate.js'
import {EXTRA_HEADER, USER_HEADER} from './identity.js'
import type {Exchange} from './record.js'
import {type UpstreamTarget, upstreamTarget} from './upstream.js'
import {isLoopback} from '../util/net.js'

export type Capture = {
  exclusions: Exclusions
  clientIp: ClientIp
  /** Body bytes kept per body (the bound). */
  bodyLimit: number
  /**
   * Takes an exchange once its response ended; builds its records (and gives it its id) elsewhere. Must not
   * block or throw. `journaled`, when given, is called once its records are written to the journal (or were
   * counted lost).
   */
  submit: (x: Omit<Exchange, 'id'>, full: boolean, journaled?: () => void) => void
  /** recordBeforeAnswer: a response's last bytes wait until its records are journaled (see answer in createProxy). */
  holdAnswer?: boolean
}

export type ProxyOptions = {
  upstream: URL
  capture?: Capture
  maxHeaderSize: number
  onRequest?: () => void
  /** Backpressure (whenFull: block): a request waits here, unread, while the audit trail cannot take more. */
  gate?: IntakeGate
  /**
   * How long the app may stay silent (upstreamTimeoutMs): to accept the connection, to start its
   * response, and between two reads of it. 0 or unset: no limit.
   */
  upstreamTimeoutMs?: number
  /** True while the worker drains (it is being replaced): responses then ask the client to close its connection. */
  draining?: () => boolean
  /** Every exchange once it ended, captured or not (the access log); must not block or throw. */
  onExchange?: (x: Omit<Exchange, 'id'>, httpVersion: string) => void
}

/** What a request refused at a closed gate is told (503, Retry-After: 1, the connection closed). */
const refusal = (outcome: GateOutcome) =>
  outcome === 'closing'
    ? 'Service Unavailable: the server is shutting down\n'
    : 'Service Unavailable: the audit trail cannot take more records yet (its journal is full, or its sinks or record builder are far behind; whenFull is block); retry shortly\n'

function refuse(res: http.ServerResponse, outcome: GateOutcome): void {
  const body = refusal(outcome)
  res.writeHead(503, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'retry-after': '1',
    connection: 'close',
  })
  res.end(body)
}

function refuseUpgrade(socket: Duplex, outcome: GateOutcome): void {
  const body = refusal(outcome)
  // closed once written: an upgraded socket is not the server's to close at shutdown any more
  socket.end(
    `HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  )
}

/**
 * Runs `handle` now when the gate is open; else once it opens, or `refused`
 * when the wait ends otherwise. A client that leaves while waiting (its
 * response or socket closes) gives up its place.
 */
function through(
  gate: IntakeGate | undefined,
  client: http.ServerResponse | Duplex,
  socket: Duplex,
  handle: () => void,
  refused: (outcome: GateOutcome) => void,
): void {
  if (!gate || gate.isOpen) return handle()
  const {outcome, gone} = gate.wait()
  // the socket too: a pipelined request's response does not close until its turn
  client.once('close', gone)
  socket.once('close', gone)
  void outcome.then((o) => {
    client.off('close', gone)
    socket.off('close', gone)
    if (client.destroyed || socket.destroyed) return
    if (o === 'open') handle()
    else refused(o)
  })
}

// RFC 9110 §9.2.2: a request with one of these methods may be sent again.
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/** [name, value, name, value…] as [name, value] pairs (repeats kept). */
function pairs(raw: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i], raw[i + 1]])
  return out
}

/** The scheme of the client's connection to this proxy. */
const ownScheme = (req: IncomingMessage) => ((req.socket as {encrypted?: boolean}).encrypted ? 'https' : 'http')

/** What a client's own X-Request-Id may look like to be kept: a token of at most 200 characters (no spaces, quotes or control bytes). */
const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,200}$/

/**
 * Every request gets an id that the app sees and its record keeps (request_id), so the events the
 * app sends about it can name it: the client's X-Request-Id when it is well-formed, else a new
 * UUID (one that is malformed, or sent twice, is replaced).
 */
function ensureRequestId(req: IncomingMessage): void {
  const given = req.headers['x-request-id']
  if (typeof given !== 'string' || !REQUEST_ID.test(given)) req.headers['x-request-id'] = randomUUID()
}

function forwardHeaders(req: IncomingMessage, upgrade: boolean): Record<string, string | string[]> {
  const drop = hopByHop(req.headers)
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !drop.has(k)) out[k] = v
  const remote = req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? ''
  const prior = req.headers['x-forwarded-for']
  out['x-forwarded-for'] = prior ? `${prior}, ${remote}` : remote
  out['x-forwarded-proto'] = (req.headers['x-forwarded-proto'] as string) ?? ownScheme(req)
  if (req.headers.host) out['x-forwarded-host'] = (req.headers['x-forwarded-host'] as string) ?? req.headers.host
  if (upgrade) {
    out.connection = 'Upgrade'
    out.upgrade = req.headers.upgrade as string
  }
  return out
}

/**
 * Response headers for the client, as raw pairs (case and repeats kept), without hop-by-hop and audit
 * fields. `Trailer` stays: the response's trailer fields are passed on after its body.
 */
function responseHeaders(res: IncomingMessage): {raw: string[]; audit: {user?: string; extra?: string}} {
  const drop = hopByHop(res.headers)
  const raw: string[] = []
  const audit: {user?: string; extra?: string} = {}
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    const name = res.rawHeaders[i]
    const lower = name.toLowerCase()
    if (lower === USER_HEADER) audit.user = res.rawHeaders[i + 1]
    else if (lower === EXTRA_HEADER) audit.extra = res.rawHeaders[i + 1]
    else if (!drop.has(lower) || lower === 'trailer') raw.push(name, res.rawHeaders[i + 1])
  }
  return {raw, audit}
}

/**
 * A faithful reverse proxy with a tap: bodies stream through untouched
 * (SSE and downloads as they arrive) while the first bytes are kept for the
 * record; the record is built and handed off after the response ends.
 */
/** How long an idle connection to the app is kept for reuse (see createProxy). */
const FREE_SOCKET_MS = 4000

/**
 * An app that closes its connection after every response and, to close it, first waits for the client to
 * close its side: gunicorn's sync workers (its `Server` header, whatever the version), which after each
 * response shut their side and poll until the peer's FIN comes. A proxy's FIN comes when its event loop
 * has read the response, and under load that took 330 µs a request, the worker idle meanwhile: behind
 * `run --no-capture` a gunicorn worker was 41% busy with 48 requests in its queue. For such an app the
 * proxy closes its side (a half-close) as soon as the request is sent, saying `Connection: close`, so
 * that the app finds the FIN at once. Only for it, only over plain HTTP and only on loopback (`run -- gunicorn
 * --bind 127.0.0.1:$PORT`): other servers may take a client's FIN for an aborted request (node:http's and
 * nginx's do), and the side that closes first keeps the connection's TIME_WAIT, which Linux lets a new
 * connection reuse on loopback only (tcp_tw_reuse=2): to another host, new connections would run out of ports
 * at about 470 a second. If a half-closed request fails before any answer (the app changed, or something in
 * between takes the FIN for an abort), the proxy stops for good and sends a bodiless GET/HEAD again as usual.
 */
const closesAndWaits = (res: IncomingMessage) =>
  /^gunicorn\b/i.test(String(res.headers.server ?? '')) && connectionOptions(res.headers).includes('close')

/** One request in this many is sent without the half-close, so that its answer says whether the app still closes (closesAndWaits). */
const HALF_CLOSE_PROBE_EVERY = 100

export function createProxy(o: ProxyOptions): http.Server {
  const isHttps = o.upstream.protocol === 'https:'
  // An idle kept-alive connection is closed here after FREE_SOCKET_MS, or sooner when the app's
  // Keep-Alive header says it closes sooner (Node's agent applies that hint only under a timeout of
  // its own): the app closing it first, as a request is sent on it, answers a POST 502 (only a
  // request without a body can be sent again). Node apps close after 5 s, so 4 s leaves a margin.
  const agent = new (isHttps ? https : http).Agent({
    keepAlive: true,
    maxSockets: 512,
    maxFreeSockets: 256,
    scheduling: 'lifo',
    timeout: FREE_SOCKET_MS,
  })
  const request = isHttps ? https.request : http.request
  // the app closes each connection and waits for ours to close (closesAndWaits), as its last answer said
  let halfClose = false
  let halfClosed = 0
  let halfCloseFailed = false // a half-closed request failed without an answer: never again in this process
  const capture = o.capture
  const target = upstreamTarget(o.upstream)
  const {host, port, base} = target
  const mayHalfClose = !isHttps && isLoopback(host) // plain HTTP on loopback: see closesAndWaits

  const server = http.createServer(
    {maxHeaderSize: o.maxHeaderSize, requestTimeout: 0, keepAliveTimeout: 65_000, headersTimeout: 60_000},
    (req, res) =>
      through(
        o.gate,
        res,
        req.socket,
        () => proxyRequest(req, res),
        (outcome) => refuse(res, outcome),
      ),
  )
  const proxyRequest = (req: IncomingMessage, res: http.ServerResponse) => {
    o.onRequest?.()
    ensureRequestId(req)
    const start = Date.now()
    const t0 = performance.now()
    const path = req.url ?? '/'
    const method = req.method ?? 'GET'
    const full = capture ? !capture.exclusions.excludes(method, path.split('?', 1)[0]) : false
    const reqTap = full ? new BodyTap(capture!.bodyLimit) : undefined
    let resTap: BodyTap | undefined
    let responseSize = 0
    let status = 0
    let resHeaders: Record<string, string | string[] | undefined> = {}
    let audit: {user?: string; extra?: string} = {}
    let error: string | undefined
    let upstreamError = false
    let done = false
    let upstreamEnded = false
    const hold = capture?.holdAnswer === true

    /** The exchange is over as far as the record goes: it is handed off; `then` once its records are journaled. */
    const finish = (then?: () => void) => {
      if (done || !(capture || o.onExchange)) return void then?.()
      done = true
      const x: Omit<Exchange, 'id'> = {
        start,
        method,
        scheme: capture
          ? capture.clientIp.scheme(req.socket.remoteAddress, req.headers['x-forwarded-proto'], ownScheme(req))
          : ownScheme(req),
        host: req.headers.host ?? null,
        url: path,
        requestHeaders: req.headers,
        requestBody: reqTap,
        status,
        responseHeaders: resHeaders,
        responseBody: resTap,
        responseSize,
        durationMs: performance.now() - t0,
        ip: capture
          ? capture.clientIp.resolve(req.socket.remoteAddress, req.headers['x-forwarded-for'])
          : (req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? null),
        auditUser: audit.user,
        auditExtra: audit.extra,
        error,
        upstreamError,
      }
      o.onExchange?.(x, req.httpVersion)
      if (capture) capture.submit(x, full, then)
      else then?.()
    }
    /**
     * Ends the answer. With recordBeforeAnswer its last bytes (`end` sends them) wait until its records
     * are in the journal: a client that got a whole response has its record even if this process is
     * killed the next moment. A client that goes away meanwhile is recorded as it was answered.
     */
    const answer = (end: () => void) => (hold ? finish(end) : end())

    // A kept-alive connection to the app can be closed by the app just as a request is sent on it
    // (its keep-alive timeout: 5 s for Node, 2 s for gunicorn). A request with no body and an
    // idempotent method is then sent again, once, on a new connection, instead of answering 502.
    const retryable =
      IDEMPOTENT.has(method) && req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] ?? '0') === '0'
    let upReq: http.ClientRequest
    let upResponse: IncomingMessage | undefined
    let timedOut = false
    const limit = o.upstreamTimeoutMs ?? 0
    /**
     * The app stayed silent for `limit` (the socket's idle timer: connecting, waiting for the
     * response, or between two reads of it). Before the response: 504; in its middle: the client's
     * connection is cut, as the app's would be. A client too slow to take the response is not the
     * app's silence: the proxy stopped reading (backpressure), and the timer starts again.
     */
    const onTimeout = () => {
      if (res.writableFinished || upstreamEnded) return // the app answered in full: the socket is the agent's again
      if (upResponse && (res.writableNeedDrain || upResponse.isPaused())) {
        upReq.socket?.setTimeout(limit)
        return
      }
      timedOut = true
      upstreamError = true
      const socket = upReq.socket
      if (upResponse) {
        error = `upstream: the app sent nothing for ${limit} ms in the middle of its response, after ${responseSize} bytes (upstreamTimeoutMs); the response was cut`
        res.destroy()
      } else {
        error =
          !socket || socket.connecting
            ? `upstream: no connection to the app within ${limit} ms (upstreamTimeoutMs)`
            : req.complete
              ? `upstream: the app did not answer within ${limit} ms (upstreamTimeoutMs)`
              : `upstream: nothing moved for ${limit} ms while the client was still sending its body (upstreamTimeoutMs)`
        if (!res.headersSent && !res.destroyed) {
          status = 504
          if (o.draining?.()) res.shouldKeepAlive = false
          const body = 'Gateway Timeout: the application did not answer in time\n'
          res.writeHead(504, {'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body)})
          answer(() => res.end(body))
        } else res.destroy()
      }
      upReq.destroy()
      finish()
    }
    const send = (attempt: number) => {
      const headers = forwardHeaders(req, false)
      const closing = halfClose && ++halfClosed % HALF_CLOSE_PROBE_EVERY !== 0
      if (closing) headers.connection = 'close' // nor is the connection offered back to the agent
      const sent = (upReq = request({
        host,
        port,
        method,
        path: base + path,
        headers,
        agent,
        maxHeaderSize: o.maxHeaderSize,
        ...(limit > 0 ? {timeout: limit} : {}),
      }))
      if (limit > 0) upReq.on('timeout', onTimeout)
      if (retryable) upReq.end()
      else req.pipe(upReq)
      // once the whole request is in the socket (its body too), our side of the connection is shut: the app reads its FIN after the request
      if (closing) sent.once('finish', () => sent.socket?.end())

      upReq.on('response', (upRes) => {
        upResponse = upRes
        // learned from the app's own answer: one to a request that said Connection: close says close whatever the app does
        if (!closing) halfClose = mayHalfClose && !halfCloseFailed && closesAndWaits(upRes)
        else if (!closesAndWaits(upRes)) halfClose = false // the app answers otherwise now
        status = upRes.statusCode ?? 502
        // a worker being replaced answers what it holds and asks the client to come back on a new connection
        if (o.draining?.()) res.shouldKeepAlive = false
        resHeaders = upRes.headers
        const h = responseHeaders(upRes)
        audit = h.audit
        res.writeHead(status, upRes.statusMessage, h.raw)
        const length = upRes.headers['content-length'] === undefined ? undefined : Number(upRes.headers['content-length'])
        // A streamed response (SSE, long poll, chunked download) shows its headers at once; a sized
        // one sends them with the first body bytes, in one write. A response that has no body (HEAD,
        // 204, 304) is whole with its headers: held, they wait for the end.
        const bodiless = method === 'HEAD' || status === 204 || status === 304
        if (length === undefined && !(hold && bodiless)) res.flushHeaders()
        if (full) resTap = new BodyTap(capture!.bodyLimit)
        upRes.on('data', (c: Buffer) => {
          responseSize += c.length
          resTap?.push(c)
        })
        upRes.on('end', () => (upstreamEnded = true))
        if (hold) {
          // By hand, not pipe(): a sized body's last chunk (the one that completes it) waits with the end;
          // a chunked or close-delimited body is incomplete until its end, which alone waits.
          let last: Buffer | undefined
          upRes.on('data', (c: Buffer) => {
            if (length !== undefined && responseSize >= length) last = last ? Buffer.concat([last, c]) : c
            else if (!res.write(c)) {
              upRes.pause()
              res.once('drain', () => upRes.resume())
            }
          })
          upRes.on('end', () =>
            answer(() => {
              if (upRes.headers.trailer !== undefined && upRes.rawTrailers.length) res.addTrailers(pairs(upRes.rawTrailers))
              res.end(last)
            }),
          )
        } else if (upRes.headers.trailer === undefined) upRes.pipe(res)
        else {
          // trailer fields come after the body: the response ends once they are added
          upRes.pipe(res, {end: false})
          upRes.on('end', () => {
            if (upRes.rawTrailers.length) res.addTrailers(pairs(upRes.rawTrailers))
            res.end()
          })
        }
        upRes.on('error', (e: NodeJS.ErrnoException) => {
          if (timedOut) return
          // the app closed the connection (or reset it) before its response ended: the client's is cut too
          error ??= `upstream: the app ended the connection before the response ended (${e.code ?? e.message})`
          upstreamError = true
          res.destroy()
        })
      })

      upReq.on('error', (e: NodeJS.ErrnoException) => {
        if (timedOut) return // answered (504) or cut by onTimeout
        const unanswered = closing && !upResponse // the app (or something in between) took our early close for an abort
        if (unanswered) {
          halfCloseFailed = true
          halfClose = false
        }
        if (
          retryable &&
          attempt === 0 &&
          (upReq.reusedSocket || unanswered) &&
          !res.headersSent &&
          !res.destroyed &&
          (e.code === 'ECONNRESET' || e.code === 'EPIPE')
        ) {
          send(1)
          return
        }
        error = `upstream: ${e.message}`
        upstreamError = true
        if (!res.headersSent) {
          if (o.draining?.()) res.shouldKeepAlive = false
          status = 502
          const body = 'Bad Gateway: the application did not answer\n'
          res.writeHead(502, {'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body)})
          answer(() => res.end(body))
        } else {
          res.destroy()
        }
        finish()
      })
    }
    if (reqTap) req.on('data', (c: Buffer) => reqTap.push(c))
    if (retryable) req.resume()
    send(0)

    res.on('finish', finish)
    res.on('close', () => {
      if (!res.writableFinished) {
        error ??= 'client closed the connection before the response ended'
        upReq.destroy()
      }
      finish()
    })
  }

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // node:http leaves an upgraded socket without an error listener: a client that resets while it
    // waits at the gate must not take the worker down (proxyUpgrade adds its own once it runs)
    const reset = () => socket.destroy()
    socket.on('error', reset)
    through(
      o.gate,
      socket,
      socket,
      () => {
        socket.off('error', reset)
        proxyUpgrade(req, socket, head, o, request, target)
      },
      (outcome) => refuseUpgrade(socket, outcome),
    )
  })
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
    else socket.destroy()
  })
  return server
}

/** WebSocket (and other upgrades): bytes piped both ways; one record for the whole connection. */
function proxyUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  o: ProxyOptions,
  request: typeof http.request,
  target: UpstreamTarget,
) {
  o.onRequest?.()
  ensureRequestId(req)
  const start = Date.now()
  const t0 = performance.now()
  let status = 0
  let resHeaders: Record<string, string | string[] | undefined> = {}
  let error: string | undefined
  let recorded = false
  let timedOut = false
  const record = () => {
    if (recorded || !o.capture) return
    recorded = true
    const c = o.capture
    const x: Omit<Exchange, 'id'> = {
      start,
      method: req.method ?? 'GET',
      scheme: c.clientIp.scheme(req.socket.remoteAddress, req.headers['x-forwarded-proto'], ownScheme(req)),
      host: req.headers.host ?? null,
      url: req.url ?? '/',
      requestHeaders: req.headers,
      status: status || 502,
      responseHeaders: resHeaders,
      responseSize: 0,
      durationMs: performance.now() - t0,
      ip: c.clientIp.resolve(req.socket.remoteAddress, req.headers['x-forwarded-for']),
      error,
      upstreamError: status === 0 || timedOut,
    }
    c.submit(x, !c.exclusions.excludes(x.method, x.url.split('?', 1)[0]))
  }
  const upReq = request({
    host: target.host,
    port: target.port,
    method: req.method,
    path: target.base + (req.url ?? '/'),
    headers: forwardHeaders(req, true),
    maxHeaderSize: o.maxHeaderSize,
  })
  // the app must accept the connection and answer the upgrade within upstreamTimeoutMs; once upgraded, a
  // WebSocket may stay quiet as long as it likes
  const limit = o.upstreamTimeoutMs ?? 0
  if (limit > 0)
    upReq.setTimeout(limit, () => {
      if (status !== 0) return
      timedOut = true
      status = 504
      const s = upReq.socket
      error =
        !s || s.connecting
          ? `upstream: no connection to the app within ${limit} ms (upstreamTimeoutMs)`
          : `upstream: the app did not answer the upgrade within ${limit} ms (upstreamTimeoutMs)`
      socket.end('HTTP/1.1 504 Gateway Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      upReq.destroy()
      record()
    })
  upReq.on('upgrade', (upRes, upSocket, upHead) => {
    upSocket.setTimeout(0)
    status = upRes.statusCode ?? 101
    resHeaders = upRes.headers
    let headText = `HTTP/1.1 ${status} ${upRes.statusMessage ?? 'Switching Protocols'}\r\n`
    for (let i = 0; i < upRes.rawHeaders.length; i += 2) headText += `${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}\r\n`
    socket.write(headText + '\r\n')
    if (upHead.length) socket.write(upHead)
    if (head.length) upSocket.write(head)
    upSocket.pipe(socket)
    socket.pipe(upSocket)
    const end = () => {
      upSocket.destroy()
      socket.destroy()
      record()
    }
    upSocket.on('close', end)
    socket.on('close', end)
    upSocket.on('error', end)
    socket.on('error', end)
  })
  upReq.on('response', (upRes) => {
    // the app refused the upgrade: pass its answer on
    status = upRes.statusCode ?? 502
    resHeaders = upRes.headers
    let headText = `HTTP/1.1 ${status} ${upRes.statusMessage ?? ''}\r\n`
    for (let i = 0; i < upRes.rawHeaders.length; i += 2) headText += `${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}\r\n`
    socket.write(headText + '\r\n')
    upRes.pipe(socket)
    upRes.on('end', record)
  })
  upReq.on('error', (e) => {
    if (timedOut) return
    error = `upstream: ${e.message}`
    socket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    record()
  })
  socket.on('error', () => upReq.destroy())
  upReq.end()
}
