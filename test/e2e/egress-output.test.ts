import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import https from 'node:https'
import net, {type AddressInfo} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {freePort} from '../../src/util/process.js'
import {runCli} from '../helpers/cli.js'
import {count, freshDatabase} from '../helpers/db.js'
import {request, startRun, until} from '../helpers/run-server.js'
import {skipUnless} from '../helpers/skip.js'
import {type Upstream, startUpstream} from '../helpers/upstream.js'

/** the body bound of the egress test's run (maxBodyLength): its POST sends three times as much */
const BODY_BOUND = 1000

const hasCurl = (() => {
  try {
    execFileSync('curl', ['--version'])
    return true
  } catch {
    return false
  }
})()

/** A TLS server with a certificate made here (openssl): what a tunnel to an HTTPS service carries, end to end. */
function tlsServer(dir: string): Promise<{port: number; close(): void}> {
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')].concat([
      '-subj',
      '/CN=localhost',
      '-days',
      '1',
    ]),
    {stdio: 'ignore'},
  )
  const server = https.createServer(
    {key: readFileSync(path.join(dir, 'k.pem')), cert: readFileSync(path.join(dir, 'c.pem'))},
    (_req, res) => res.end('secret-over-tls'),
  )
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({port: (server.address() as AddressInfo).port, close: () => server.close()})),
  )
}

describe('run: the app’s outbound calls (--egress-bind) and its own output (captureOutput)', function () {
  this.timeout(180_000)
  let app: Upstream
  before(async () => (app = await startUpstream()))
  after(() => app?.close())

  it('a spawned app that calls out through HTTP_PROXY (curl): plain HTTP recorded and masked (a POST’s JSON bodies cut at the body bound with their whole size), HTTPS as a CONNECT tunnel that still works', async function () {
    skipUnless(this, hasCurl, 'no curl on this machine', {expectedInCi: true})
    const db = await freshDatabase({migrated: true})
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-egress-'))
    const tls = await tlsServer(dir)
    const appFile = path.join(dir, 'app.mjs')
    // the app: each request makes it call a URL with curl, which honours the proxy variables run sets
    writeFileSync(
      appFile,
      `import http from 'node:http'
      import {execFileSync} from 'node:child_process'
      http.createServer((req, res) => {
        const url = new URL(req.url, 'http://x').searchParams.get('url')
        const chunks = []
        req.on('data', (c) => chunks.push(c))
        req.on('end', () => {
          // a request with a body: the app POSTs that body (JSON) out
          const body = Buffer.concat(chunks)
          const post = body.length ? ['-X', 'POST', '-H', 'content-type: application/json', '--data-binary', '@-'] : []
          try { res.end(execFileSync('curl', ['-sk', '--max-time', '10', '-H', 'Authorization: Bearer out-secret', ...post, url], {input: body})) }
          catch (e) { res.writeHead(502).end(String(e)) }
        })
      }).listen(Number(process.env.PORT), '127.0.0.1')`,
    )
    const egress = `127.0.0.1:${await freePort()}`
    const run = await startRun(
      ['--egress-bind', egress, '--', process.execPath, appFile],
      {AUDIT_LOGS_DATABASE_URL: db.url, NO_PROXY: '', no_proxy: '', AUDIT_LOGGER_MAX_BODY_LENGTH: String(BODY_BOUND)},
      {dir},
    )
    try {
      const plain = await request(`${run.url}/?url=${encodeURIComponent(`${app.url}/mirror?token=q-secret&page=2`)}`)
      expect(plain.status).to.equal(200)
      const secure = await request(`${run.url}/?url=${encodeURIComponent(`https://localhost:${tls.port}/private`)}`)
      expect(secure.body.toString()).to.equal('secret-over-tls') // the tunnel carried TLS end to end
      await until(async () => (await count(db.client, 'outbound_logs')) >= 2, 20_000, 'two outbound records')
      const {rows} = await db.client.query('SELECT * FROM outbound_logs ORDER BY created_at')
      const [http, tunnel] = rows
      expect(http).to.include({
        method: 'GET',
        scheme: 'http',
        host: '127.0.0.1',
        path: '/mirror',
        status_code: 200,
        tunnel: false,
        outcome: 'completed',
      })
      expect(http.port).to.equal(app.port)
      expect(http.query).to.deep.equal({token: '****', page: '2'})
      expect(http.request_headers.authorization).to.equal('Bearer ****')
      expect(tunnel).to.include({method: 'CONNECT', scheme: 'https', host: 'localhost', port: tls.port, status_code: 200, tunnel: true})
      expect(Number(tunnel.bytes_sent)).to.be.greaterThan(100) // a TLS handshake and the request, encrypted
      expect(Number(tunnel.bytes_received)).to.be.greaterThan(100)
      // whichever side closed first: curl (the app) or the TLS server (the remote)
      expect(tunnel.outcome).to.match(/^closed by the (app|remote)$/)
      expect(http.duration_ms).to.be.a('number').and.greaterThan(0)
      expect(JSON.stringify(rows)).not.to.match(/out-secret|q-secret/)
      const q = await runCli(['query', '--log-type', 'outbound', '--status', '200', '--json'], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
      expect(q.exitCode, q.stderr).to.equal(0)
      expect(q.json().records).to.have.length(2)

      // a POST with a JSON body over the body bound, a password in it: both bodies kept masked, cut at the bound, with their whole size
      const payload = JSON.stringify({
        username: 'alice',
        password: 'egress-pw-secret',
        api_key: 'egress-key-secret',
        filler: 'f'.repeat(3 * BODY_BOUND),
      })
      const posted = await request(`${run.url}/?url=${encodeURIComponent(`${app.url}/mirror?kind=post`)}`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: payload,
      })
      expect(posted.status).to.equal(200)
      expect(posted.body.toString()).to.equal(payload) // the app got the whole answer: the bound is the record's, not the call's
      const post = await until(
        async () => (await db.client.query("SELECT * FROM outbound_logs WHERE method = 'POST'")).rows[0],
        20_000,
        'the POST record',
      )
      expect(post).to.include({
        path: '/mirror',
        status_code: 200,
        outcome: 'completed',
        request_body_truncated: true,
        response_body_truncated: true,
      })
      expect(Number(post.request_body_size)).to.equal(Buffer.byteLength(payload))
      expect(Number(post.response_body_size)).to.equal(Buffer.byteLength(payload))
      for (const body of [post.request_body, post.response_body]) {
        expect(body).to.match(/^\{"username":"alice","password":"\*\*\*\*","api_key":"\*\*\*\*","filler":"f+$/)
        expect(Buffer.byteLength(body)).to.be.at.most(BODY_BOUND)
      }
      expect(post.duration_ms).to.be.a('number').and.greaterThan(0)
      expect(JSON.stringify(post)).not.to.match(/egress-pw-secret|egress-key-secret/)
      // a CONNECT to a port where nothing listens: 502 to the app, recorded as such
      const closed = await freePort()
      const failed = await request(`${run.url}/?url=${encodeURIComponent(`https://127.0.0.1:${closed}/`)}`)
      expect(failed.status).to.equal(502)
      await until(async () => (await count(db.client, 'outbound_logs', "outcome = 'could not connect'")) === 1, 20_000, 'the failed tunnel')
      // hostile CONNECT targets get 400 and the proxy stays up
      const raw = await new Promise<string>((resolve) => {
        const socket = net.connect(Number(egress.split(':')[1]), '127.0.0.1', () =>
          socket.write('CONNECT 127.0.0.1:70000 HTTP/1.1\r\nHost: x\r\n\r\n'),
        )
        let got = ''
        socket.on('data', (c) => (got += c))
        socket.on('close', () => resolve(got))
        socket.on('error', () => resolve(got))
      })
      expect(raw).to.match(/^HTTP\/1\.1 400/)
      expect((await request(`${run.url}/?url=${encodeURIComponent(`${app.url}/json`)}`)).status).to.equal(200)
    } finally {
      await run.stop()
      tls.close()
      await db.drop()
    }
  })

  it('an egress address that is not loopback is refused at start (it would be an open proxy), before anything starts', async () => {
    // no database configured: the embedded default would be made in the working directory, were anything started first
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-egress-'))
    const r = await runCli(['run', '--upstream', app.url, '--bind', `127.0.0.1:${await freePort()}`, '--egress-bind', '0.0.0.0:9480'], {
      cwd: dir,
    })
    expect(r.exitCode).to.equal(2)
    expect(r.stderr).to.match(/egressBind 0\.0\.0\.0:9480 is not a loopback address/)
    expect(readdirSync(dir), 'what the refused start left in its directory').to.deep.equal([])
  })

  it('captureOutput: the app’s stdout and stderr lines as app records (level parsed, long lines cut, secrets masked), passed through unchanged', async () => {
    const db = await freshDatabase({migrated: true})
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-output-'))
    const appFile = path.join(dir, 'app.mjs')
    writeFileSync(
      appFile,
      `import http from 'node:http'
      console.log('plain line')
      console.log(JSON.stringify({level: 50, msg: 'pino error'}))
      console.error('WARNING:root:careful')
      console.error('[2026-12-06 10:00:00 +0000] [42] [INFO] Booting worker')
      console.log('x'.repeat(20000))
      console.log('calling with Authorization: Bearer abc.def.ghi')
      process.stdout.write('no newline at the end')
      http.createServer((req, res) => res.end('ok')).listen(Number(process.env.PORT), '127.0.0.1')`,
    )
    const run = await startRun(
      ['--capture-output', '--', process.execPath, appFile],
      {AUDIT_LOGS_DATABASE_URL: db.url, AUDIT_LOGS_OUTPUT_MAX_LINE_BYTES: '1000'},
      {dir},
    )
    try {
      expect((await request(`${run.url}/`)).status).to.equal(200)
      await until(async () => (await count(db.client, 'app_logs')) >= 6, 20_000, 'six app records')
      await run.stop()
      await until(async () => (await count(db.client, 'app_logs')) >= 7, 5000, 'the unfinished last line, at exit').catch(() => {})
      const {rows} = await db.client.query('SELECT stream, level, message, truncated FROM app_logs ORDER BY created_at, id')
      const by = (m: string) => rows.find((r) => r.message.startsWith(m))
      expect(by('plain line')).to.include({stream: 'stdout', level: null, truncated: false})
      expect(by('{"level":50')).to.include({level: 'ERROR'})
      expect(by('WARNING:root')).to.include({stream: 'stderr', level: 'WARNING'})
      expect(by('[2026-12-06')).to.include({level: 'INFO'})
      expect(by('xxx')).to.include({truncated: true})
      expect(by('xxx').message).to.have.length(1000)
      expect(by('calling with').message).to.equal('calling with Authorization: Bearer ****')
      // the terminal got the lines as the app wrote them
      const stdout = String((await run.child).stdout)
      expect(stdout).to.include('plain line\n')
      expect(stdout).to.include('x'.repeat(20000))
      expect(stdout).to.include('Bearer abc.def.ghi')
      const q = await runCli(['query', '--log-type', 'app', '--search', 'careful', '--json'], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
      expect(q.json().records.map((r: {level: string}) => r.level)).to.deep.equal(['WARNING'])
    } finally {
      await run.stop()
      await db.drop()
    }
  })
})
