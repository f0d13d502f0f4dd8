import {createHash, randomBytes} from 'node:crypto'
import {existsSync, readFileSync, readdirSync, statSync} from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type {AddressInfo} from 'node:net'
import net from 'node:net'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {expect} from 'chai'
import WebSocket from 'ws'
import {type TestDatabase, freshDatabase} from '../helpers/db.js'
import {type RunningServer, childPids, recordIn, request, startRun, until} from '../helpers/run-server.js'
import {type Upstream, pattern, startUpstream} from '../helpers/upstream.js'
import {skipUnless} from '../helpers/skip.js'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

describe('audit-logs run: proxy and capture (subprocess, real PostgreSQL)', function () {
  this.timeout(120_000)
  let app: Upstream
  let db: TestDatabase
  let run: RunningServer

  before(async () => {
    app = await startUpstream()
    db = await freshDatabase({migrated: true})
    run = await startRun(['--upstream', app.url], {AUDIT_LOGS_DATABASE_URL: db.url, AUDIT_LOGS_SLOW_MS: '500'})
  })
  after(async () => {
    await run?.stop()
    await app?.close()
    await db?.drop()
  })

  const rowFor = async (pathPrefix: string) =>
    until(
      async () =>
        (await db.client.query(`SELECT * FROM request_logs WHERE path LIKE $1 || '%' ORDER BY created_at DESC LIMIT 1`, [pathPrefix]))
          .rows[0],
      15_000,
      `a record for ${pathPrefix}`,
    )

  it('passes methods, status codes, headers and bodies through, adding X-Forwarded-*', async () => {
    const r = await request(`${run.url}/json?x=1`, {headers: {'x-custom': 'Value'}})
    expect(r.status).to.equal(200)
    const got = JSON.parse(r.body.toString())
    expect(got.path).to.equal('/json?x=1')
    expect(got.headers['x-custom']).to.equal('Value')
    expect(got.headers['x-forwarded-for']).to.equal('127.0.0.1')
    expect(got.headers['x-forwarded-proto']).to.equal('http')
    expect(got.headers['x-forwarded-host']).to.match(/^127\.0\.0\.1:\d+$/)
    const s = await request(`${run.url}/status/418`, {method: 'DELETE'})
    expect(s.status).to.equal(418)
    expect(s.headers['set-cookie']).to.deep.equal(['a=1; Path=/', 'b=2; Path=/'])
    const row = await rowFor('/status/418')
    expect(row).to.include({method: 'DELETE', status_code: 418})
  })

  it('answers once the records are in the journal (recordBeforeAnswer): sized, chunked and bodiless answers (HEAD, 204, 304) on one kept-alive connection', async () => {
    const agent = new http.Agent({keepAlive: true, maxSockets: 1})
    const journal = () =>
      readdirSync(run.journalDir)
        .filter((n) => /\.(open|jsonl)$/.test(n))
        .map((n) => readFileSync(path.join(run.journalDir, n), 'utf8'))
        .join('')
    try {
      const asks: Array<[string, string, number]> = [
        ['GET', '/json', 200],
        ['HEAD', '/json', 200],
        ['GET', '/status/204', 204],
        ['GET', '/status/304', 304],
        ['POST', '/echo', 200],
        ['GET', '/download?bytes=200000', 200],
      ]
      for (const [i, [method, url, status]] of asks.entries()) {
        const id = `held-${i}-${Date.now()}`
        const r = await request(`${run.url}${url}`, {
          agent,
          method,
          headers: {'x-request-id': id},
          ...(method === 'POST' ? {body: 'abc'} : {}),
        })
        expect(r.status, `${method} ${url}`).to.equal(status)
        // read at once, no waiting: the answer came after its records were written
        expect(journal(), `${method} ${url}: its record in the journal when the answer ended`).to.contain(`"request_id":"${id}"`)
      }
    } finally {
      agent.destroy()
    }
  })

  it("records the client's address and scheme from X-Forwarded-For/-Proto only when a trusted proxy sent them", async () => {
    const spoofed = {'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https'}
    const direct = await request(`${run.url}/json?via=client`, {headers: spoofed})
    expect(JSON.parse(direct.body.toString()).headers['x-forwarded-proto']).to.equal('https') // forwarded as it came: the app decides whom it trusts
    const untrusted = await until(
      async () => (await db.client.query(`SELECT scheme, host(ip) AS ip FROM request_logs WHERE query->>'via' = 'client'`)).rows[0],
      15_000,
      'the record',
    )
    expect(untrusted).to.deep.equal({scheme: 'http', ip: '127.0.0.1'})
    const behindProxy = await startRun(['--upstream', app.url], {AUDIT_LOGS_DATABASE_URL: db.url, AUDIT_LOGS_TRUSTED_PROXIES: '127.0.0.1'})
    try {
      await request(`${behindProxy.url}/json?via=proxy`, {headers: spoofed})
      const trusted = await until(
        async () => (await db.client.query(`SELECT scheme, host(ip) AS ip FROM request_logs WHERE query->>'via' = 'proxy'`)).rows[0],
        15_000,
        'the record',
      )
      expect(trusted).to.deep.equal({scheme: 'https', ip: '203.0.113.9'})
    } finally {
      await behindProxy.stop()
    }
  })

  it('streams a 50 MiB upload and download byte for byte, recording bodies within the bound', async () => {
    const big = pattern(50 * 1024 * 1024)
    const up = await request(`${run.url}/upload`, {method: 'POST', body: big, headers: {'content-type': 'application/octet-stream'}})
    expect(JSON.parse(up.body.toString())).to.deep.equal({size: big.length, sha256: sha(big)})
    const down = await request(`${run.url}/download?bytes=${big.length}`)
    expect(down.body.length).to.equal(big.length)
    expect(sha(down.body)).to.equal(sha(big))
    const upRow = await rowFor('/upload')
    expect(Number(upRow.request_body_size)).to.equal(big.length)
    expect(upRow.request_body).to.equal(`[binary application/octet-stream, ${big.length} bytes]`)
    const downRow = await rowFor('/download')
    expect(Number(downRow.response_body_size)).to.equal(big.length)
    expect(downRow.response_body_truncated).to.equal(true)
  })

  it('passes a gzip response through compressed and records it decoded', async () => {
    const r = await request(`${run.url}/gzip`)
    expect(r.headers['content-encoding']).to.equal('gzip')
    const row = await rowFor('/gzip')
    expect(JSON.parse(row.response_body)).to.deep.equal({compressed: true, items: [1, 2, 3]})
  })

  it("passes trailer fields after the body; a response the app cuts short is cut for the client too, and recorded as the app's doing", async () => {
    const get = (p: string) =>
      new Promise<{status: number; body: string; trailers: Record<string, string | undefined>; error?: string}>((resolve) => {
        http.get(`${run.url}${p}`, (res) => {
          let body = ''
          res.on('data', (c: Buffer) => (body += c))
          res.on('end', () => resolve({status: res.statusCode!, body, trailers: res.trailers}))
          res.on('error', (e) => resolve({status: res.statusCode!, body, trailers: {}, error: e.message}))
        })
      })
    const t = await get('/trailers')
    expect(t).to.deep.include({status: 200, body: 'body'})
    expect(t.trailers['x-checksum']).to.equal('sha256=abc')
    const cut = await get('/cut')
    expect(cut.body).to.equal('partial')
    expect(cut.error).to.be.a('string') // the client sees the response end early, as it would from the app itself
    const row = await rowFor('/cut')
    expect(row.error).to.match(/^upstream: the app ended the connection before the response ended/)
    expect(row.flags).to.include('upstream_error')
    expect(row.response_body).to.equal('partial')
  })

  it('passes SSE events as they are sent', async () => {
    // the app sends three events 300 ms apart: a proxy that buffered would hand them over together
    const chunks: string[] = []
    await new Promise<void>((resolve, reject) => {
      http
        .get(`${run.url}/sse`, (res) => {
          res.setEncoding('utf8')
          res.on('data', (c: string) => chunks.push(c))
          res.on('end', resolve)
        })
        .on('error', reject)
    })
    expect(chunks[0]).to.equal('data: event 1\n\n')
    expect(chunks.join('')).to.equal('data: event 1\n\ndata: event 2\n\ndata: event 3\n\n')
    const row = await rowFor('/sse')
    expect(row.response_body).to.equal('data: event 1\n\ndata: event 2\n\ndata: event 3\n\n')
  })

  it('passes a WebSocket through and records the connection once', async () => {
    const ws = new WebSocket(`${run.url.replace('http', 'ws')}/ws`)
    await new Promise((r, j) => ws.once('open', r).once('error', j))
    const echoed = await new Promise<string>((resolve) => {
      ws.once('message', (d) => resolve(d.toString()))
      ws.send('hello through the proxy')
    })
    expect(echoed).to.equal('hello through the proxy')
    ws.close()
    const row = await rowFor('/ws')
    expect(row.status_code).to.equal(101)
    const n = await db.client.query(`SELECT count(*)::int AS n FROM request_logs WHERE path = '/ws'`)
    expect(n.rows[0].n).to.equal(1)
  })

  it('records invalid UTF-8 and JSON nested 10,000 deep within bounds', async () => {
    const bad = await request(`${run.url}/invalid-utf8`)
    expect([...bad.body]).to.deep.equal([0x6f, 0x6b, 0xff, 0xfe, 0xc3, 0x28, 0x21])
    const row = await rowFor('/invalid-utf8')
    expect(row.response_body.startsWith('ok')).to.equal(true)
    const nested = await request(`${run.url}/nested`)
    expect(nested.body.length).to.equal(20_000)
    const nrow = await rowFor('/nested')
    expect(nrow.response_body.length).to.be.at.most(8192)
    expect(nrow.response_body_truncated).to.equal(true)
  })

  it('passes a 1 MiB header set', async () => {
    const headers: Record<string, string> = {}
    for (let i = 0; i < 128; i++) headers[`x-h-${i}`] = 'v'.repeat(8192)
    const r = await request(`${run.url}/headers`, {headers})
    expect(r.status).to.equal(200)
    expect(JSON.parse(r.body.toString()).count).to.be.at.least(128)
    expect(String(r.headers['x-big']).length).to.equal(200_000)
    await rowFor('/headers')
  })

  it('serves others while a slowloris client dribbles its headers', async () => {
    const slow = net.connect(Number(new URL(run.url).port), '127.0.0.1')
    await new Promise((r) => slow.once('connect', r))
    slow.write('GET /json HTTP/1.1\r\nHost: x\r\n')
    const dribble = setInterval(() => slow.write('X-a: b\r\n'), 100)
    try {
      for (let i = 0; i < 5; i++) expect((await request(`${run.url}/json`)).status).to.equal(200)
    } finally {
      clearInterval(dribble)
      slow.destroy()
    }
  })

  it('attributes the user from X-Audit-User (stripped before the client) and flags slow and suspicious requests', async () => {
    const who = await request(`${run.url}/whoami`)
    expect(who.headers['x-audit-user']).to.equal(undefined)
    expect(who.headers['x-audit-extra']).to.equal(undefined)
    const row = await rowFor('/whoami')
    expect(row.user_id).to.equal('user-42')
    expect(row.extra).to.deep.equal({tenant: 't1'})
    await request(`${run.url}/slow?ms=700`)
    expect((await rowFor('/slow')).flags).to.include('slow')
    await request(`${run.url}/json?id=1%27%20OR%20%271%27=%271`, {headers: {'user-agent': 'sqlmap/1.8'}})
    const sus = await until(
      async () => (await db.client.query(`SELECT flags FROM request_logs WHERE 'suspicious:scanner' = ANY(flags)`)).rows[0],
      10_000,
    )
    expect(sus.flags).to.include.members(['suspicious:sqli', 'suspicious:scanner'])
  })

  it('stores what a client or an app can send that PostgreSQL would refuse as it stands: a URL longer than an index entry, a 5,000-character user, a lone surrogate', async () => {
    const longPath = '/long/' + randomBytes(3750).toString('hex')
    const longUrl = `${longPath}?q=${randomBytes(2000).toString('hex')}`
    expect((await request(`${run.url}${longUrl}`)).status).to.equal(404)
    const user = randomBytes(3750).toString('base64') // 5,000 characters PostgreSQL cannot compress into an index entry
    expect(
      (await request(`${run.url}/json?who=basic`, {headers: {authorization: `Basic ${Buffer.from(`${user}:pw`).toString('base64')}`}}))
        .status,
    ).to.equal(200)
    expect((await request(`${run.url}/odd-extra`)).status).to.equal(200)
    expect((await rowFor('/long/')).path).to.equal(longPath)
    const access = await until(
      async () => (await db.client.query(`SELECT url FROM access_logs WHERE url LIKE '/long/%'`)).rows[0],
      15_000,
      'the access record of the long URL',
    )
    expect(access.url).to.equal(longUrl)
    const basic = await until(
      async () => (await db.client.query(`SELECT user_id FROM request_logs WHERE query->>'who' = 'basic'`)).rows[0],
      15_000,
      'the basic-auth record',
    )
    expect(basic.user_id).to.equal(user.slice(0, 256))
    expect((await rowFor('/odd-extra')).extra).to.deep.equal({note: '\ufffd'})
    expect(existsSync(path.join(run.journalDir, 'dead-letter')), 'nothing refused').to.equal(false)
  })

  it('writes access records for excluded paths too, and rotating JSONL files', async () => {
    await request(`${run.url}/static/app.css`)
    const access = await until(
      async () => (await db.client.query(`SELECT * FROM access_logs WHERE url = '/static/app.css'`)).rows[0],
      10_000,
    )
    expect(access.status_code).to.equal(404)
    const none = await db.client.query(`SELECT count(*)::int AS n FROM request_logs WHERE path = '/static/app.css'`)
    expect(none.rows[0].n).to.equal(0)
    await until(
      () =>
        readdirSync(run.logDir).includes('access.jsonl') &&
        readFileSync(path.join(run.logDir, 'access.jsonl'), 'utf8').includes('/static/app.css'),
      10_000,
    )
    // records are personal data: the JSONL files for the owner and its group, the journal for the owner alone
    const mode = (p: string) => statSync(p).mode & 0o777
    const umask = process.umask()
    expect(mode(run.logDir)).to.equal(0o750 & ~umask)
    for (const f of readdirSync(run.logDir).filter((n) => n.includes('.jsonl')))
      expect(mode(path.join(run.logDir, f)), f).to.equal(0o640 & ~umask)
    expect(mode(run.journalDir)).to.equal(0o700 & ~umask)
    expect(mode(path.join(run.journalDir, 'checkpoints'))).to.equal(0o700 & ~umask)
    const segments = readdirSync(run.journalDir).filter((n) => /\.(open|jsonl)$/.test(n))
    expect(segments).to.not.have.length(0)
    for (const f of segments) expect(mode(path.join(run.journalDir, f)), f).to.equal(0o600 & ~umask)
    for (const f of readdirSync(path.join(run.journalDir, 'checkpoints')))
      expect(mode(path.join(run.journalDir, 'checkpoints', f)), f).to.equal(0o600 & ~umask)
  })

  it('serves /metrics and /health on the admin listener', async () => {
    const metrics = (await request(`${run.adminUrl}/metrics`)).body.toString()
    expect(metrics).to.match(/audit_logs_requests_total \d+/)
    expect(metrics).to.match(/audit_logs_records_written_total\{sink="postgres"\} \d+/)
    expect(metrics).to.contain('audit_logs_journal_bytes')
    const health = JSON.parse((await request(`${run.adminUrl}/health`)).body.toString())
    expect(health.status).to.equal('ok')
    expect(health.sinks).to.have.keys('files', 'postgres')
  })

  it('answers 502 and flags upstream_error when the app is down', async () => {
    const down = await startRun(['--upstream', 'http://127.0.0.1:1', '--no-database'])
    try {
      const r = await request(`${down.url}/json`)
      expect(r.status).to.equal(502)
      const line = await until(() => {
        try {
          return readFileSync(path.join(down.logDir, 'requests.jsonl'), 'utf8')
            .split('\n')
            .find((l) => l.includes('upstream_error'))
        } catch {
          return undefined
        }
      }, 10_000)
      expect(JSON.parse(line!).status_code).to.equal(502)
    } finally {
      await down.stop()
    }
  })
  it('proxies to an https:// upstream, trusting a private CA given in NODE_EXTRA_CA_CERTS, and answers 502 for an untrusted one', async () => {
    const tls = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'tls')
    const secure = https.createServer(
      {key: readFileSync(path.join(tls, 'server.key')), cert: readFileSync(path.join(tls, 'server.pem'))},
      (req, res) => {
        res.writeHead(200, {'content-type': 'application/json'})
        res.end(JSON.stringify({tls: true, path: req.url, forwardedProto: req.headers['x-forwarded-proto']}))
      },
    )
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve))
    const upstream = `https://127.0.0.1:${(secure.address() as AddressInfo).port}`
    const recorded = (dir: string, p: string) => recordIn(dir, p)
    const trusted = await startRun(['--upstream', upstream, '--no-database'], {NODE_EXTRA_CA_CERTS: path.join(tls, 'ca.pem')})
    const untrusted = await startRun(['--upstream', upstream, '--no-database'])
    try {
      const ok = await request(`${trusted.url}/secure?x=1`)
      expect(ok.status).to.equal(200)
      expect(JSON.parse(ok.body.toString())).to.deep.equal({tls: true, path: '/secure?x=1', forwardedProto: 'http'})
      const rec = await recorded(trusted.logDir, '/secure')
      expect(rec.status_code).to.equal(200)
      expect(JSON.parse(rec.response_body)).to.include({tls: true})

      const refused = await request(`${untrusted.url}/secure`)
      expect(refused.status).to.equal(502)
      const bad = await recorded(untrusted.logDir, '/secure')
      expect(bad.flags).to.include('upstream_error')
      expect(bad.error).to.match(/certificate/i)
    } finally {
      await trusted.stop()
      await untrusted.stop()
      secure.close()
    }
  })
  it("ships at the background priority: the primary's threads but its main one, and the sink's PostgreSQL backend, at nice 19 in the idle class", async function () {
    skipUnless(this, process.platform === 'linux', 'Linux (/proc)')
    // nice is field 19 of /proc/…/stat, the scheduling policy field 41 (SCHED_IDLE = 5)
    const sched = (file: string) => {
      const f = readFileSync(file, 'utf8')
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ')
      return {nice: Number(rest[16]), policy: Number(rest[38])}
    }
    const pid = run.child.pid!
    const threads = () => readdirSync(`/proc/${pid}/task`).map((tid) => ({tid: Number(tid), ...sched(`/proc/${pid}/task/${tid}/stat`)}))
    await request(`${run.url}/json?nice=1`)
    await rowFor('/json') // the sink has connected and written
    const all = threads()
    expect(
      all.find((t) => t.tid === pid),
      'the main thread',
    ).to.include({nice: 0, policy: 0})
    const others = all.filter((t) => t.tid !== pid)
    expect(others.length).to.be.greaterThan(3)
    expect(others.filter((t) => t.nice === 19 && t.policy === 5).length, 'background threads').to.be.greaterThan(others.length / 2)
    const backends = (
      await db.client.query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'audit-logs' AND pid <> pg_backend_pid()",
      )
    ).rows.map((r) => Number(r.pid))
    const niced = backends.filter((p) => sched(`/proc/${p}/stat`).nice === 19 && sched(`/proc/${p}/stat`).policy === 5)
    expect(niced, 'the sink backend').to.have.length.greaterThan(0)
    expect(readFileSync(`/proc/${niced[0]}/autogroup`, 'utf8')).to.match(/nice 19/)

    const plain = await startRun(['--upstream', app.url, '--no-database'], {AUDIT_LOGS_BACKGROUND_NICE: '0'})
    try {
      expect(
        readdirSync(`/proc/${plain.child.pid}/task`).every((tid) => sched(`/proc/${plain.child.pid}/task/${tid}/stat`).nice === 0),
      ).to.equal(true)
    } finally {
      await plain.stop()
    }
  })
  it('captures when node itself was started with V8 and process-wide options (which a worker thread refuses)', async () => {
    // e.g. `node --max-old-space-size=4096 $(which audit-logs) run …`: the proxy workers inherit the
    // options, and their record builder threads must start anyway
    const proxy = await startRun(
      ['--upstream', app.url, '--no-database', '--workers', '1'],
      {},
      {nodeArgs: ['--max-old-space-size=1024', '--v8-pool-size=2', '--title=audit-logs-test']},
    )
    try {
      expect((await request(`${proxy.url}/status/201`)).status).to.equal(201)
      const record = await recordIn(proxy.logDir, '/status/201')
      expect(record.status_code).to.equal(201)
      expect(proxy.stderr()).not.to.match(/builder thread (failed|stopped)|died/)
    } finally {
      await proxy.stop()
    }
  })
  it('sends a request with no body again when the app closed the kept-alive connection just as it was reused; a POST with a body gets 502', async () => {
    // every connection serves one request; the next one on it is cut, as a keep-alive timeout would
    const flaky = http.createServer((req, res) => {
      const socket = req.socket as net.Socket & {served?: number}
      socket.served = (socket.served ?? 0) + 1
      if (socket.served > 1) return socket.destroy()
      req.resume()
      req.on('end', () => res.end(JSON.stringify({ok: true})))
    })
    await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve))
    const proxy = await startRun(['--upstream', `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`, '--no-database'])
    try {
      const agent = new http.Agent({keepAlive: false})
      for (let i = 0; i < 5; i++) expect((await request(`${proxy.url}/again/${i}`, {agent})).status, `GET ${i}`).to.equal(200)
      expect((await request(`${proxy.url}/again/delete`, {method: 'DELETE', agent})).status).to.equal(200)
      // not idempotent, or with a body: never sent twice
      const post = await request(`${proxy.url}/again/post`, {
        method: 'POST',
        body: 'x=1',
        headers: {'content-type': 'application/x-www-form-urlencoded'},
        agent,
      })
      expect(post.status).to.equal(502)
      const records = await until(() => {
        try {
          const all = readFileSync(path.join(proxy.logDir, 'requests.jsonl'), 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l))
          return all.length >= 7 ? all : undefined
        } catch {
          return undefined
        }
      }, 10_000)
      expect(records.filter((r) => r.status_code === 200)).to.have.length(6)
      expect(records.find((r) => r.path === '/again/post').flags).to.include('upstream_error')
    } finally {
      await proxy.stop()
      flaky.close()
    }
  })
})

describe('audit-logs run: the environment of its processes', function () {
  this.timeout(120_000)
  /** A process's environment variable, as the kernel holds it (/proc/PID/environ); undefined when unset. */
  const envOf = (pid: number, name: string) =>
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .find((kv) => kv.startsWith(`${name}=`))
      ?.slice(name.length + 1)
  // the app answers with its own MALLOC_ARENA_MAX
  const app = `require('node:http').createServer((q, s) => s.end(String(process.env.MALLOC_ARENA_MAX))).listen(Number(process.env.PORT), '127.0.0.1')`

  for (const given of [undefined, '3']) {
    it(`the workers limit malloc's arenas (${given ?? 'unset: 2'}); the app it spawns gets the environment as the user gave it (${given})`, async () => {
      const run = await startRun(['--no-database', '--', process.execPath, '-e', app], {MALLOC_ARENA_MAX: given})
      try {
        const reply = await request(`${run.url}/`)
        expect(reply.body.toString()).to.equal(String(given))
        const workers = childPids(run.child.pid!).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker-main'))
        expect(workers).to.have.length.greaterThan(0)
        for (const pid of workers) expect(envOf(pid, 'MALLOC_ARENA_MAX')).to.equal(given ?? '2')
        expect(envOf(run.child.pid!, 'MALLOC_ARENA_MAX')).to.equal(given)
      } finally {
        await run.stop()
      }
    })
  }
})
