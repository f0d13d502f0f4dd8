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
