import {mkdtempSync, readdirSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {gzipSync} from 'node:zlib'
import {expect} from 'chai'
import {ExitCode} from '../../src/errors.js'
import {runCli} from '../helpers/cli.js'
import {type TestDatabase, count, freshDatabase} from '../helpers/db.js'
import {jsonlLines} from '../helpers/jsonl.js'
import {type TestMongo, freshMongo, mongoServerUri} from '../helpers/mongo.js'
import {type RunningServer, request, startRun, until} from '../helpers/run-server.js'
import {skipUnless} from '../helpers/skip.js'
import {type Upstream, startUpstream} from '../helpers/upstream.js'

const ID = (n: number) => `0190c8a0-0000-7000-8000-${String(n).padStart(12, '0')}`
const good = (n: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({id: ID(n), created_at: '2026-12-01T10:00:00.000Z', method: 'GET', path: `/good/${n}`, status_code: 200, ...extra})

/** The ids of every line of the files `run` wrote for one type, rotated ones included. */
const idsOf = (logDir: string, file: string) => new Set(jsonlLines(logDir, file).map((l) => JSON.parse(l).id as string))

describe('audit-logs import', function () {
  this.timeout(300_000)
  let app: Upstream
  let runDb: TestDatabase
  let run: RunningServer
  let logDir: string
  let requestIds: Set<string>
  let accessIds: Set<string>
  const dbs: TestDatabase[] = []
  const fresh = async () => {
    const db = await freshDatabase({migrated: true})
    dbs.push(db)
    return db
  }
  const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'audit-logs-import-'))

  before(async () => {
    app = await startUpstream()
    runDb = await freshDatabase({migrated: true})
    // small files, so run rotates (and gzips) several times
    run = await startRun(['--upstream', app.url], {AUDIT_LOGS_DATABASE_URL: runDb.url, AUDIT_LOGS_LOG_MAX_BYTES: '4096'})
    for (let i = 0; i < 40; i++) {
      const r = await request(`${run.url}/mirror?i=${i}`, {
        method: 'POST',
        headers: {'content-type': 'application/json', authorization: 'Bearer abcdefghijklmnop'},
        body: JSON.stringify({user: `u${i}`, password: 'hunter2-secret'}),
      })
      expect(r.status).to.be.below(500)
    }
    logDir = run.logDir
    const written = (file: string) => {
      try {
        return jsonlLines(logDir, file).length >= 40
      } catch {
        return false // a rotated file half gzipped
      }
    }
    await until(() => written('requests.jsonl') && written('access.jsonl'), 60_000, '40 records in the files')
    await run.stop()
    requestIds = idsOf(logDir, 'requests.jsonl')
    accessIds = idsOf(logDir, 'access.jsonl')
  })
  after(async () => {
    await app?.close()
    await runDb?.drop()
    for (const db of dbs) await db.drop()
  })

  it('imports every JSONL file run wrote, rotated and gzipped ones included; a second import adds nothing', async () => {
    const names = readdirSync(logDir)
    expect(names.filter((n) => /^requests\.jsonl\.\d+\.gz$/.test(n)).length, names.join(' ')).to.be.greaterThan(0)
    // a file gzipped by hand (as logrotate leaves them) is read too
    const dir = tmp()
    writeFileSync(path.join(dir, 'access.jsonl.gz'), gzipSync(jsonlLines(logDir, 'access.jsonl').join('\n') + '\n'))
    const files = [
      ...names.filter((n) => n.startsWith('requests.jsonl')).map((n) => path.join(logDir, n)),
      path.join(dir, 'access.jsonl.gz'),
    ]

    const db = await fresh()
    const first = await runCli(['import', ...files, '--json'], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
    expect(first.exitCode, first.stderr).to.equal(0)
    const total = requestIds.size + accessIds.size
    expect(first.json().stores.postgres).to.deep.equal({imported: total, alreadyPresent: 0})
    expect(first.json().refused).to.equal(0)
    const stored = (await db.client.query('SELECT id FROM request_logs')).rows.map((r) => r.id)
    expect(new Set(stored)).to.deep.equal(requestIds)
    expect(await count(db.client, 'access_logs')).to.equal(accessIds.size)
    // stored as run stored them: the same record in both databases
    const some = [...requestIds][0]
    const q = 'SELECT row_to_json(r) AS r FROM request_logs r WHERE id = $1'
    expect((await db.client.query(q, [some])).rows[0].r).to.deep.equal((await runDb.client.query(q, [some])).rows[0].r)

    const again = await runCli(['import', ...files], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
    expect(again.exitCode, again.stderr).to.equal(0)
    expect(again.stdout).to.include(`postgres: 0 imported, ${total} already present`)
    expect(await count(db.client, 'request_logs')).to.equal(requestIds.size)
  })

  it('a directory stands for all its files; --dry-run counts and writes nothing', async () => {
    const db = await fresh()
    const dry = await runCli(['import', logDir, '--dry-run', '--json'], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
    expect(dry.exitCode, dry.stderr).to.equal(0)
    expect(dry.json().dryRun).to.equal(true)
    expect(dry.json().records).to.be.at.least(requestIds.size + accessIds.size)
    expect(await count(db.client, 'request_logs')).to.equal(0)
    const real = await runCli(['import', logDir, '--batch-size', '7', '--json'], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
    expect(real.exitCode, real.stderr).to.equal(0)
    expect(real.json().stores.postgres.imported).to.equal(dry.json().records)
    expect(await count(db.client, 'request_logs')).to.equal(requestIds.size)
  })

  it('MongoDB: imported once, a second import counts them already present', async function () {
    skipUnless(this, !!mongoServerUri(), 'no MongoDB server for the tests (AUDIT_LOGS_TEST_MONGO_URI)')
    const m: TestMongo = await freshMongo()
    try {
      const env = {AUDIT_LOGS_MONGO_URI: m.uri, AUDIT_LOGS_MONGO_DB_NAME: m.dbName}
      const first = await runCli(['import', logDir, '--stores', 'mongo', '--json'], {env})
      expect(first.exitCode, first.stderr).to.equal(0)
      const total = first.json().records
      expect(first.json().stores).to.deep.equal({mongo: {imported: total, alreadyPresent: 0}})
      const ids = (
        await m.client
          .db(m.dbName)
          .collection('request_logs')
          .find({}, {projection: {_id: 1}})
          .toArray()
      ).map((d) => d._id)
      expect(new Set(ids)).to.deep.equal(requestIds)
      const again = await runCli(['import', logDir, '--stores', 'mongo', '--json'], {env})
      expect(again.exitCode, again.stderr).to.equal(0)
      expect(again.json().stores).to.deep.equal({mongo: {imported: 0, alreadyPresent: total}})
      expect(await m.client.db(m.dbName).collection('request_logs').countDocuments()).to.equal(requestIds.size)
    } finally {
      await m.drop()
    }
  })

  it('a HAR from `export --format har` goes back in under its records’ ids', async () => {
    const har = path.join(tmp(), 'all.har')
    const exported = await runCli(['export', '--format', 'har', '--out', har], {env: {AUDIT_LOGS_DATABASE_URL: runDb.url}})
    expect(exported.exitCode, exported.stderr).to.equal(0)
    // into the database it came from: every entry is a record already there
    const back = await runCli(['import', har, '--json'], {env: {AUDIT_LOGS_DATABASE_URL: runDb.url}})
    expect(back.exitCode, back.stderr).to.equal(0)
    expect(back.json().stores.postgres).to.deep.equal({imported: 0, alreadyPresent: requestIds.size})
    // into a fresh one: the same ids, the bodies as they were (masked when captured)
    const db = await fresh()
    const first = await runCli(['import', har, '--json'], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
    expect(first.exitCode, first.stderr).to.equal(0)
    expect(first.json().stores.postgres).to.deep.equal({imported: requestIds.size, alreadyPresent: 0})
    expect(new Set((await db.client.query('SELECT id FROM request_logs')).rows.map((r) => r.id))).to.deep.equal(requestIds)
    const bodies = (await db.client.query('SELECT request_body, request_headers FROM request_logs')).rows
    expect(JSON.stringify(bodies)).to.not.include('hunter2').and.to.not.include('abcdefghijklmnop')
  })

  it('a hand-written HAR is masked as capture masks: Authorization, cookies, query, password in the body', async () => {
    const dir = tmp()
    const har = path.join(dir, 'browser.har')
    const entry = {
      startedDateTime: '2026-11-30T08:00:00.000+01:00',
      time: 12.5,
      request: {
        method: 'POST',
        url: 'https://shop.example/login?next=/cart&api_key=k-123456789',
        httpVersion: 'HTTP/2',
        headers: [
          {name: ':authority', value: 'shop.example'},
          {name: 'Authorization', value: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl'},
          {name: 'Content-Type', value: 'application/json'},
          {name: 'X-Request-Id', value: 'req-7'},
        ],
        cookies: [{name: 'sessionid', value: 's3cr3t-session'}],
        postData: {mimeType: 'application/json', text: JSON.stringify({email: 'a@example.com', password: 'hunter2-secret'})},
      },
      response: {
        status: 200,
        headers: [{name: 'Content-Type', value: 'application/json'}],
        content: {size: 40, mimeType: 'application/json', text: JSON.stringify({access_token: 'tok-987654321', ok: true})},
      },
    }
    const broken = {request: {method: 'GET', url: 'https://shop.example/'}, response: {}} // no startedDateTime
    writeFileSync(har, JSON.stringify({log: {version: '1.2', creator: {name: 'test'}, entries: [entry, broken]}}))
    const db = await fresh()
    const r = await runCli(['import', har, '--json'], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
    expect(r.exitCode, r.stdout + r.stderr).to.equal(7)
    expect(r.json().stores.postgres).to.deep.equal({imported: 1, alreadyPresent: 0})
    expect(r.json().refusals).to.deep.equal([
      {file: path.relative(process.cwd(), har), entry: 2, error: 'startedDateTime: an ISO 8601 time'},
    ])
    const row = (await db.client.query('SELECT * FROM request_logs')).rows[0]
    expect(row.method).to.equal('POST')
    expect(row.host).to.equal('shop.example')
    expect(row.path).to.equal('/login')
    expect(row.created_at.toISOString()).to.equal('2026-11-30T07:00:00.000Z')
    expect(row.request_headers.authorization).to.equal('Bearer ****')
    expect(row.request_headers.cookie).to.equal('sessionid=****')
    expect(row.request_headers).to.not.have.property(':authority')
    expect(row.query).to.deep.equal({next: '/cart', api_key: '****'})
    expect(JSON.parse(row.request_body)).to.deep.equal({email: 'a@example.com', password: '****'})
    expect(JSON.parse(row.response_body)).to.deep.equal({access_token: '****', ok: true})
    expect(row.request_id).to.equal('req-7')
    const all = JSON.stringify(row)
    for (const secret of ['hunter2', 's3cr3t', 'k-123456789', 'tok-987654321', 'eyJzdWIi']) expect(all).to.not.include(secret)
    // the id is derived from the entry: the same on every import
    const again = await runCli(['import', har, '--json'], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
    expect(again.json().stores.postgres).to.deep.equal({imported: 0, alreadyPresent: 1})
    expect(await count(db.client, 'request_logs')).to.equal(1)
  })

  it('bad lines are refused with their line numbers, the good ones imported; stored records stay as they were', async () => {
    const db = await fresh()
    const dir = tmp()
    const file = path.join(dir, 'requests.jsonl')
    const lines = [
      good(1),
      'this is not json {"password": "hunter2"}',
      JSON.stringify({id: ID(3), created_at: '2026-12-01T10:00:00.000Z', path: '/no-method'}),
      good(4, {status_code: 'two hundred', ip: 'not-an-ip'}),
      good(5, {response_body: 'x'.repeat(10 * 1024 * 1024)}),
      '',
      good(7, {unknown_field: 1}),
      '[1,2,3]',
      good(9),
    ]
    writeFileSync(file, lines.join('\n') + '\n')
    const r = await runCli(['import', file], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
    expect(r.exitCode, r.stderr).to.equal(ExitCode.refused)
    expect(ExitCode.refused).to.equal(7) // the README's table of exit codes
    // the help says the code the command exits with
    const help = await runCli(['import', '--help'])
    expect(help.stdout.replace(/\s+/g, ' ')).to.contain(`the command exits with ${ExitCode.refused}.`)
    const shown = path.relative(process.cwd(), file)
    expect(r.stdout).to.include('postgres: 2 imported, 0 already present')
    expect(r.stdout).to.include('6 line(s) refused')
    expect(r.stdout).to.include(`${shown}:2: not JSON`)
    expect(r.stdout).to.include(`${shown}:3: method: missing`)
    expect(r.stdout).to.match(new RegExp(`${shown}:4: status_code: a whole number .*; ip: an IPv4 or IPv6 address`))
    expect(r.stdout).to.match(new RegExp(`${shown}:5: a line of 10\\.0 MB, over the 8\\.0 MB a record can be`))
    expect(r.stdout).to.include(`${shown}:7: unknown field(s) unknown_field`)
    expect(r.stdout).to.include(`${shown}:8: a JSON object (a request record)`)
    expect(r.stdout).to.not.include('hunter2') // a refused line's content is never shown
    expect((await db.client.query('SELECT id FROM request_logs ORDER BY id')).rows.map((x) => x.id)).to.deep.equal([ID(1), ID(9)])

    // a line whose id is there already changes nothing: the stored record stays as it was
    const other = path.join(dir, 'renamed.log')
    writeFileSync(other, good(1, {method: 'DELETE', path: '/tampered'}) + '\n' + good(10) + '\n')
    const unknown = await runCli(['import', other], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
    expect(unknown.exitCode).to.equal(2)
    expect(unknown.stderr).to.include('The log type of').and.include('give --log-type')
    const forced = await runCli(['import', other, '--log-type', 'request', '--json'], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
    expect(forced.exitCode, forced.stderr).to.equal(0)
    expect(forced.json().stores.postgres).to.deep.equal({imported: 1, alreadyPresent: 1})
    const one = (await db.client.query('SELECT method, path FROM request_logs WHERE id = $1', [ID(1)])).rows
    expect(one).to.deep.equal([{method: 'GET', path: '/good/1'}])
  })

  it('records older than every partition get partitions of their own, not the default partition', async () => {
    const db = await fresh()
    const file = path.join(tmp(), 'requests.jsonl')
    // two months of last year: freshDatabase premade partitions around now only
    writeFileSync(
      file,
      [good(21, {created_at: '2025-03-04T05:06:07.000Z'}), good(22, {created_at: '2025-11-30T23:59:59.999Z'}), good(23)].join('\n') + '\n',
    )
    const r = await runCli(['import', file, '--json'], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
    expect(r.exitCode, r.stderr).to.equal(0)
    // the test database has no partitions but the default ones: each record's month gets its own
    expect(r.json().partitions).to.deep.equal({created: 3, movedRows: 3})
    const {rows} = await db.client.query(`SELECT id, tableoid::regclass::text AS part FROM request_logs ORDER BY id`)
    expect(rows).to.deep.equal([
      {id: ID(21), part: 'request_logs_p20250301'},
      {id: ID(22), part: 'request_logs_p20251101'},
      {id: ID(23), part: 'request_logs_p20261201'},
    ])
    // said on the terminal; a second import adds nothing and moves nothing
    const again = await runCli(['import', file], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
    expect(again.exitCode, again.stderr).to.equal(0)
    expect(again.stdout).to.include('postgres: 0 imported, 3 already present').and.not.include('moved')
    const older = path.join(path.dirname(file), 'old-requests.jsonl')
    writeFileSync(older, good(24, {created_at: '2024-01-15T00:00:00.000Z'}) + '\n')
    const one = await runCli(['import', older, '--log-type', 'request'], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
    expect(one.stdout).to.include('postgres: 1 imported row(s) moved out of the default partitions into 1 new partition(s)')
  })

  it('a file that does not exist: a clear error, and nothing is written', async () => {
    const db = await fresh()
    const dir = tmp()
    const file = path.join(dir, 'requests.jsonl')
    writeFileSync(file, good(1) + '\n')
    const r = await runCli(['import', file, path.join(dir, 'missing.jsonl')], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
    expect(r.exitCode).to.equal(2)
    expect(r.stderr).to.include('missing.jsonl does not exist')
    expect(await count(db.client, 'request_logs')).to.equal(0)
  })
})
