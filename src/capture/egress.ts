import http from 'node:http'
import net from 'node:net'
import type {Duplex} from 'node:stream'
import {BodyTap, bodyText, decodeBody} from './body.js'
import type {Masker} from './masking.js'
import {hopByHop} from './hop-by-hop.js'
import {type Hooks, maskedBody, maskedLine, newRecordId} from './record.js'

/**
 * The app's calls to other services (run --egress-bind): an HTTP forward
 * proxy that the spawned app is pointed at (HTTP_PROXY, HTTPS_PROXY). A
 * plain-HTTP request is forwarded and recorded whole (an `outbound` record:
 * target, method, path, status, timing, bounded masked bodies); an HTTPS
 * call is a CONNECT tunnel, passed through without breaking TLS and recorded
 * as what can be seen of it: host, port, bytes each way, duration and how it
 * ended. Every record goes to `emit` as one JSON line.
 */
export type EgressOptions = {masker: Masker; bodyLimit: number; instance: string; mask?: Hooks['mask']; emit: (line: string) => void}

/** The end-to-end fields: not those of one hop (RFC 9110 7.6.1), nor the credentials meant for this proxy. */
function endToEnd(headers: http.IncomingHttpHeaders): Record<string, string | string[]> {
  const drop = hopByHop(headers, ['proxy-authorization'])
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !drop.has(k)) out[k] = v
  return out
}

const round = (ms: number) => Math.round(ms * 1000) / 1000

export function createEgressProxy(o: EgressOptions): {server: http.Server; closeTunnels(): void} {
  const {masker} = o
  const tunnels = new Set<Duplex>() // sockets the HTTP server no longer tracks once they are tunnels
  const body = (tap: BodyTap, headers: Record<string, string | string[] | undefined>) => {
    const b = bodyText(tap, headers)
    return {text: maskedBody(b, headers['content-type'] as string | undefined, masker), truncated: b.truncated}
  }

  const server = http.createServer((req, res) => {
    let target: URL
    try {
      target = new URL(req.url ?? '')
    } catch {
      res
        .writeHead(400, {'content-type': 'text/plain'})
        .end('This is the HTTP proxy for the app’s outbound calls: send absolute URLs (HTTP_PROXY).\n')
      return
    }
    if (target.protocol !== 'http:') {
      res.writeHead(400, {'content-type': 'text/plain'}).end('Only http:// URLs are forwarded; HTTPS goes through CONNECT.\n')
      return
    }
    const start = Date.now()
    const t0 = performance.now()
    const reqTap = new BodyTap(o.bodyLimit)
    const resTap = new BodyTap(o.bodyLimit)
    let status = 0
    let resHeaders: http.IncomingHttpHeaders = {}
    let error: string | undefined
    let recorded = false
    const record = async (outcome: string) => {
      if (recorded) return
      recorded = true
      await decodeBody(resTap, resHeaders, o.bodyLimit).catch(() => {})
      const reqBody = body(reqTap, req.headers as Record<string, string>)
      const resBody = body(resTap, resHeaders)
      o.emit(
        maskedLine(
          {
            log_type: 'outbound',
            id: newRecordId(start),
            created_at: new Date(start).toISOString(),
            method: req.method ?? 'GET',
            scheme: 'http',
            host: target.hostname.slice(0, 255),
            port: Number(target.port || 80),
            path: masker.maskValues(target.pathname),
            query: target.search ? masker.query(target.search.slice(1)) : {},
            request_headers: masker.headers(endToEnd(req.headers)),
            request_body: reqBody.text,
            request_body_size: reqTap.size,
            request_body_truncated: reqBody.truncated,
            status_code: status || null,
            response_headers: masker.headers(resHeaders as Record<string, string>),
            response_body: resBody.text,
            response_body_size: resTap.size,
            response_body_truncated: resBody.truncated,
            duration_ms: round(performance.now() - t0),
            tunnel: false,
            bytes_sent: reqTap.size,
            bytes_received: resTap.size,
            outcome,
            error: error ?? null,
            instance: o.instance,
          },
          o.mask,
        ),
      )
    }
    // the body keeps its framing: a chunked one is sent chunked (Node frames a GET's or DELETE's body only when told), and
    // Host names the server connected to, so the record and the server agree on where the call went
    const headers = endToEnd(req.headers)
    headers.host = target.host
    if (req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] === undefined)
      headers['transfer-encoding'] = 'chunked'
    const upstream = http.request({
      host: target.hostname.replace(/^\[|\]$/g, ''),
      port: target.port || 80,
      method: req.method,
      path: target.pathname + target.search,
      headers,
      agent: false,
    })
    req.on('data', (c: Buffer) => reqTap.push(c))
    req.pipe(upstream)
    upstream.on('response', (up) => {
      status = up.statusCode ?? 0
      resHeaders = up.headers
      res.writeHead(status, endToEnd(up.headers))
      up.on('data', (c: Buffer) => resTap.push(c))
      up.pipe(res)
      up.on('end', () => void record('completed'))
      up.on('error', (e) => {
        error = e.message
        res.destroy()
        void record('the server broke off')
      })
    })
    upstream.on('error', (e) => {
      error = `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}`.trim()
      if (!res.headersSent)
        res.writeHead(502, {'content-type': 'text/plain'}).end(`The proxy could not reach ${target.host}: ${e.message}\n`)
      else res.destroy()
      void record('error')
    })
    res.on('close', () => {
      if (!res.writableFinished) {
        upstream.destroy()
        void record('the app broke off')
      }
    })
  })

  server.on('connect', (req: http.IncomingMessage, client: Duplex, head: Buffer) => {
    client.on('error', () => {}) // a client gone mid-answer must not take the process with it (the tunnel's own handler comes below)
    try {
      tunnel(req, client, head)
    } catch {
      client.destroy()
    }
  })
  const tunnel = (req: http.IncomingMessage, client: Duplex, head: Buffer) => {
    const start = Date.now()
    const t0 = performance.now()
    const m = /^\[?([^\]\s]+?)\]?:(\d{1,5})$/.exec(req.url ?? '')
    const port = Number(m?.[2])
    if (!m || !(port >= 1 && port <= 65535)) {
      client.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nCONNECT takes HOST:PORT, the port 1-65535\n')
      return
    }
    const host = m[1]
    tunnels.add(client)
    client.once('close', () => tunnels.delete(client))
    let sent = head.length
    let received = 0
    let status = 200
    let outcome: string | undefined // who closed first, or what failed
    let connected = false
    let error: string | undefined
    let done = false
    const finish = () => {
      if (done) return
      done = true
      o.emit(
        maskedLine(
          {
            log_type: 'outbound',
            id: newRecordId(start),
            created_at: new Date(start).toISOString(),
            method: 'CONNECT',
            scheme: 'https',
            host: host.slice(0, 255),
            port,
            path: null,
            query: null,
            request_headers: masker.headers(endToEnd(req.headers)),
            request_body: null,
            request_body_size: null,
            request_body_truncated: null,
            status_code: status,
            response_headers: null,
            response_body: null,
            response_body_size: null,
            response_body_truncated: null,
            duration_ms: round(performance.now() - t0),
            tunnel: true,
            bytes_sent: sent,
            bytes_received: received,
            outcome: outcome ?? 'closed',
            error: error ?? null,
            instance: o.instance,
          },
          o.mask,
        ),
      )
    }
    const remote = net.connect({host, port})
    remote.once('connect', () => {
      connected = true
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      if (head.length) remote.write(head)
      client.on('data', (c: Buffer) => (sent += c.length))
      remote.on('data', (c: Buffer) => (received += c.length))
      client.pipe(remote)
      remote.pipe(client)
    })
    remote.on('end', () => (outcome ??= 'closed by the remote'))
    client.on('end', () => (outcome ??= 'closed by the app'))
    remote.on('error', (e: NodeJS.ErrnoException) => {
      error = `${e.code ?? ''} ${e.message}`.trim()
      if (!connected) {
        status = 502
        outcome = 'could not connect'
        client.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n')
      } else outcome ??= 'error on the remote side'
      finish()
    })
    client.on('error', () => {
      outcome ??= 'error on the app side'
      remote.destroy()
    })
    client.on('close', () => {
      remote.destroy()
      finish()
    })
    remote.on('close', () => {
      client.destroy()
      finish()
    })
  }
  server.on('clientError', (_e, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
  })
  return {
    server,
    closeTunnels() {
      for (const t of tunnels) t.destroy()
    },
  }
}
