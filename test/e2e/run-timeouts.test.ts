import {existsSync, mkdtempSync, readFileSync, renameSync, statSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {spawn, spawnSync} from 'node:child_process'
import http from 'node:http'
import net from 'node:net'
import type {AddressInfo} from 'node:net'
import {expect} from 'chai'
import {runCli} from '../helpers/cli.js'
import {jsonlLines} from '../helpers/jsonl.js'
import {type RunningServer, childPids, recordIn, request, sendLoops, startRun, until} from '../helpers/run-server.js'
import {skipUnless} from '../helpers/skip.js'
import {startUpstream} from '../helpers/upstream.js'
import WebSocket from 'ws'

/**
 * An app that misbehaves in time: /hang never answers, /silent starts its response and goes quiet,
 * /trickle sends a chunk every `every` ms (as an SSE stream with ?sse=1), /big sends 16 MiB as fast as
 * the proxy takes it, /slow answers after `ms`.
 */
async function startSlowApp(): Promise<{url: string; close(): Promise<void>}> {
  const open = new Set<http.ServerResponse>()
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://x')
    const n = (k: string, d: number) => Number(url.searchParams.get(k) ?? d)
    if (url.pathname === '/hang') return void open.add(res)
    if (url.pathname === '/silent') {
      res.writeHead(200, {'content-type': 'application/octet-stream'})
      res.write('first bytes')
      return void open.add(res)
    }
    if (url.pathname === '/trickle') {
      res.writeHead(200, {'content-type': url.searchParams.has('sse') ? 'text/event-stream' : 'application/octet-stream'})
      for (let i = 0; i < n('count', 12); i++) {
        res.write(`data: chunk ${i}\n\n`)
        await new Promise((r) => setTimeout(r, n('every', 250)))
      }
      return res.end('data: end\n\n')
    }
    if (url.pathname === '/big') {
      const size = 16 * 1024 * 1024
      res.writeHead(200, {'content-type': 'application/octet-stream', 'content-length': size})
      const chunk = Buffer.alloc(64 * 1024, 7)
      for (let off = 0; off < size; off += chunk.length) if (!res.write(chunk)) await new Promise((r) => res.once('drain', r))
      return res.end()
    }
    if (url.pathname === '/slow') {
      await new Promise((r) => setTimeout(r, n('ms', 1000)))
      return res.writeHead(200, {'content-type': 'text/plain'}).end('slow done')
    }
    res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify({ok: true, url: req.url}))
  })
  // an upgrade (WebSocket) the app never answers
  const held = new Set<net.Socket>()
  server.on('upgrade', (_req, socket: net.Socket) => held.add(socket))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      for (const res of open) res.destroy()
      for (const socket of held) socket.destroy()
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    },
  }
}

/** A GET whose response may be cut: what arrived, and whether it ended or was cut. */
function fetchRaw(url: string): Promise<{status: number; body: Buffer; complete: boolean}> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, {agent: false}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({status: res.statusCode!, body: Buffer.concat(chunks), complete: res.complete}))
      res.on('error', () => resolve({status: res.statusCode!, body: Buffer.concat(chunks), complete: false}))
      res.on('aborted', () => resolve({status: res.statusCode!, body: Buffer.concat(chunks), complete: false}))
    })
    req.on('error', reject)
  })
}

const recordFor = (run: RunningServer, p: string) => recordIn(run.logDir, p, 30_000)

describe('run: upstream timeouts (upstreamTimeoutMs, GUNICORN_TIMEOUT)', function () {
  this.timeout(180_000)
  let app: Awaited<ReturnType<typeof startSlowApp>>
  let run: RunningServer
  before(async () => {
    app = await startSlowApp()
    // GUNICORN_TIMEOUT is in seconds, as gunicorn's: 1 s here
    run = await startRun(['--upstream', app.url, '--no-database'], {GUNICORN_TIMEOUT: '1'})
  })
  after(async () => {
    await run?.stop()
    await app?.close()
  })

  it('answers 504 when the app does not answer, and flags the record upstream_error with the reason', async () => {
    const t0 = Date.now()
    const r = await request(`${run.url}/hang`)
    expect(r.status).to.equal(504)
    expect(r.body.toString()).to.match(/Gateway Timeout/)
    expect(Date.now() - t0).to.be.greaterThanOrEqual(900)
    const rec = await recordFor(run, '/hang')
    expect(rec.status_code).to.equal(504)
    expect(rec.flags).to.include('upstream_error')
    expect(rec.error).to.equal('upstream: the app did not answer within 1000 ms (upstreamTimeoutMs)')
    // queryable as the other flags are
    const q = await runCli(['query', '--source', 'files', '--log-dir', run.logDir, '--flag', 'upstream_error', '--format', 'json'], {
      env: {AUDIT_LOGS_DATABASE_URL: undefined},
    })
    expect(q.exitCode, q.stderr).to.equal(0)
    const rows = JSON.parse(q.stdout) as Array<{path: string; status_code: number}>
    expect(rows.map((x) => x.path)).to.include('/hang')
  })

  it('cuts a response that goes silent in its middle, keeping the status and the reason in the record', async () => {
    const r = await fetchRaw(`${run.url}/silent`)
    expect(r.status).to.equal(200)
    expect(r.complete).to.equal(false)
    expect(r.body.toString()).to.equal('first bytes')
    const rec = await recordFor(run, '/silent')
    expect(rec.status_code).to.equal(200)
    expect(rec.flags).to.include('upstream_error')
    expect(rec.error).to.match(/^upstream: the app sent nothing for 1000 ms in the middle of its response, after 11 bytes/)
  })

  it('never cuts a download or an SSE stream that keeps sending, however long it lasts', async () => {
    // 12 chunks 250 ms apart: 3 s in all, three times the limit
    const [plain, sse] = await Promise.all([fetchRaw(`${run.url}/trickle`), fetchRaw(`${run.url}/trickle?sse=1`)])
    for (const r of [plain, sse]) {
      expect(r.status).to.equal(200)
      expect(r.complete).to.equal(true)
      expect(r.body.toString()).to.match(/chunk 11\n\ndata: end\n\n$/)
    }
    const rec = await recordFor(run, '/trickle')
    expect(rec.flags).not.to.include('upstream_error')
    expect(rec.error).to.equal(null)
  })

  it('does not take a slow client for a silent app: a download the client stops reading for longer than the limit completes', async () => {
    const got = await new Promise<{size: number; complete: boolean}>((resolve, reject) => {
      http
        .get(`${run.url}/big`, {agent: false}, (res) => {
          let size = 0
          res.pause() // the proxy's buffers fill, it stops reading the app: its socket idles, the app's fault it is not
          setTimeout(() => res.resume(), 2500)
          res.on('data', (c: Buffer) => (size += c.length))
          res.on('end', () => resolve({size, complete: res.complete}))
          res.on('error', reject)
        })
        .on('error', reject)
    })
    expect(got).to.deep.equal({size: 16 * 1024 * 1024, complete: true})
    const rec = await recordFor(run, '/big')
    expect(rec.flags).not.to.include('upstream_error')
  })

  it('answers 504 to a WebSocket upgrade the app does not answer', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(new URL(run.url).port), '127.0.0.1', () =>
        socket.write(
          'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        ),
      )
      let text = ''
      socket.on('data', (c: Buffer) => (text += c.toString()))
      socket.on('close', () => resolve(text))
      socket.on('error', reject)
    })
    expect(reply).to.match(/^HTTP\/1\.1 504 Gateway Timeout\r\n/)
    const rec = await recordFor(run, '/ws')
    expect(rec.status_code).to.equal(504)
    expect(rec.flags).to.include('upstream_error')
    expect(rec.error).to.equal('upstream: the app did not answer the upgrade within 1000 ms (upstreamTimeoutMs)')
  })

  it('never cuts a WebSocket that stays quiet once upgraded', async () => {
    const echo = await startUpstream()
    const ws = await startRun(['--upstream', echo.url, '--no-database'], {GUNICORN_TIMEOUT: '1'})
    try {
      const client = new WebSocket(`${ws.url.replace('http', 'ws')}/ws`)
      await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject))
      await new Promise((r) => setTimeout(r, 2000)) // twice the limit, in silence
      const answer = new Promise<string>((resolve, reject) => client.once('message', (d) => resolve(d.toString())).once('close', reject))
      client.send('still here')
      expect(await answer).to.equal('still here')
      client.close()
    } finally {
      await ws.stop()
      await echo.close()
    }
  })

  it('lets an answer slower than nothing but within the limit through', async () => {
    const r = await request(`${run.url}/slow?ms=300`)
    expect(r.status).to.equal(200)
  })

  it('keeps 502 for an app that is down, with its reason', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port
        s.close(() => resolve(p))
      })
    })
    const down = await startRun(['--upstream', `http://127.0.0.1:${port}`, '--no-database'], {GUNICORN_TIMEOUT: '1'})
    try {
      const r = await request(`${down.url}/json`)
      expect(r.status).to.equal(502)
      const rec = await recordFor(down, '/json')
      expect(rec.flags).to.include('upstream_error')
      expect(rec.error).to.match(/^upstream: connect ECONNREFUSED/)
    } finally {
      await down.stop()
    }
  })

  it('answers 504 when the connection to the app cannot be made within the limit', async function () {
    // a listener that never accepts, its queue (backlog 0) filled by one connection: Linux then leaves the next SYNs
    // unanswered, and a connection hangs as to a host that is down (Node's own listeners always accept, hence python3)
    const python = spawnSync('python3', ['--version']).status === 0
    skipUnless(this, python, 'python3 is not installed (it holds a listener that never accepts)')
    const py = spawn('python3', [
      '-c',
      "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(600)",
    ])
    const port = await new Promise<number>((resolve) => py.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))))
    const filler = net.connect(port, '127.0.0.1')
    await new Promise((r) => filler.once('connect', r))
    const far = await startRun(['--upstream', `http://127.0.0.1:${port}`, '--no-database'], {AUDIT_LOGS_UPSTREAM_TIMEOUT_MS: '800'})
    try {
      const r = await request(`${far.url}/json`)
      expect(r.status).to.equal(504)
      const rec = await recordFor(far, '/json')
      expect(rec.flags).to.include('upstream_error')
      expect(rec.error).to.equal('upstream: no connection to the app within 800 ms (upstreamTimeoutMs)')
    } finally {
      await far.stop()
      filler.destroy()
      py.kill()
    }
  })

  it('has no limit with 0 (GUNICORN_TIMEOUT=0, as gunicorn)', async () => {
    const patient = await startRun(['--upstream', app.url, '--no-database'], {GUNICORN_TIMEOUT: '0'})
    try {
      const r = await request(`${patient.url}/slow?ms=2500`)
      expect(r.status).to.equal(200)
      expect(r.body.toString()).to.equal('slow done')
    } finally {
      await patient.stop()
    }
  })

  it('refuses a GUNICORN_TIMEOUT that is not a number of seconds, naming it', async () => {
    const r = await runCli(['run', '--upstream', app.url, '--no-database'], {env: {GUNICORN_TIMEOUT: 'soon'}})
    expect(r.exitCode).to.equal(2)
    expect(r.stderr).to.match(/upstreamTimeoutMs = "soon" \(from environment GUNICORN_TIMEOUT\)/)
    expect(r.stderr).to.match(/GUNICORN_TIMEOUT: seconds/)
  })
})

describe('run: worker replacement after maxRequests (GUNICORN_MAX_REQUESTS, _JITTER)', function () {
  this.timeout(180_000)

  it('replaces the worker after its requests, under a steady stream, without losing a request or a record', async () => {
    const app = await startSlowApp()
    const run = await startRun(['--upstream', app.url, '--no-database'], {
      GUNICORN_WORKERS: '1',
      GUNICORN_MAX_REQUESTS: '25',
      GUNICORN_MAX_REQUESTS_JITTER: '5',
    })
    try {
      const sent: string[] = []
      const failures: string[] = []
      const replaced = () => [...run.stderr().matchAll(/worker (\d+) stopped: replaced/g)].length
      // until three workers were replaced: three loops of quick requests on new connections, one on a kept-alive
      // connection, and one of slow requests, so that a retiring worker holds requests in flight
      const keepAlive = new http.Agent({keepAlive: true, maxSockets: 1})
      const loops = sendLoops(5, async (k, i) => {
        if (replaced() >= 3 || failures.length > 20) return new Promise((r) => setTimeout(r, 20))
        const id = `${k}-${i}`
        const target = k === 4 ? `/slow?ms=150&id=${id}` : `/json?id=${id}`
        sent.push(id)
        try {
          const r = await request(`${run.url}${target}`, k === 3 ? {agent: keepAlive} : {})
          if (r.status !== 200) failures.push(`${id}: ${r.status} ${r.body.toString().slice(0, 200)}`)
        } catch (error) {
          failures.push(`${id}: ${(error as Error).message}`)
        }
      })
      await until(() => replaced() >= 3 || failures.length > 20, 150_000, 'three workers replaced')
      await loops.stop()
      keepAlive.destroy()
      expect(failures, 'requests without an answer').to.deep.equal([])
      const retired = [...run.stderr().matchAll(/worker (\d+) served (\d+) requests \(maxRequests\)/g)]
      expect(retired.length, run.stderr()).to.be.greaterThanOrEqual(3)
      for (const m of retired) expect(Number(m[2])).to.be.within(25, 30)
      expect(new Set(retired.map((m) => m[1])).size).to.equal(retired.length) // each a different worker
      expect(run.stderr()).not.to.match(/died/)
      // every record arrived, once
      const ids = await until(
        () => {
          let lines: string[]
          try {
            lines = jsonlLines(run.logDir, 'requests')
          } catch {
            return undefined
          }
          const got = lines.map((l) => (JSON.parse(l) as {query: {id?: string}}).query.id)
          return got.length >= sent.length ? got : undefined
        },
        60_000,
        'every record',
      )
      expect([...ids].sort()).to.deep.equal([...sent].sort())
    } finally {
      await run.stop()
      await app.close()
    }
  })

  /** Starts run with one worker replaced after `maxRequests`: its worker's pid once it listens. */
  async function recycling(upstream: string, env: Record<string, string>): Promise<{run: RunningServer; first: number}> {
    const run = await startRun(['--upstream', upstream, '--no-database'], {GUNICORN_WORKERS: '1', ...env})
    const [first] = await until(
      () => (childPids(run.child.pid!).length === 1 ? childPids(run.child.pid!) : undefined),
      30_000,
      'one worker',
    )
    return {run, first}
  }

  /** Sends requests until the worker says it served its maxRequests. */
  async function untilRetired(run: RunningServer, pid: number): Promise<void> {
    await until(
      async () => {
        if (new RegExp(`worker ${pid} served \\d+ requests \\(maxRequests\\)`).test(run.stderr())) return true
        await request(`${run.url}/json?fill=1`).catch(() => undefined)
        return false
      },
      60_000,
      `worker ${pid} to reach maxRequests`,
    )
  }

  /** Waits until the run has exactly one worker, another than `old`, and that it answers. */
  async function replacedBy(run: RunningServer, old: number): Promise<number> {
    const [next] = await until(
      () => {
        const pids = childPids(run.child.pid!)
        return pids.length === 1 && pids[0] !== old ? pids : undefined
      },
      60_000,
      `worker ${old} gone and one worker in its place`,
    )
    expect((await request(`${run.url}/json?after=replaced`)).status).to.equal(200)
    return next
  }

  it('ends a WebSocket a worker being replaced still holds at shutdownTimeoutMs, and the worker exits; its replacement serves', async () => {
    const echo = await startUpstream()
    const {run, first} = await recycling(echo.url, {GUNICORN_MAX_REQUESTS: '10', AUDIT_LOGS_SHUTDOWN_TIMEOUT_MS: '1500'})
    try {
      const client = new WebSocket(`${run.url.replace('http', 'ws')}/ws`)
      await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject))
      const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)))
      const echoed = new Promise<string>((resolve) => client.once('message', (d) => resolve(d.toString())))
      client.send('before')
      expect(await echoed).to.equal('before')
      await untilRetired(run, first)
      // the socket is cut at the grace's end: the worker exits by itself (not killed), its records flushed
      await closed
      await until(() => run.stderr().includes(`worker ${first} stopped: replaced`), 30_000, `worker ${first} to stop`)
      expect(run.stderr()).to.include('1 WebSocket connection(s) still open after shutdownTimeoutMs (1500 ms) closed')
      expect(run.stderr()).not.to.match(/killed|ended with|died/)
      await replacedBy(run, first)
      // a WebSocket on the new worker works
      const again = new WebSocket(`${run.url.replace('http', 'ws')}/ws`)
      await new Promise((resolve, reject) => again.once('open', resolve).once('error', reject))
      const answer = new Promise<string>((resolve) => again.once('message', (d) => resolve(d.toString())))
      again.send('after')
      expect(await answer).to.equal('after')
      again.close()
      // the record of the cut WebSocket was flushed before the worker exited
      const rec = await recordFor(run, '/ws')
      expect(rec.status_code).to.equal(101)
    } finally {
      await run.stop()
      await echo.close()
    }
  })

  it('kills a worker being replaced that has not exited shortly after shutdownTimeoutMs', async () => {
    const app = await startSlowApp()
    const {run, first} = await recycling(app.url, {
      GUNICORN_MAX_REQUESTS: '10',
      AUDIT_LOGS_SHUTDOWN_TIMEOUT_MS: '500',
      AUDIT_LOGS_FAILPOINT: 'retire-hangs',
    })
    try {
      await untilRetired(run, first)
      await until(
        () => run.stderr().includes(`worker ${first}, being replaced, did not stop within shutdownTimeoutMs and 2500 ms; killed`),
        60_000,
        'the kill',
      )
      await until(() => run.stderr().includes(`worker ${first}, being replaced, ended with SIGKILL`), 10_000, 'its exit')
      await replacedBy(run, first)
      expect(run.stderr()).not.to.match(/died/)
    } finally {
      await run.stop()
      await app.close()
    }
  })

  it('tries a replacement that cannot start again, the old worker serving meanwhile, and never runs more workers than asked', async () => {
    const app = await startSlowApp()
    // the run's 2nd and 3rd workers exit before they listen: the replacement's first two tries
    const {run, first} = await recycling(app.url, {GUNICORN_MAX_REQUESTS: '50', AUDIT_LOGS_FAILPOINT: 'replacement-fails'})
    try {
      await untilRetired(run, first)
      const most = {n: 0}
      // while the replacement is tried, the old worker answers, and there are at most two workers: it and the one starting
      await until(
        async () => {
          most.n = Math.max(most.n, childPids(run.child.pid!).length)
          expect((await request(`${run.url}/json?meanwhile=1`)).status).to.equal(200)
          await new Promise((r) => setTimeout(r, 100)) // few requests: the new worker must not reach its own maxRequests here
          return run.stderr().includes(`worker ${first} stopped: replaced`)
        },
        60_000,
        'the replacement after two failures',
      )
      expect(most.n).to.be.at.most(2)
      const failures = run
        .stderr()
        .match(
          new RegExp(`the replacement of worker ${first} \\(maxRequests\\) could not start \\(code 1\\); trying again in \\d+ ms`, 'g'),
        )
      expect(failures, run.stderr()).to.have.length(2)
      expect(run.stderr()).not.to.match(/died|starting a replacement$/m)
      const next = await replacedBy(run, first)
      // and no other worker is started later
      await new Promise((r) => setTimeout(r, 2000))
      expect(childPids(run.child.pid!)).to.deep.equal([next])
    } finally {
      await run.stop()
      await app.close()
    }
  })

  it('refuses a negative GUNICORN_MAX_REQUESTS', async () => {
    const r = await runCli(['run', '--upstream', 'http://127.0.0.1:3000', '--no-database'], {env: {GUNICORN_MAX_REQUESTS: '-1'}})
    expect(r.exitCode).to.equal(2)
    expect(r.stderr).to.match(/maxRequests = "-1" \(from environment GUNICORN_MAX_REQUESTS\)\. Accepted: a whole number of at least 0/)
  })
})

describe("run: gunicorn's logs (GUNICORN_ACCESS_LOG, GUNICORN_ERROR_LOG, GUNICORN_LOG_LEVEL, GUNICORN_WORKER_CLASS)", function () {
  this.timeout(180_000)
  let app: Awaited<ReturnType<typeof startSlowApp>>
  before(async () => (app = await startSlowApp()))
  after(async () => app?.close())

  /** Starts run with `env` and waits until it answers (its "listening on" line may be in a file, or below the level). */
  async function started(env: Record<string, string>): Promise<RunningServer> {
    const run = await startRun(['--upstream', app.url, '--no-database'], env, {expectFailure: true})
    await until(
      async () => {
        if (run.child.exitCode !== null) throw new Error(`run exited:\n${run.stderr()}`)
        return request(`${run.url}/json?ready=1`).then(
          (r) => r.status === 200,
          () => false,
        )
      },
      60_000,
      'run to answer',
    )
    return run
  }

  const GUNICORN_LINE = /^(\S+) - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$/

  it('writes an access line per request to a file, in gunicorn format, with what masking hides hidden', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-access-'))
    const file = `${dir}/access.log`
    const run = await started({GUNICORN_ACCESS_LOG: file})
    try {
      const r = await request(`${run.url}/json?token=SECRET-TOKEN-123&page=2`, {
        headers: {
          authorization: 'Bearer BEARER-SECRET-456',
          referer: 'https://shop.example/cart?password=hunter2&x=1',
          'user-agent': 'probe/1.0 "quoted"',
        },
      })
      expect(r.status).to.equal(200)
      const lines = await until(
        () => {
          try {
            const text = readFileSync(file, 'utf8')
            return text.includes('/json?token=') ? text.trim().split('\n') : undefined
          } catch {
            return undefined
          }
        },
        30_000,
        'the access line',
      )
      const line = lines.find((l) => l.includes('/json?token='))!
      const m = GUNICORN_LINE.exec(line)
      expect(m, line).to.not.equal(null)
      expect(statSync(file).mode & 0o007, 'the access log is not readable by others').to.equal(0)
      expect(m![1]).to.equal('127.0.0.1')
      expect(m![2]).to.equal('GET /json?token=****&page=2 HTTP/1.1')
      expect(m![3]).to.equal('200')
      expect(Number(m![4])).to.equal(r.body.length)
      expect(m![5]).to.equal('https://shop.example/cart?password=****&x=1')
      expect(m![6]).to.equal('probe/1.0 \\x22quoted\\x22')
      for (const secret of ['SECRET-TOKEN-123', 'hunter2', 'BEARER-SECRET-456', 'Bearer']) expect(line).not.to.include(secret)
      // the record masks the same way
      const rec = await recordIn(run.logDir, '/json', 30_000)
      expect(JSON.stringify(rec)).not.to.include('SECRET-TOKEN-123')
      // SIGHUP (after logrotate moved the file) opens it again
      renameSync(file, `${file}.1`)
      run.child.kill('SIGHUP')
      await until(() => run.stderr().includes('SIGHUP: reopening'), 10_000, 'the reopen')
      await until(
        async () => {
          await request(`${run.url}/json?after=rotate`)
          return existsSync(file) && readFileSync(file, 'utf8').includes('/json?after=rotate')
        },
        30_000,
        'a line in the new access log',
      )
    } finally {
      await run.stop()
    }
  })

  it("writes access lines to stdout with '-', one per request, excluded paths and timeouts included", async () => {
    const run = await started({GUNICORN_ACCESS_LOG: '-', GUNICORN_TIMEOUT: '1'})
    let out = ''
    run.child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    try {
      expect((await request(`${run.url}/static/app.css`)).status).to.equal(200)
      expect((await request(`${run.url}/hang`)).status).to.equal(504)
      await until(() => out.includes('/static/app.css') && out.includes('/hang'), 30_000, 'the access lines on stdout')
      const lines = out.trim().split('\n')
      for (const l of lines) expect(l, l).to.match(GUNICORN_LINE)
      expect(lines.find((l) => l.includes('/hang'))).to.match(/"GET \/hang HTTP\/1\.1" 504 \d+ "-" "-"$/)
    } finally {
      await run.stop()
    }
  })

  it('writes its own log to GUNICORN_ERROR_LOG at GUNICORN_LOG_LEVEL, and notes that GUNICORN_WORKER_CLASS is ignored', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-errorlog-'))
    const info = `${dir}/info.log`
    const warning = `${dir}/warning.log`
    const a = await started({GUNICORN_ERROR_LOG: info, GUNICORN_WORKER_CLASS: 'gevent'})
    const b = await started({GUNICORN_ERROR_LOG: warning, GUNICORN_LOG_LEVEL: 'warning', GUNICORN_WORKER_CLASS: 'sync'})
    try {
      const infoText = await until(
        () => {
          const t = readFileSync(info, 'utf8')
          return t.includes('listening on') ? t : undefined
        },
        30_000,
        'the info log',
      )
      expect(infoText).to.match(/^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] \[\d+\] \[INFO\] .*listening on/m)
      expect(infoText).to.match(/\[WARNING\] workerClass "gevent" \(GUNICORN_WORKER_CLASS\) is ignored/)
      const warningText = readFileSync(warning, 'utf8')
      expect(warningText).to.match(/\[WARNING\] workerClass "sync" \(GUNICORN_WORKER_CLASS\) is ignored/)
      expect(warningText).not.to.include('[INFO]')
      // nothing of it on stderr
      expect(a.stderr()).not.to.include('listening on')
      expect(b.stderr()).not.to.include('listening on')
    } finally {
      await a.stop()
      await b.stop()
    }
    // the summary at the end goes there too
    expect(readFileSync(info, 'utf8')).to.match(/\[INFO\] stopped: \d+ requests/)
    expect(readFileSync(warning, 'utf8')).not.to.match(/stopped: /)
  })

  it("sends the workers' own stderr to GUNICORN_ERROR_LOG too", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-errorlog-'))
    const file = path.join(dir, 'error.log')
    // a worker whose record builder dies says so on its stderr, and the primary says it died
    const run = await started({GUNICORN_ERROR_LOG: file, AUDIT_LOGS_FAILPOINT: 'builder-crash'})
    try {
      await request(`${run.url}/json?n=crash`).catch(() => undefined)
      const text = await until(
        () => {
          const t = readFileSync(file, 'utf8')
          return t.includes('its record builder stopped') && /\[WARNING\] worker \d+ died/.test(t) ? t : undefined
        },
        30_000,
        "the worker's and the primary's lines in the error log",
      )
      expect(text).to.include('[audit-logs] worker ')
      expect(run.stderr()).not.to.include('its record builder stopped')
    } finally {
      await run.stop()
    }
  })

  it("opens GUNICORN_ERROR_LOG again on SIGHUP (logrotate): the primary's lines and the workers' stderr go to the new file", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-errorlog-'))
    const file = path.join(dir, 'error.log')
    // a worker whose record builder dies says so on its stderr: the first request makes one
    const run = await startRun(
      ['--upstream', app.url, '--no-database'],
      {GUNICORN_ERROR_LOG: file, AUDIT_LOGS_FAILPOINT: 'builder-crash'},
      {expectFailure: true},
    )
    try {
      await until(() => existsSync(file) && readFileSync(file, 'utf8').includes('listening on'), 60_000, 'run to listen')
      expect(statSync(file).mode & 0o007, 'not readable by others').to.equal(0)
      renameSync(file, `${file}.1`)
      run.child.kill('SIGHUP')
      await until(() => existsSync(file), 10_000, 'the new error log')
      expect(readFileSync(`${file}.1`, 'utf8')).to.include('SIGHUP: reopening log files')
      expect(statSync(file).mode & 0o007, 'not readable by others').to.equal(0)
      await request(`${run.url}/json?n=crash`).catch(() => undefined)
      await until(
        () => {
          const t = readFileSync(file, 'utf8')
          return t.includes('[audit-logs] worker ') && t.includes('its record builder stopped') && /\[WARNING\] worker \d+ died/.test(t)
        },
        30_000,
        "the worker's and the primary's lines in the new error log",
      )
      expect(readFileSync(`${file}.1`, 'utf8')).not.to.include('its record builder stopped')
      expect(run.stderr()).not.to.include('its record builder stopped')
    } finally {
      await run.stop()
    }
  })

  it('refuses an unknown GUNICORN_LOG_LEVEL and an error log it cannot open, naming what is accepted', async () => {
    const level = await runCli(['run', '--upstream', app.url, '--no-database'], {env: {GUNICORN_LOG_LEVEL: 'verbose'}})
    expect(level.exitCode).to.equal(2)
    expect(level.stderr).to.match(
      /logLevel = "verbose" \(from environment GUNICORN_LOG_LEVEL\)\. Accepted: one of debug, info, warning, error, critical/,
    )
    const file = await runCli(['run', '--upstream', app.url, '--no-database'], {env: {GUNICORN_ERROR_LOG: '/nonexistent-dir/error.log'}})
    expect(file.exitCode).to.equal(2)
    expect(file.stderr).to.match(/errorLog \/nonexistent-dir\/error\.log cannot be opened for appending/)
  })
})
