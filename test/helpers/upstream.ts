import {createHash} from 'node:crypto'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import zlib from 'node:zlib'
import {WebSocketServer} from 'ws'

/** A test app behind the capture server: every shape of traffic the proxy must pass through faithfully. */
export type Upstream = {url: string; port: number; close(): Promise<void>; hits: number}

export function pattern(size: number): Buffer {
  const buf = Buffer.alloc(size)
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + 7) & 0xff
  return buf
}

/**
 * What /hostile/ answers: markup that runs script wherever it is put in as HTML. Every script in it writes
 * window.__xss (the viewer's browser test traps that) and the rest opens a dialog or loads something of
 * "xss-probe": none of it may do anything in a viewer, which shows it as text.
 */
export const HOSTILE_HTML = [
  '<!doctype html><html><head>',
  '<meta http-equiv="refresh" content="0;url=javascript:window.__xss=101">',
  '<base href="https://xss-probe.invalid/">',
  '<script>window.__xss=102</script>',
  '<link rel="stylesheet" href="/xss-probe.css">',
  '</head><body onload="window.__xss=103">',
  '<h1>Order confirmed</h1>',
  '<img src="/xss-probe.png" onerror="window.__xss=104">',
  '<iframe src="javascript:window.__xss=105"></iframe>',
  '<a href="javascript:window.__xss=106">track your parcel</a>',
  '<form action="javascript:window.__xss=107"><button formaction="javascript:window.__xss=108">go</button></form>',
  '</textarea></pre><script>window.__xss=109</script>',
  '<svg onload="window.__xss=110"><script>window.__xss=111</script></svg>',
  '<math><mtext><table><mglyph><style><img src=x onerror="window.__xss=112">',
  '<object data="javascript:window.__xss=113"></object><embed src="/xss-probe.swf">',
  '</body></html>',
].join('\n')
export const HOSTILE_SVG =
  '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="window.__xss=121" width="10" height="10">' +
  '<script>window.__xss=122</script><foreignObject><img xmlns="http://www.w3.org/1999/xhtml" src="/xss-probe.png" onerror="window.__xss=123"/></foreignObject>' +
  '<a href="javascript:window.__xss=124"><text y="10">open</text></a></svg>'
export const HOSTILE_HEADER = '"><svg/onload=window.__xss=131><script>window.__xss=132</script>'
export const HOSTILE_USER = '<img src=/xss-probe.png onerror=window.__xss=141>'

export async function startUpstream(): Promise<Upstream> {
  const state = {hits: 0}
  const server = http.createServer({maxHeaderSize: 4 * 1024 * 1024}, async (req, res) => {
    state.hits++
    const url = new URL(req.url!, 'http://x')
    const route = url.pathname
    if (route === '/json') {
      res.writeHead(200, {'content-type': 'application/json'})
      return res.end(JSON.stringify({ok: true, path: req.url, headers: req.headers}))
    }
    if (route === '/upload') {
      const hash = createHash('sha256')
      let size = 0
      req.on('data', (c: Buffer) => {
        hash.update(c)
        size += c.length
      })
      req.on('end', () => {
        res.writeHead(200, {'content-type': 'application/json'})
        res.end(JSON.stringify({size, sha256: hash.digest('hex')}))
      })
      return
    }
    if (route === '/echo') {
      res.writeHead(200, {'content-type': req.headers['content-type'] ?? 'application/octet-stream'})
      return req.pipe(res)
    }
    if (route === '/download') {
      const size = Number(url.searchParams.get('bytes'))
      res.writeHead(200, {'content-type': 'application/octet-stream', 'content-length': size})
      const body = pattern(size)
      for (let off = 0; off < size; off += 65536)
        if (!res.write(body.subarray(off, off + 65536))) await new Promise((r) => res.once('drain', r))
      return res.end()
    }
    if (route === '/gzip') {
      res.writeHead(200, {'content-type': 'application/json', 'content-encoding': 'gzip'})
      return res.end(zlib.gzipSync(JSON.stringify({compressed: true, items: [1, 2, 3]})))
    }
    if (route === '/sse') {
      res.writeHead(200, {'content-type': 'text/event-stream', 'cache-control': 'no-cache'})
      for (let i = 1; i <= 3; i++) {
        res.write(`data: event ${i}\n\n`)
        await new Promise((r) => setTimeout(r, 300))
      }
      return res.end()
    }
    if (route === '/cut') {
      // promises 100,000 bytes, sends 7, then drops the connection
      res.writeHead(200, {'content-type': 'text/plain', 'content-length': 100_000})
      res.write('partial')
      setTimeout(() => res.socket?.destroy(), 50)
      return
    }
    if (route === '/trailers') {
      res.writeHead(200, {'content-type': 'text/plain', trailer: 'x-checksum'})
      res.write('body')
      res.addTrailers({'x-checksum': 'sha256=abc'})
      return res.end()
    }
    if (route === '/invalid-utf8') {
      res.writeHead(200, {'content-type': 'text/plain'})
      return res.end(Buffer.from([0x6f, 0x6b, 0xff, 0xfe, 0xc3, 0x28, 0x21]))
    }
    if (route === '/nested') {
      res.writeHead(200, {'content-type': 'application/json'})
      return res.end('['.repeat(10_000) + ']'.repeat(10_000))
    }
    if (route === '/headers') {
      res.writeHead(200, {'content-type': 'application/json', 'x-big': 'b'.repeat(200_000)})
      return res.end(JSON.stringify({count: Object.keys(req.headers).length, bytes: req.rawHeaders.join('').length}))
    }
    if (route === '/slow') {
      await new Promise((r) => setTimeout(r, Number(url.searchParams.get('ms') ?? 1000)))
      res.writeHead(200, {'content-type': 'text/plain'})
      return res.end('slow done')
    }
    if (route === '/login' || route === '/form-login') {
      // 200 (JSON API) or 302 (a form) when the password is "right"; else 401, or the form again with 200
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        const password =
          route === '/login' ? (JSON.parse(text || '{}') as {password?: string}).password : new URLSearchParams(text).get('password')
        const ok = password === 'right'
        if (route === '/login') res.writeHead(ok ? 200 : 401, {'content-type': 'application/json'}).end(JSON.stringify({ok}))
        else res.writeHead(ok ? 302 : 200, ok ? {location: '/'} : {'content-type': 'text/html'}).end(ok ? '' : '<form>try again</form>')
      })
      return
    }
    if (route === '/request-id') {
      // the id the proxy gave the request, as the app sees it
      res.writeHead(200, {'content-type': 'text/plain'})
      return res.end(String(req.headers['x-request-id'] ?? ''))
    }
    if (route === '/whoami') {
      res.writeHead(200, {'content-type': 'text/plain', 'x-audit-user': 'user-42', 'x-audit-extra': JSON.stringify({tenant: 't1'})})
      return res.end('you')
    }
    if (route === '/odd-extra') {
      // JSON that parses to a lone surrogate: stored, as U+FFFD, by PostgreSQL
      res.writeHead(200, {'content-type': 'text/plain', 'x-audit-extra': '{"note":"\\ud800"}'})
      return res.end('odd')
    }
    if (route.startsWith('/status/')) {
      res.writeHead(Number(route.split('/')[2]), {'content-type': 'text/plain', 'set-cookie': ['a=1; Path=/', 'b=2; Path=/']})
      return res.end('status')
    }
    if (route === '/mirror') {
      // answers with what it was sent: the masking corpus needs secrets in responses too
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        res.writeHead(200, {
          'content-type': req.headers['content-type'] ?? 'application/json',
          'set-cookie': `session=${req.headers['x-session'] ?? 'none'}; HttpOnly`,
          'x-api-key': String(req.headers['x-api-key'] ?? ''),
        })
        res.end(Buffer.concat(chunks))
      })
      return
    }
    if (route.startsWith('/api/')) {
      // a small JSON API (the viewer's browser test and its screenshots): the status the client asks for in
      // x-simulate-status (else 201 for a POST, 200), after x-simulate-delay-ms; a JSON body is answered back
      const chunks: Buffer[] = []
      for await (const c of req) chunks.push(c as Buffer)
      await new Promise((r) => setTimeout(r, Math.min(Number(req.headers['x-simulate-delay-ms'] ?? 0) || 0, 5000)))
      const status = Number(req.headers['x-simulate-status'] ?? (req.method === 'POST' ? 201 : 200))
      const sent = Buffer.concat(chunks).toString()
      let received: unknown
      try {
        received = sent ? JSON.parse(sent) : undefined
      } catch {
        received = sent
      }
      const answer =
        status >= 500
          ? {error: 'the payment service did not answer in time', retryable: true}
          : status >= 400
            ? {error: status === 404 ? 'no such resource' : 'refused', path: route}
            : {ok: true, resource: route.split('/').slice(2).join('/'), ...(received === undefined ? {} : {received})}
      res.writeHead(status, {'content-type': 'application/json; charset=utf-8', 'x-request-cost': '3'})
      return res.end(JSON.stringify(answer))
    }
    if (route.startsWith('/hostile/')) {
      // an app answering markup (the viewer's XSS test): HOSTILE_HTML, or HOSTILE_SVG with ?as=svg (as SVG and as XML
      // text), with a header and a user id (x-audit-user, which the proxy keeps as the record's user) that are markup too
      for await (const _ of req); // the request's body is the client's payload: the record keeps it
      const as = url.searchParams.get('as')
      res.writeHead(200, {
        'content-type': as === 'svg' ? 'image/svg+xml' : as === 'xml' ? 'application/xml' : 'text/html; charset=utf-8',
        'x-hostile': HOSTILE_HEADER,
        'x-audit-user': HOSTILE_USER,
      })
      return res.end(as ? HOSTILE_SVG : HOSTILE_HTML)
    }
    res.writeHead(404).end()
  })
  const wss = new WebSocketServer({server, path: '/ws'})
  wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, {binary})))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get hits() {
      return state.hits
    },
    close: () =>
      new Promise<void>((resolve) => {
        wss.close()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
