import {existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import pg from 'pg'
import {type EmbeddedServer, acquireEmbedded} from '../../src/embedded/server.js'
import {clientConfig, withDatabase} from '../../src/stores/postgres/connection.js'
import {migrate} from '../../src/stores/postgres/migrations.js'
import {freePort} from '../../src/util/process.js'
import {ROOT, runCli} from '../helpers/cli.js'
import {type TestDatabase, count, freshDatabase} from '../helpers/db.js'
import {jsonlLines} from '../helpers/jsonl.js'
import {childPids, recordIn, request, sendLoops, startRun, until} from '../helpers/run-server.js'
import {type Upstream, startUpstream} from '../helpers/upstream.js'
import {skipUnless} from '../helpers/skip.js'

/** Sends requests with `parallel` loops until stop() is called; counts what succeeded. */
function traffic(url: string, parallel = 4) {
  const stats = {ok: 0, failed: 0}
  const loops = sendLoops(parallel, async (k, i) => {
    try {
      const r = await request(`${url}/json?loop=${k}&i=${i}`)
      if (r.status === 200) stats.ok++
      else stats.failed++
    } catch {
      stats.failed++
    }
  })
  return {
    stats,
    stop: async () => {
      await loops.stop()
      return stats
    },
  }
}

/** Ten rounds of 20 concurrent POSTs of 6,000 bytes, each answered 200; returns how many were sent. */
async function postRounds(url: string): Promise<number> {
  const big = 'x'.repeat(6000)
  let sent = 0
  for (let round = 0; round < 10; round++) {
    const replies = await Promise.all(
      Array.from({length: 20}, () => request(`${url}/echo`, {method: 'POST', body: big, headers: {'content-type': 'text/plain'}})),
    )
    const bad = replies.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body.toString().slice(0, 200)}`)
    expect(bad, 'replies other than 200').to.deep.equal([])
    sent += replies.length
  }
  return sent
}

function journalIds(dir: string): Set<string> {
  const ids = new Set<string>()
  if (!existsSync(dir)) return ids
  for (const name of readdirSync(dir)) {
    if (!/\.(open|jsonl)$/.test(name)) continue
    for (const line of readFileSync(path.join(dir, name), 'utf8').split('\n')) {
      if (!line.startsWith('{"log_type":"request"')) continue
      try {
        ids.add(JSON.parse(line).id)
      } catch {
        // a torn last line: it never reached the journal whole
      }
    }
  }
  return ids
}

describe('audit-logs run: what it must survive', function () {
  this.timeout(180_000)
  let app: Upstream
  before(async () => {
    app = await startUpstream()
  })
  after(() => app.close())

  it('PostgreSQL stopped for 30 s while traffic flows: every request succeeds, every record arrives exactly once', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-outage-'))
    let pgServer: EmbeddedServer = await acquireEmbedded(dir)
    try {
      // the server is released even when run does not start
      const admin = new pg.Client(clientConfig(pgServer.adminUrl))
      await admin.connect()
      await admin.query('CREATE DATABASE outage')
      await admin.end()
      const url = withDatabase(pgServer.adminUrl, 'outage')
      const setup = new pg.Client(clientConfig(url))
      await setup.connect()
      await migrate(setup)
      await setup.end()
      const run = await startRun(['--upstream', app.url, '--no-files'], {AUDIT_LOGS_DATABASE_URL: url})
      try {
        const load = traffic(run.url)
        await new Promise((r) => setTimeout(r, 2000))
        await pgServer.release() // PostgreSQL goes away
        await new Promise((r) => setTimeout(r, 30_000))
        pgServer = await acquireEmbedded(dir) // and comes back on the same port
        await new Promise((r) => setTimeout(r, 2000))
        const sent = await load.stop()
        expect(sent.failed).to.equal(0)
        expect(sent.ok).to.be.greaterThan(100)
        const client = new pg.Client(clientConfig(url))
        await client.connect()
        try {
          await until(
            async () => (await count(client, 'request_logs')) >= sent.ok && (await count(client, 'access_logs')) >= sent.ok,
            60_000,
            'every record in PostgreSQL',
          )
          expect(await count(client, 'request_logs')).to.equal(sent.ok)
          expect(await count(client, 'access_logs')).to.equal(sent.ok)
          expect(run.stderr()).to.match(/sink postgres: .*retrying/)
        } finally {
          await client.end()
        }
      } finally {
        await run.stop()
      }
    } finally {
      await pgServer.release()
    }
  })

  it('kill -9 while traffic flows: every request answered in full has its records after a restart (recordBeforeAnswer, the default)', async () => {
    const db: TestDatabase = await freshDatabase({migrated: true})
    const first = await startRun(['--upstream', app.url, '--workers', '2'], {AUDIT_LOGS_DATABASE_URL: db.url})
    // answered in full: the status, and the whole body checked (a cut response is not an answer)
    const answered: string[] = []
    let cut = 0
    const agent = new http.Agent({keepAlive: true, maxSockets: 16})
    const payload = JSON.stringify({note: 'y'.repeat(2000)})
    // three kinds of answer: sized in one write (/api), chunked (/echo), sized over many writes (/download)
    const loops = sendLoops(6, async (k, i) => {
      const m = `k${k}-${i}`
      const kind = i % 3
      try {
        if (kind === 0) {
          const r = await request(`${first.url}/api/kill-${m}`, {agent})
          if (r.status === 200 && JSON.parse(r.body.toString()).ok === true) answered.push(`/api/kill-${m}`)
        } else if (kind === 1) {
          const r = await request(`${first.url}/echo?m=${m}`, {
            agent,
            method: 'POST',
            body: payload,
            headers: {'content-type': 'application/json'},
          })
          if (r.status === 200 && r.body.toString() === payload) answered.push(`/echo?m=${m}`)
        } else {
          const r = await request(`${first.url}/download?bytes=300000&m=${m}`, {agent})
          if (r.status === 200 && r.body.length === 300_000) answered.push(`/download?bytes=300000&m=${m}`)
        }
      } catch {
        cut++ // in flight when the server died
      }
    })
    try {
      await until(() => answered.length >= 600, 120_000, '600 answers')
      process.kill(-first.child.pid!, 'SIGKILL') // the whole server: primary, workers and their builder threads
      await first.child
      await loops.stop()
      agent.destroy()
      const second = await startRun(['--upstream', app.url], {AUDIT_LOGS_DATABASE_URL: db.url}, {dir: first.dir})
      // a request record is found by its path, and by its query's m where the path is shared
      const key = (u: string) => (u.startsWith('/api/') ? u : `${u.split('?')[0]}?m=${new URL(u, 'http://x').searchParams.get('m')}`)
      const requestKeys = async () => {
        const {rows} = await db.client.query(`SELECT path, query->>'m' AS m FROM request_logs`)
        return new Set(rows.map((r) => (r.m ? `${r.path}?m=${r.m}` : r.path) as string))
      }
      try {
        const urls = await until(
          async () => {
            const {rows} = await db.client.query(`SELECT url, count(*)::int AS n FROM access_logs GROUP BY url`)
            const byUrl = new Map(rows.map((r) => [r.url as string, r.n as number]))
            // the request records too (the sink may commit the two tables' rows in different batches)
            const n = (await db.client.query(`SELECT count(*)::int AS n FROM request_logs`)).rows[0].n as number
            return answered.every((u) => byUrl.has(u)) && n >= answered.length ? byUrl : undefined
          },
          60_000,
          'an access record of every request answered in full',
        ).catch(async (error: Error) => {
          const {rows} = await db.client.query(`SELECT url FROM access_logs`)
          const have = new Set(rows.map((r) => r.url as string))
          const lost = answered.filter((u) => !have.has(u))
          throw new Error(
            `${error.message}: ${lost.length} of ${answered.length} answered requests have no record, e.g. ${lost.slice(0, 5).join(' ')}`,
          )
        })
        expect(
          [...urls].filter(([, n]) => n !== 1),
          'access records twice',
        ).to.deep.equal([])
        // and the full request record of each
        const full = await requestKeys()
        expect(
          answered.filter((u) => !full.has(key(u))),
          'answered requests without a request record',
        ).to.deep.equal([])
        console.log(`      (${answered.length} answered in full before the kill, ${cut} cut by it: every answered one recorded once)`)
      } finally {
        await second.stop()
      }
    } finally {
      await first.stop().catch(() => {})
      await db.drop()
    }
  })

  it('kill -9 while traffic flows: after a restart every record that reached the journal is in PostgreSQL and in the files exactly once', async () => {
    const db: TestDatabase = await freshDatabase({migrated: true})
    const first = await startRun(['--upstream', app.url, '--workers', '2'], {AUDIT_LOGS_DATABASE_URL: db.url})
    try {
      const load = traffic(first.url)
      await new Promise((r) => setTimeout(r, 2500))
      process.kill(-first.child.pid!, 'SIGKILL') // the whole server: primary and workers
      await first.child
      await load.stop()
      const inJournal = journalIds(first.journalDir)
      const second = await startRun(['--upstream', app.url], {AUDIT_LOGS_DATABASE_URL: db.url}, {dir: first.dir})
      try {
        await until(
          async () => {
            const {rows} = await db.client.query('SELECT count(*)::int AS n FROM request_logs WHERE id = ANY($1::uuid[])', [[...inJournal]])
            return rows[0].n === inJournal.size
          },
          60_000,
          'the journal shipped after the restart',
        )
        const dup = await db.client.query('SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM request_logs')
        expect(dup.rows[0].n).to.equal(dup.rows[0].d)
        expect(dup.rows[0].n).to.be.greaterThan(0)
        // the files sink: a batch written before the kill but not checkpointed is cut and sent again, not repeated
        const ids = await until(
          () => {
            const all = jsonlLines(first.logDir, 'requests.jsonl').map((l) => JSON.parse(l).id as string)
            return [...inJournal].every((id) => all.includes(id)) ? all : undefined
          },
          60_000,
          'the journal in the files after the restart',
        )
        expect(ids.length, 'request lines in the files').to.equal(new Set(ids).size)
      } finally {
        await second.stop()
      }
    } finally {
      await db.drop()
    }
  })

  it('the shipping thread dies: it is started again and every record still arrives once, in PostgreSQL and in the files', async () => {
    const db: TestDatabase = await freshDatabase({migrated: true})
    // failpoint: the first shipping thread throws once it has delivered something
    const run = await startRun(['--upstream', app.url], {AUDIT_LOGS_DATABASE_URL: db.url, AUDIT_LOGS_FAILPOINT: 'shipping-crash'})
    try {
      for (let i = 0; i < 20; i++) expect((await request(`${run.url}/json?before=${i}`)).status).to.equal(200)
      await until(() => run.stderr().includes('shipping started again'), 20_000, 'the restart')
      expect(run.stderr()).to.contain('failpoint shipping-crash')
      for (let i = 0; i < 20; i++) expect((await request(`${run.url}/json?after=${i}`)).status).to.equal(200)
      await until(async () => (await db.client.query('SELECT count(*)::int AS n FROM request_logs')).rows[0].n >= 40, 20_000, '40 rows')
      const rows = (await db.client.query('SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM request_logs')).rows[0]
      expect(rows).to.deep.equal({n: 40, d: 40})
      const lines = await until(
        () => {
          const all = jsonlLines(run.logDir, 'requests.jsonl')
          return all.length >= 40 ? all : undefined
        },
        20_000,
        '40 lines in requests.jsonl',
      )
      expect(new Set(lines.map((l) => JSON.parse(l).id)).size).to.equal(lines.length)
      expect(lines).to.have.length(40)
      // the counters go on from where the dead thread left them (a counter that went back would break /metrics)
      await new Promise((r) => setTimeout(r, 600))
      const metrics = await request(`${run.adminUrl}/metrics`)
      expect(metrics.status).to.equal(200)
      expect(Number(/audit_logs_records_written_total\{sink="files"\} (\d+)/.exec(metrics.body.toString())?.[1])).to.be.at.least(80)
    } finally {
      await run.stop()
      await db.drop()
    }
  })

  it('masks a corpus of secrets everywhere: journal, JSONL files and PostgreSQL', async () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.U0VDUkVUX0pXVF9TSUc'
    const secrets = {
      jsonPassword: 'S3cr3t-json-pass',
      nestedToken: 'tok-nested-8842',
      refresh: 'refresh-7731',
      apiKey: 'ak-live-5521',
      formPasswd: 'form-passwd-9911',
      card: '4111 1111 1111 1111',
      multipart: 'mp-secret-6612',
      queryToken: 'qtok-4431',
      queryKey: 'qkey-2290',
      bearer: 'bearer-tok-77120',
      basic: Buffer.from('ann:basic-pw-443').toString('base64'),
      cookie: 'cookie-sess-3391',
      xApiKey: 'xkey-1180',
      xRefresh: 'xref-6654',
      sessionOut: 'setcookie-sess-5532',
      malformed: 'bad-json-pass-1133',
      jwt,
    }
    const sends = async (base: string) => {
      const h = {
        authorization: `Bearer ${secrets.bearer}`,
        'proxy-authorization': `Basic ${secrets.basic}`,
        cookie: `session=${secrets.cookie}; theme=dark`,
        'x-api-key': secrets.xApiKey,
        'x-refresh-token': secrets.xRefresh,
        'x-session': secrets.sessionOut,
      }
      const json = JSON.stringify({
        user: 'ann',
        Password: secrets.jsonPassword,
        profile: {access_token: secrets.nestedToken, list: [{refreshToken: secrets.refresh}]},
        api_key: secrets.apiKey,
        note: `token in text ${jwt}`,
      })
      await request(`${base}/mirror?token=${secrets.queryToken}&api_key=${secrets.queryKey}&page=2`, {
        method: 'POST',
        headers: {...h, 'content-type': 'application/json'},
        body: json,
      })
      await request(`${base}/mirror`, {
        method: 'POST',
        headers: {...h, 'content-type': 'application/x-www-form-urlencoded'},
        body: `user=ann&passwd=${secrets.formPasswd}&note=card+${secrets.card.replace(/ /g, '+')}`,
      })
      await request(`${base}/mirror`, {
        method: 'POST',
        headers: {...h, 'content-type': 'multipart/form-data; boundary=XyZ'},
        body: `--XyZ\r\nContent-Disposition: form-data; name="client_secret"\r\n\r\n${secrets.multipart}\r\n--XyZ--\r\n`,
      })
      await request(`${base}/mirror`, {
        method: 'POST',
        headers: {...h, 'content-type': 'application/json'},
        body: `{"password": "${secrets.malformed}", "oops"`,
      })
      await request(`${base}/mirror/${jwt}`, {headers: h})
    }
    const scan = (where: string, text: string) => {
      for (const [name, value] of Object.entries(secrets)) expect(text, `${name} found in ${where}`).to.not.contain(value)
      expect(text, `${where} holds the records`).to.contain('/mirror')
    }

    // 1. the journal: the database is unreachable, so every record stays there
    const held = await startRun(['--upstream', app.url, '--no-files'], {AUDIT_LOGS_DATABASE_URL: 'postgres://nobody:pw@127.0.0.1:1/none'})
    try {
      await sends(held.url)
      await until(() => journalIds(held.journalDir).size >= 5, 10_000, 'records in the journal')
      scan(
        'the journal',
        readdirSync(held.journalDir)
          .filter((n) => /\.(open|jsonl)$/.test(n))
          .map((n) => readFileSync(path.join(held.journalDir, n), 'utf8'))
          .join('\n'),
      )
    } finally {
      await held.stop()
    }

    // 2. the sinks: rotating files (gzipped backups too) and PostgreSQL
    const db = await freshDatabase({migrated: true})
    const run = await startRun(['--upstream', app.url], {AUDIT_LOGS_DATABASE_URL: db.url, AUDIT_LOGS_LOG_MAX_BYTES: '4096'})
    try {
      await sends(run.url)
      await until(async () => (await count(db.client, 'request_logs')) >= 5, 15_000, 'records in PostgreSQL')
      await run.stop()
      scan('the JSONL files', jsonlLines(run.logDir).join('\n'))
      const rows = await db.client.query(
        `SELECT row_to_json(r)::text AS t FROM request_logs r UNION ALL SELECT row_to_json(a)::text FROM access_logs a`,
      )
      scan('PostgreSQL', rows.rows.map((r) => r.t).join('\n'))
    } finally {
      await db.drop()
    }
  })

  describe('refuses to start, clearly', () => {
    it('a bad configuration value (exit 2)', async () => {
      const r = await startRun(['--upstream', app.url], {AUDIT_LOGS_WORKERS: 'zero'}, {expectFailure: true})
      const {exitCode} = await r.child
      expect(exitCode).to.equal(2)
      expect(r.stderr()).to.contain('workers').and.contain('"zero"')
    })

    it('a busy port (exit 2)', async () => {
      const busy = net.createServer()
      await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()))
      const port = (busy.address() as net.AddressInfo).port
      try {
        const r = await startRun(['--upstream', app.url, '--no-database'], {}, {expectFailure: true, bind: `127.0.0.1:${port}`})
        const {exitCode} = await r.child
        expect(exitCode).to.equal(2)
        expect(r.stderr()).to.contain(`127.0.0.1:${port}`).and.contain('already in use')
      } finally {
        busy.close()
      }
    })

    it("a directory it cannot write: the log directory, the journal's (exit 2, naming it and its setting)", async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-run-'))
      writeFileSync(path.join(dir, 'logs'), 'a file where the log directory should be')
      const logs = await startRun(['--upstream', app.url, '--no-database'], {}, {expectFailure: true, dir})
      expect((await logs.child).exitCode).to.equal(2)
      expect(logs.stderr())
        .to.contain(`Cannot use ${path.join(dir, 'logs')} as the log directory`)
        .and.contain('not a directory')
        .and.contain('--log-dir')
      const journal = await startRun(
        ['--upstream', app.url, '--no-database'],
        {AUDIT_LOGS_DATA_DIR: path.join(dir, 'logs', 'data')},
        {expectFailure: true},
      )
      expect((await journal.child).exitCode).to.equal(2)
      expect(journal.stderr()).to.contain('as the journal directory').and.contain('AUDIT_LOGS_DATA_DIR')
    })

    it('a start that fails removes the directories it made while they are still empty: no empty .audit-logs/ left behind', async () => {
      // the log directory cannot be made (a file in its way), after the journal's directory in .audit-logs/ was
      const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-run-'))
      writeFileSync(path.join(dir, 'logs'), 'a file where the log directory should be')
      const logs = await startRun(['--upstream', app.url, '--no-database'], {AUDIT_LOGS_DATA_DIR: undefined}, {expectFailure: true, dir})
      expect((await logs.child).exitCode, logs.stderr()).to.equal(2)
      expect(readdirSync(dir)).to.deep.equal(['logs'])
    })

    it("a first start in a directory the embedded PostgreSQL's OS user cannot enter (exit 5) leaves no empty .audit-logs/ or logs/ behind", async function () {
      skipUnless(this, process.getuid?.() === 0, 'root: only root runs the server as another OS user')
      // mkdtemp makes it 0700; the journal's, the log and the data directories are made before the server is started
      const closed = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-run-'))
      const first = await startRun(['--upstream', app.url], {AUDIT_LOGS_DATA_DIR: undefined}, {expectFailure: true, dir: closed})
      expect((await first.child).exitCode, first.stderr()).to.equal(5)
      expect(first.stderr()).to.contain('cannot enter')
      expect(readdirSync(closed)).to.deep.equal([])
    })

    it("addresses that overlap: the admin listener on the proxy's port, the proxy as its own upstream (exit 2)", async () => {
      const port = await freePort()
      const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-run-'))
      const env = {AUDIT_LOGS_DATA_DIR: path.join(dir, 'data'), AUDIT_LOGS_LOG_DIR: path.join(dir, 'logs')}
      const admin = await runCli(
        ['run', '--upstream', app.url, '--no-database', '--bind', `0.0.0.0:${port}`, '--admin-bind', `127.0.0.1:${port}`],
        {env},
      )
      expect(admin.exitCode).to.equal(2)
      expect(admin.stderr).to.contain('--bind and --admin-bind overlap')
      const loop = await runCli(
        ['run', '--upstream', `http://localhost:${port}`, '--no-database', '--bind', `127.0.0.1:${port}`, '--admin-bind', '127.0.0.1:0'],
        {env},
      )
      expect(loop.exitCode).to.equal(2)
      expect(loop.stderr).to.contain(`--upstream http://localhost:${port} is this proxy's own address`)
    })

    it('an app that exits at once (exit 1)', async () => {
      const r = await startRun(['--no-database', '--', process.execPath, '-e', 'process.exit(3)'], {}, {expectFailure: true})
      const {exitCode} = await r.child
      expect(exitCode).to.equal(1)
      expect(r.stderr()).to.contain('exited with code 3 before it accepted connections')
    })

    it('nothing to proxy (exit 2)', async () => {
      const r = await startRun(['--no-database'], {}, {expectFailure: true})
      expect((await r.child).exitCode).to.equal(2)
      expect(r.stderr()).to.contain('--upstream')
    })
  })

  it("an upstream with a path gets it before every request's; an IPv6 literal upstream is reached; the record keeps the client's path", async function () {
    const echo = http.createServer((req, res) => res.end(req.url))
    const listened = await new Promise<boolean>((resolve) => {
      echo.once('error', () => resolve(false))
      echo.listen(0, '::1', () => resolve(true))
    })
    skipUnless(this, listened, 'an IPv6 loopback (::1)', {expectedInCi: false})
    const {port} = echo.address() as net.AddressInfo
    const run = await startRun(['--upstream', `http://[::1]:${port}/base/`, '--no-database'])
    try {
      expect((await request(`${run.url}/orders?id=7`)).body.toString()).to.equal('/base/orders?id=7')
      expect((await request(`${run.url}/`)).body.toString()).to.equal('/base/')
      const rec = await recordIn(run.logDir, '/orders')
      expect(rec).to.deep.include({status_code: 200, query: {id: '7'}})
    } finally {
      await run.stop()
      echo.close()
    }
  })

  it('spawns the app with PORT, and exits with its exit code', async () => {
    const run = await startRun(['--no-database', '--', process.execPath, path.join(ROOT, 'test/helpers/tiny-app.mjs')])
    const r = await request(`${run.url}/hello`)
    expect(JSON.parse(r.body.toString()).path).to.equal('/hello')
    await request(`${run.url}/exit?code=7`)
    const result = await run.child
    expect(result.exitCode).to.equal(7)
  })

  it('shuts down gracefully, even signalled twice (as `timeout` and systemd do): in-flight requests finish, records are flushed, exit 0', async () => {
    const run = await startRun(['--upstream', app.url, '--no-database'])
    const slow = request(`${run.url}/slow?ms=1500`)
    await new Promise((r) => setTimeout(r, 300))
    run.child.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 200))
    run.child.kill('SIGTERM') // the second one used to kill the primary mid-shutdown
    const reply = await slow
    expect(reply.status).to.equal(200)
    expect(reply.body.toString()).to.equal('slow done')
    expect((await run.child).exitCode).to.equal(0)
    expect(run.stderr()).to.contain('already shutting down').and.contain('stopped:')
    expect(readFileSync(path.join(run.logDir, 'requests.jsonl'), 'utf8')).to.contain('"path":"/slow"')
    expect(existsSync(path.join(run.journalDir, 'owner.pid'))).to.equal(false) // the journal's claim is released
  })

  it('a SIGTERM while it starts stops it gracefully once started: the app it spawned is stopped, exit 0', async () => {
    const slowApp = `setTimeout(() => require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1'), 1500)`
    const run = await startRun(['--no-database', '--', process.execPath, '-e', slowApp], {}, {expectFailure: true})
    const isApp = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('setTimeout')
      } catch {
        return false
      }
    }
    const appPid = await until(() => childPids(run.child.pid!).find(isApp), 10_000, 'the app spawned')
    run.child.kill('SIGTERM') // the primary alone, as systemd's KillMode=mixed does; it used to die at once
    expect((await run.child).exitCode).to.equal(0)
    expect(run.stderr()).to.contain('SIGTERM: shutting down').and.contain('stopped:')
    await until(
      () => {
        try {
          process.kill(appPid, 0)
          return undefined
        } catch {
          return true
        }
      },
      10_000,
      'the app to stop',
    )
  })

  it('a worker that hangs cannot hold the shutdown past its limit (shutdownTimeoutMs + 5 s): it is killed, the rest stops in order, exit 0', async () => {
    const run = await startRun(['--upstream', app.url, '--no-database'], {AUDIT_LOGS_SHUTDOWN_TIMEOUT_MS: '1000'})
    try {
      const [worker] = childPids(run.child.pid!)
      process.kill(worker, 'SIGSTOP') // it acts on nothing now, not on the primary's shutdown either
      run.child.kill('SIGTERM')
      // the limit is 6 s; the primary used to wait for such a worker for good
      const ended = await Promise.race([run.child, new Promise<undefined>((r) => setTimeout(r, 30_000, undefined))])
      expect(ended, `still running 30 s after SIGTERM:\n${run.stderr()}`).to.not.equal(undefined)
      expect(ended!.exitCode).to.equal(0)
      expect(run.stderr()).to.contain(`worker ${worker} did not stop within the shutdown limit; killed`).and.contain('stopped:')
      expect(existsSync(path.join(run.journalDir, 'owner.pid'))).to.equal(false) // the claims are released after it
      expect(childPids(run.child.pid!)).to.deep.equal([])
    } finally {
      try {
        process.kill(-run.child.pid!, 'SIGKILL') // the whole group, if the test failed
      } catch {
        // gone already
      }
    }
  })

  it("a second run on the same journal or log directory refuses to start (it would ship the first one's records to its own sinks, or cut its files); a dead owner's claim is taken over", async () => {
    const first = await startRun(['--upstream', app.url, '--no-database'])
    try {
      const second = await startRun(
        ['--upstream', app.url, '--no-database'],
        {AUDIT_LOGS_DATA_DIR: path.join(first.dir, 'data')},
        {expectFailure: true},
      )
      expect((await second.child).exitCode).to.equal(2)
      expect(second.stderr()).to.contain(
        `The journal directory ${first.journalDir} is in use by another audit-logs run (pid ${first.child.pid})`,
      )
      // its own journal but the first one's log directory: the two would rotate and cut each other's files
      const sameLogs = await startRun(
        ['--upstream', app.url, '--no-database'],
        {AUDIT_LOGS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'audit-logs-data-'))},
        {expectFailure: true, dir: first.dir},
      )
      expect((await sameLogs.child).exitCode).to.equal(2)
      expect(sameLogs.stderr()).to.contain(`The log directory ${first.logDir} is in use by another audit-logs run (pid ${first.child.pid})`)
    } finally {
      await first.stop()
    }
    // a claim left by a process that is gone (a kill -9, a reboot) does not hold the journal
    writeFileSync(path.join(first.journalDir, 'owner.pid'), '999999 1\n')
    const again = await startRun(['--upstream', app.url, '--no-database'], {AUDIT_LOGS_DATA_DIR: path.join(first.dir, 'data')})
    await again.stop()
  })

  it('a record builder far behind the proxy costs bounded memory: with whenFull block (the default) new requests wait for it, every request is answered and recorded, nothing dropped', async () => {
    const run = await startRun(['--upstream', app.url, '--no-database'], {
      AUDIT_LOGS_FAILPOINT: 'builder-slow',
      AUDIT_LOGS_HANDOFF_MAX_BYTES: '65536',
    })
    try {
      const sent = await postRounds(run.url)
      const waited = Number(
        /audit_logs_requests_waited_total (\d+)/.exec((await request(`${run.adminUrl}/metrics`)).body.toString())?.[1] ?? 0,
      )
      expect(waited, 'requests held at the gate').to.be.greaterThan(0)
      await run.stop()
      const summary = /stopped: (\d+) requests, (\d+) records captured, (\d+) dropped/.exec(run.stderr())
      expect(summary, run.stderr()).to.not.equal(null)
      expect(summary!.slice(1).map(Number)).to.deep.equal([sent, 2 * sent, 0])
      expect(jsonlLines(run.logDir).length).to.equal(2 * sent)
    } finally {
      await run.stop()
    }
  })

  it('a record builder far behind the proxy costs bounded memory: with whenFull drop, past the hand-off bound records are dropped and counted; every request is answered', async () => {
    const run = await startRun(['--upstream', app.url, '--no-database'], {
      AUDIT_LOGS_FAILPOINT: 'builder-slow',
      AUDIT_LOGS_HANDOFF_MAX_BYTES: '65536',
      AUDIT_LOGS_WHEN_FULL: 'drop',
    })
    try {
      const sent = await postRounds(run.url)
      const dropped = async () =>
        Number(/audit_logs_records_dropped_total (\d+)/.exec((await request(`${run.adminUrl}/metrics`)).body.toString())?.[1] ?? 0)
      await until(async () => (await dropped()) > 0, 10_000, 'dropped records to be counted')
      const stopped = await run.stop()
      // every request is either in the files (its request and access records) or counted as dropped (both)
      const summary = /stopped: (\d+) requests, (\d+) records captured, (\d+) dropped/.exec(run.stderr())
      expect(summary, `${JSON.stringify(stopped)} ${run.stderr()}`).to.not.equal(null)
      const [requests, captured, droppedTotal] = summary!.slice(1).map(Number)
      expect(requests).to.equal(sent)
      expect(droppedTotal).to.be.greaterThan(0)
      expect(captured + droppedTotal).to.equal(2 * sent)
      expect(jsonlLines(run.logDir).length).to.equal(captured)
      expect(run.stderr()).to.contain('ALERT').and.contain('record builder is far behind')
    } finally {
      await run.stop()
    }
  })

  it('SIGHUP reopens the JSONL files (external logrotate)', async () => {
    const run = await startRun(['--upstream', app.url, '--no-database'])
    try {
      const file = path.join(run.logDir, 'requests.jsonl')
      await request(`${run.url}/json?n=1`)
      await until(() => existsSync(file), 10_000, 'requests.jsonl')
      renameSync(file, file + '.rotated')
      run.child.kill('SIGHUP')
      await until(() => run.stderr().includes('SIGHUP: reopening'), 5000, 'the reopen')
      await request(`${run.url}/json?n=2`)
      await until(() => existsSync(file) && readFileSync(file, 'utf8').includes('"n":"2"'), 10_000, 'a new requests.jsonl')
    } finally {
      await run.stop()
    }
  })

  it('a record builder thread that dies takes its worker down, and the replacement captures again', async () => {
    const run = await startRun(['--upstream', app.url, '--no-database'], {AUDIT_LOGS_FAILPOINT: 'builder-crash'})
    try {
      const first = childPids(run.child.pid!)
      await request(`${run.url}/json?n=before`)
      await until(
        async () => {
          const now = childPids(run.child.pid!)
          return now.length === 1 && !first.includes(now[0])
        },
        15_000,
        'a replacement worker',
      )
      // the primary's log line reaches our pipe a moment after the fork that ps shows
      await until(
        () => run.stderr().includes('its record builder stopped') && run.stderr().includes('starting a replacement'),
        5_000,
        'the builder stopping and the replacement in the log',
      )
      await until(
        async () => (await request(`${run.url}/json?n=after`).catch(() => ({status: 0}))).status === 200,
        15_000,
        'the replacement serving',
      )
      await until(
        () =>
          existsSync(path.join(run.logDir, 'requests.jsonl')) &&
          readFileSync(path.join(run.logDir, 'requests.jsonl'), 'utf8').includes('"n":"after"'),
        15_000,
        'the request recorded by the replacement',
      )
    } finally {
      await run.stop()
    }
  })

  it('replaces a worker that dies', async () => {
    const run = await startRun(['--upstream', app.url, '--no-database', '--workers', '2'])
    try {
      const workers = childPids(run.child.pid!)
      expect(workers).to.have.length(2)
      process.kill(workers[0], 'SIGKILL')
      await until(
        async () => {
          const now = childPids(run.child.pid!)
          return now.length === 2 && !now.includes(workers[0])
        },
        15_000,
        'a replacement worker',
      )
      expect((await request(`${run.url}/json`)).status).to.equal(200)
      expect(run.stderr()).to.contain('starting a replacement')
    } finally {
      await run.stop()
    }
  })
})
