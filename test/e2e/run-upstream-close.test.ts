import http from 'node:http'
import net from 'node:net'
import type {AddressInfo} from 'node:net'
import {expect} from 'chai'
import {type RunningServer, recordIn, request, startRun} from '../helpers/run-server.js'

/** What the app saw of one request: its head, its body, and whether the proxy's FIN had come before the app answered. */
type Seen = {head: string; body: string; finBeforeAnswer: boolean}

/**
 * An app that answers as gunicorn's sync workers do: it reads one request, answers with `Server: gunicorn`
 * and `Connection: close`, shuts its side, and waits for the client's FIN before it closes (a lingering
 * close). Before answering it waits 50 ms and notes whether the FIN has come already. `gunicorn: false`
 * answers without the Server header and with keep-alive, as an app that changed its workers would.
 */
async function startLingeringApp() {
  const seen: Seen[] = []
  const mode = {gunicorn: true, abortOnFin: false}
  const sockets = new Set<net.Socket>()
  const server = net.createServer({allowHalfOpen: true}, (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    let data = Buffer.alloc(0)
    let fin = false
    let answered = false
    socket.on('end', () => (fin = true))
    socket.on('error', () => {})
    const answer = (head: string, body: string) => {
      answered = true
      setTimeout(() => {
        seen.push({head, body, finBeforeAnswer: fin})
        // as node:http and nginx do: a client that closed its side has gone, and gets no answer
        if (mode.abortOnFin && fin) return void socket.end()
        const text = `echo ${body.length}`
        const headers = mode.gunicorn ? 'Server: gunicorn\r\nConnection: close\r\n' : 'Connection: keep-alive\r\n'
        socket.write(`HTTP/1.1 200 OK\r\n${headers}Content-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`)
        if (mode.gunicorn) {
          socket.end()
          if (fin) socket.destroy()
          else socket.once('end', () => socket.destroy())
        } else {
          // keep-alive: ready for the next request on this connection
          data = Buffer.alloc(0)
          answered = false
        }
      }, 50)
    }
    socket.on('data', (c: Buffer) => {
      if (answered) return
      data = Buffer.concat([data, c])
      const end = data.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = data.subarray(0, end).toString()
      const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0)
      if (data.length < end + 4 + length) return
      answer(head, data.subarray(end + 4, end + 4 + length).toString())
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    mode,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      }),
  }
}

describe('run in front of an app that closes each connection and waits for ours (gunicorn sync workers)', function () {
  this.timeout(120_000)
  let app: Awaited<ReturnType<typeof startLingeringApp>>
  let run: RunningServer
  before(async () => {
    app = await startLingeringApp()
    run = await startRun(['--upstream', app.url, '--no-database'])
  })
  after(async () => {
    await run?.stop()
    await app?.close()
  })

  it('closes its side as soon as each request is sent, once the app has said it closes; bodies, answers and records are whole', async () => {
    const client = new http.Agent({keepAlive: true, maxSockets: 1})
    const first = await request(`${run.url}/first`, {agent: client})
    expect(first.status).to.equal(200)
    // the first answer is the first the proxy hears of the app: it is sent as to any app
    expect(app.seen[0].finBeforeAnswer).to.equal(false)
    expect(app.seen[0].head).to.match(/\r\nconnection: keep-alive/i)

    const body = JSON.stringify({order: 'A-1', lines: Array.from({length: 200}, (_, i) => ({sku: `SKU-${i}`, qty: i}))})
    const replies = []
    for (let i = 0; i < 4; i++) replies.push(await request(`${run.url}/get-${i}`, {agent: client}))
    for (let i = 0; i < 4; i++)
      replies.push(
        await request(`${run.url}/post-${i}`, {method: 'POST', headers: {'content-type': 'application/json'}, body, agent: client}),
      )
    client.destroy()
    expect(replies.map((r) => [r.status, r.body.toString()])).to.deep.equal([
      ...Array.from({length: 4}, () => [200, 'echo 0']),
      ...Array.from({length: 4}, () => [200, `echo ${body.length}`]),
    ])
    // the client's own connection is kept alive: the app's Connection: close is the proxy's affair
    expect(replies.every((r) => r.headers.connection !== 'close')).to.equal(true)
    const later = app.seen.slice(1)
    expect(later.map((s) => s.finBeforeAnswer)).to.deep.equal(Array.from({length: 8}, () => true))
    expect(later.every((s) => /\r\nconnection: close/i.test(s.head))).to.equal(true)
    expect(later.slice(4).map((s) => s.body)).to.deep.equal(Array.from({length: 4}, () => body))
    const record = await recordIn(run.logDir, '/post-3', 30_000)
    expect([record.status_code, record.request_body, record.response_body, record.flags]).to.deep.equal([
      200,
      body,
      `echo ${body.length}`,
      [],
    ])
  })

  it('sends one request in 100 as to any app, and stops closing its side when the app keeps connections again', async () => {
    app.mode.gunicorn = false
    const before = app.seen.length
    const client = new http.Agent({keepAlive: true, maxSockets: 1})
    for (let i = 0; i < 110; i++) expect((await request(`${run.url}/switch-${i}`, {agent: client})).status).to.equal(200)
    client.destroy()
    const after = app.seen.slice(before)
    const relearned = after.findIndex((s) => !/\r\nconnection: close/i.test(s.head))
    expect(relearned, 'a request sent without Connection: close').to.be.within(0, 100)
    // from that answer on (keep-alive, no gunicorn), every request is sent as to any app
    expect(after.slice(relearned).every((s) => !s.finBeforeAnswer && !/\r\nconnection: close/i.test(s.head))).to.equal(true)
  })
})

describe('run in front of a gunicorn-like app that starts taking an early close for an abort', function () {
  this.timeout(60_000)
  it('a half-closed request that gets no answer stops the half-close for good; a GET is sent again as usual and answered', async () => {
    const app = await startLingeringApp()
    const run = await startRun(['--upstream', app.url, '--no-database'])
    try {
      const client = new http.Agent({keepAlive: true, maxSockets: 1})
      for (let i = 0; i < 3; i++) expect((await request(`${run.url}/ok-${i}`, {agent: client})).status).to.equal(200)
      expect(app.seen.at(-1)!.finBeforeAnswer).to.equal(true)
      app.mode.abortOnFin = true // still says Server: gunicorn and Connection: close, as a proxy in between could
      const replies = []
      for (let i = 0; i < 5; i++) replies.push(await request(`${run.url}/after-${i}`, {agent: client}))
      expect(replies.map((r) => [r.status, r.body.toString()])).to.deep.equal(Array.from({length: 5}, () => [200, 'echo 0']))
      // the first was half-closed and dropped by the app, then sent again; none after it was half-closed
      const after = app.seen.slice(3)
      expect(after.map((s) => [s.head.split(' ')[1], s.finBeforeAnswer])).to.deep.equal([
        ['/after-0', true],
        ['/after-0', false],
        ...[1, 2, 3, 4].map((i) => [`/after-${i}`, false]),
      ])
      client.destroy()
    } finally {
      await run.stop()
      await app.close()
    }
  })
})

describe('run in front of an app that closes each connection but is not gunicorn', function () {
  this.timeout(60_000)
  it('never closes its side early: node:http takes a FIN for an aborted request, and every answer comes whole', async () => {
    const heads: Array<string | undefined> = []
    const app = http.createServer((req, res) => {
      heads.push(req.headers.connection)
      req.resume()
      // node:http gives up on a request whose client has sent its FIN (a half-close would answer 502)
      req.on('end', () =>
        setTimeout(() => {
          res.setHeader('connection', 'close')
          res.end(`ok ${req.url}`)
        }, 20),
      )
    })
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve))
    const run = await startRun(['--upstream', `http://127.0.0.1:${(app.address() as AddressInfo).port}`, '--no-database'])
    try {
      const replies = []
      for (let i = 0; i < 6; i++)
        replies.push(await request(`${run.url}/n-${i}`, {method: i % 2 ? 'POST' : 'GET', body: i % 2 ? 'x'.repeat(500) : undefined}))
      expect(replies.map((r) => [r.status, r.body.toString()])).to.deep.equal(Array.from({length: 6}, (_, i) => [200, `ok /n-${i}`]))
      expect(heads).to.deep.equal(Array.from({length: 6}, () => 'keep-alive'))
    } finally {
      await run.stop()
      await new Promise<void>((resolve) => app.close(() => resolve()))
    }
  })
})
