import {mkdtempSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {execa} from 'execa'
import {BIN, runCli} from '../helpers/cli.js'
import {type TestDatabase, count, freshDatabase} from '../helpers/db.js'
import {jsonlLines} from '../helpers/jsonl.js'
import {type TestMongo, freshMongo, mongoServerUri} from '../helpers/mongo.js'
import {type Reply, type RunningServer, request, startRun, until} from '../helpers/run-server.js'
import {skipUnless} from '../helpers/skip.js'
import {type Upstream, startUpstream} from '../helpers/upstream.js'

const TOKEN = 'test-token-0123456789abcdef'

/** POSTs a body to the run's events endpoint. */
function post(run: RunningServer, body: string | Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  return request(`${run.adminUrl}/_audit/events`, {
    method: 'POST',
    headers: {'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers},
    body,
  })
}
const json = (r: Reply) => JSON.parse(r.body.toString())

describe('application events', function () {
  this.timeout(180_000)
  let app: Upstream
  let db: TestDatabase
  let run: RunningServer
  const env = () => ({AUDIT_LOGS_DATABASE_URL: db.url, AUDIT_LOGS_EVENTS_TOKEN: TOKEN})
  const events = (where = 'true') => count(db.client, 'event_logs', where)

  before(async () => {
    app = await startUpstream()
    db = await freshDatabase({migrated: true})
    run = await startRun(['--upstream', app.url], {...env(), AUDIT_LOGS_EVENTS_MAX_BATCH: '50', AUDIT_LOGS_EVENTS_RATE_PER_CLIENT: '200'})
  })
  after(async () => {
    await run?.stop()
    await app?.close()
    await db?.drop()
  })

  it('every proxied request gets an X-Request-Id that the app sees and the record keeps; a well-formed one from the client is kept', async () => {
    const given = await request(`${run.url}/request-id`, {headers: {'x-request-id': 'client-id-1'}})
    expect(given.body.toString()).to.equal('client-id-1')
    const made = (await request(`${run.url}/request-id`)).body.toString()
    expect(made).to.match(/^[0-9a-f-]{36}$/)
    const hostile = (await request(`${run.url}/request-id`, {headers: {'x-request-id': 'a b<script>'}})).body.toString()
    expect(hostile).to.match(/^[0-9a-f-]{36}$/)
    await until(async () => (await count(db.client, 'request_logs', "path = '/request-id'")) >= 3, 20_000, 'three records')
    const {rows} = await db.client.query("SELECT request_id FROM request_logs WHERE path = '/request-id' ORDER BY created_at, id")
    expect(rows.map((r) => r.request_id)).to.deep.equal(['client-id-1', made, hostile])
  })

  it('takes a JSON batch: good events journaled and stored (masked), bad ones refused with the reason, the rest of the batch kept', async () => {
    const requestId = (await request(`${run.url}/request-id`)).body.toString()
    const r = await post(
      run,
      JSON.stringify([
        {
          action: 'UPDATE',
          actor: {id: 42, name: 'alice'},
          target: {type: 'shop.Order', id: 17},
          changes: {total: {before: 10, after: 12}, password: {before: 'old-secret', after: 'new-secret'}},
          request_id: requestId,
          extra: {api_key: 'k-123', note: 'ok'},
        },
        {action: 'update'}, // not an upper-case word
        {action: 'DELETE', actor: ['x']}, // wrong type
        {action: 'LOGIN', unknown: 1},
        {action: 'VIEW', extra: JSON.parse('{"a":'.repeat(40) + '1' + '}'.repeat(40))}, // deep JSON
        {action: 'LOGIN_FAILED', actor: 'mallory', ip: '203.0.113.9'},
        {action: 'VIEW', id: '7b0f3c1e-5b7d-4a47-9d3c-1f0e2a9c8d11'}, // an id that is not a UUIDv7, without its time
      ]),
    )
    expect(r.status).to.equal(200)
    const body = json(r)
    expect(body.accepted).to.equal(2)
    expect(body.ids).to.have.length(2)
    expect(body.refused.map((x: {index: number}) => x.index)).to.deep.equal([1, 2, 3, 4, 6])
    expect(body.refused[4].error).to.match(/created_at: needed with an id that is not a UUIDv7/)
    expect(body.refused[0].error).to.match(/action: an upper-case word/)
    expect(body.refused[2].error).to.match(/unknown field\(s\) unknown; accepted: id, created_at, action/)
    expect(body.refused[3].error).to.match(/extra: nests deeper than 32 levels/)
    await until(async () => (await events()) >= 2, 20_000, 'two events')
    const {rows} = await db.client.query('SELECT * FROM event_logs WHERE id = $1', [body.ids[0]])
    expect(rows[0]).to.include({action: 'UPDATE', actor_id: '42', actor_name: 'alice', target_type: 'shop.Order', target_id: '17'})
    expect(rows[0].request_id).to.equal(requestId)
    expect(rows[0].changes).to.deep.equal({total: {before: 10, after: 12}, password: {before: '****', after: '****'}})
    expect(rows[0].extra).to.deep.equal({api_key: '****', note: 'ok'})
    expect(JSON.stringify(await db.client.query('SELECT * FROM event_logs'))).not.to.match(/old-secret|new-secret|k-123/)
    expect(await events()).to.equal(2)

    // the files have them too, and `show` lists the event with its request
    await until(() => jsonlLines(run.logDir, 'events.jsonl').length >= 2, 10_000, 'events.jsonl')
    await until(async () => (await count(db.client, 'request_logs', `request_id = '${requestId}'`)) === 1, 20_000, 'the request')
    const shown = await runCli(['show', requestId, '--json'], {env: env()})
    expect(shown.exitCode, shown.stderr).to.equal(0)
    expect(shown.json().path).to.equal('/request-id')
    expect(shown.json().events.map((e: {id: string}) => e.id)).to.deep.equal([body.ids[0]])
  })

  it('takes NDJSON; refuses a missing or wrong token, a wrong content type, oversized and flooding batches, with nothing stored from them', async () => {
    const before = await events()
    const nd = await post(run, '{"action":"EXPORT","extra":{"record_count":120}}\n\nnot json\n{"action":"LOGOUT","actor":"7"}\n', {
      'content-type': 'application/x-ndjson',
    })
    expect(nd.status).to.equal(200)
    expect(json(nd)).to.deep.include({accepted: 2, refused: [{index: 1, line: 3, error: json(nd).refused[0].error}]})
    expect(json(nd).refused[0].error).to.match(/^not JSON/)

    const noToken = await request(`${run.adminUrl}/_audit/events`, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: '{"action":"X"}',
    })
    expect(noToken.status).to.equal(401)
    expect(json(noToken).error).to.match(/Authorization: Bearer/)
    const wrong = await post(run, '{"action":"X"}', {authorization: 'Bearer not-the-token-at-all'})
    expect(wrong.status).to.equal(401)
    expect(wrong.body.toString()).not.to.include(TOKEN)
    expect((await post(run, '{"action":"X"}', {'content-type': 'text/plain'})).status).to.equal(415)
    const huge = await post(run, Buffer.alloc(10 * 1024 * 1024, 'a')).catch((error: Error) => ({status: 0, error}))
    expect([413, 0]).to.include(huge.status) // 413, or the connection cut while the client still sends
    const tooMany = await post(run, JSON.stringify(Array.from({length: 51}, () => ({action: 'X'}))))
    expect(tooMany.status).to.equal(413)
    expect(json(tooMany).error).to.match(/eventsMaxBatch \(50\)/)
    const longLine = await post(run, JSON.stringify({action: 'X', reason: 'r'.repeat(70_000)}) + '\n', {
      'content-type': 'application/x-ndjson',
    })
    expect(longLine.status).to.equal(400)
    expect(json(longLine).refused[0].error).to.match(/over eventsMaxEventBytes \(65536\)/)
    // one over-size event in a batch is refused alone, named with its line (NDJSON) or index (JSON); the rest are kept
    const mixedLines = await post(
      run,
      [
        {action: 'OVERSIZE_KEPT', actor: 'a'},
        {action: 'OVERSIZE_GONE', extra: {pad: 'p'.repeat(70_000)}},
        {action: 'OVERSIZE_KEPT', actor: 'b'},
      ]
        .map((e) => JSON.stringify(e))
        .join('\n'),
      {'content-type': 'application/x-ndjson'},
    )
    expect(mixedLines.status).to.equal(200)
    expect(json(mixedLines)).to.include({accepted: 2})
    expect(json(mixedLines).refused).to.have.length(1)
    expect(json(mixedLines).refused[0]).to.include({index: 1, line: 2})
    expect(json(mixedLines).refused[0].error).to.match(/^the line is \d+ bytes, over eventsMaxEventBytes \(65536\)$/)
    const mixedArray = await post(
      run,
      JSON.stringify([
        {action: 'OVERSIZE_GONE', extra: {pad: 'p'.repeat(70_000)}},
        {action: 'OVERSIZE_KEPT', actor: 'c'},
      ]),
    )
    expect(mixedArray.status).to.equal(200)
    expect(json(mixedArray)).to.include({accepted: 1})
    expect(json(mixedArray).refused.map((x: {index: number}) => x.index)).to.deep.equal([0])
    expect(json(mixedArray).refused[0].error).to.match(/^the event is \d+ bytes as stored, over eventsMaxEventBytes \(65536\)$/)
    // 200 a second per client: a flood gets 429 with Retry-After
    let limited: Reply | undefined
    for (let i = 0; i < 20 && !limited; i++) {
      const r = await post(run, JSON.stringify(Array.from({length: 50}, () => ({action: 'FLOOD'}))))
      if (r.status === 429) limited = r
    }
    expect(limited, 'a 429').to.not.equal(undefined)
    expect(limited!.headers['retry-after']).to.match(/^\d+$/)
    expect(json(limited!).error).to.match(/eventsRatePerClient \(200/)
    // the server is fine: health answers, and only the accepted events are stored
    expect((await request(`${run.adminUrl}/health`)).status).to.equal(200)
    await until(async () => (await events()) >= before + 5, 20_000, 'the NDJSON events and the kept ones of the mixed batches')
    await new Promise((r) => setTimeout(r, 1000))
    expect(await events("action NOT IN ('FLOOD')")).to.equal(before + 5)
    expect(await events("action = 'X'")).to.equal(0)
    expect(await events("action = 'OVERSIZE_GONE'")).to.equal(0)
    const kept = await db.client.query("SELECT actor_id FROM event_logs WHERE action = 'OVERSIZE_KEPT' ORDER BY actor_id")
    expect(kept.rows.map((r) => r.actor_id)).to.deep.equal(['a', 'b', 'c'])
    const metrics = (await request(`${run.adminUrl}/metrics`)).body.toString()
    expect(metrics).to.match(/^audit_logs_events_total\{outcome="accepted"\} [1-9]/m)
    expect(metrics).to.match(/^audit_logs_events_total\{outcome="batch_refused"\} [1-9]/m)
    expect(metrics).to.match(/^audit_logs_events_total\{outcome="refused"\} [1-9]/m)
  })

  it('query, stats, export and cleanup take --log-type event with the event filters, on PostgreSQL and the files', async () => {
    const q = await runCli(['query', '--log-type', 'event', '--actor', '42', '--target', 'shop.Order:17', '--json'], {env: env()})
    expect(q.exitCode, q.stderr).to.equal(0)
    expect(q.json().records.map((r: {action: string}) => r.action)).to.deep.equal(['UPDATE'])
    const stats = await runCli(['stats', '--log-type', 'event', '--action', 'UPDATE,LOGIN_FAILED,EXPORT,LOGOUT', '--json'], {env: env()})
    expect(stats.exitCode, stats.stderr).to.equal(0)
    const s = stats.json()
    expect(s.total).to.equal(4)
    expect(s.failedLogins).to.deep.equal({total: 1, byActor: [{actor: 'mallory', count: 1}], byIp: [{ip: '203.0.113.9', count: 1}]})
    expect(s.exports).to.deep.equal({total: 1, records: 120})
    const files = await runCli(
      [
        'stats',
        '--log-type',
        'event',
        '--action',
        'UPDATE,LOGIN_FAILED,EXPORT,LOGOUT',
        '--source',
        'files',
        '--log-dir',
        run.logDir,
        '--json',
      ],
      {env: env()},
    )
    expect(files.json()).to.deep.equal(s)
    const wrongFilter = await runCli(['query', '--log-type', 'event', '--status', '500'], {env: env()})
    expect(wrongFilter.exitCode).to.equal(2)
    expect(wrongFilter.stderr).to.match(/--status applies to request, access and outbound logs; event logs take --action/)
    const exported = await runCli(['export', '--log-type', 'event', '--action', 'UPDATE', '--format', 'ndjson'], {env: env()})
    expect(JSON.parse(exported.stdout.trim()).changes.password).to.deep.equal({before: '****', after: '****'})
    const dry = await runCli(['cleanup', '--log-type', 'event', '--days', '1', '--dry-run', '--json'], {env: env()})
    expect(dry.exitCode, dry.stderr).to.equal(0)
  })

  it('tail --log-type event follows new events, with the event filters', async () => {
    const child = execa(
      process.execPath,
      [BIN, 'tail', '--log-type', 'event', '--action', 'TAILED', '--format', 'ndjson', '--interval', '200'],
      {
        env: {...env(), OCLIF_SKIP_NEW_VERSION_CHECK: '1'},
        reject: false,
      },
    )
    let out = ''
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    await new Promise((r) => setTimeout(r, 1500))
    const r = await post(run, JSON.stringify([{action: 'TAILED', actor: '1'}, {action: 'OTHER'}, {action: 'TAILED', actor: '2'}]))
    const ids: string[] = json(r).ids
    await until(() => out.includes(ids[0]) && out.includes(ids[2]), 15_000, 'the tailed events').catch(() => {})
    child.kill('SIGINT')
    await child
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as {id: string; action: string})
    // as they reach the store: the two may be written by two connections, in either order
    expect(lines.map((l) => l.id).sort()).to.deep.equal([ids[0], ids[2]].sort())
  })

  it('audit-logs event: sent to the run that is up', async () => {
    const r = await runCli(['event', '--action', 'DEPLOY', '--actor', 'ci', '--reason', 'release 1 with token=abc', '--json'], {
      env: {...env(), AUDIT_LOGS_ADMIN_BIND: run.adminUrl.replace('http://', '')},
    })
    expect(r.exitCode, r.stderr).to.equal(0)
    expect(r.json().via).to.equal('run')
    await until(async () => (await events("action = 'DEPLOY'")) === 1, 20_000, 'the DEPLOY event')
    const {rows} = await db.client.query("SELECT reason FROM event_logs WHERE action = 'DEPLOY'")
    expect(rows[0].reason).to.equal('release 1 with token=****')
  })
})

describe('application events without a run, after a crash, and on MongoDB', function () {
  this.timeout(180_000)
  let app: Upstream
  before(async () => (app = await startUpstream()))
  after(() => app?.close())

  it('audit-logs event with no run up writes through the journal into PostgreSQL and the files; bad flags are usage errors', async () => {
    const db = await freshDatabase({migrated: true})
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-event-'))
    const env = {AUDIT_LOGS_DATABASE_URL: db.url, AUDIT_LOGS_DATA_DIR: path.join(dir, 'data'), AUDIT_LOGS_LOG_DIR: path.join(dir, 'logs')}
    try {
      const r = await runCli(['event', '--action', 'BACKUP', '--target', 'db:main', '--extra', '{"bytes": 12}', '--json'], {env, cwd: dir})
      expect(r.exitCode, r.stderr).to.equal(0)
      expect(r.json()).to.deep.include({via: 'journal', delivered: {files: true, postgres: true}})
      expect(await count(db.client, 'event_logs', "action = 'BACKUP' AND target_type = 'db' AND target_id = 'main'")).to.equal(1)
      expect(jsonlLines(path.join(dir, 'logs'), 'events.jsonl').map((l) => JSON.parse(l).id)).to.deep.equal([r.json().id])
      // sent again with its id: one copy in the database
      const again = await runCli(
        [
          'event',
          '--action',
          'BACKUP',
          '--id',
          r.json().id,
          '--created-at',
          JSON.parse(jsonlLines(path.join(dir, 'logs'), 'events.jsonl')[0]).created_at,
        ],
        {env, cwd: dir},
      )
      expect(again.exitCode, again.stderr).to.equal(0)
      expect(await count(db.client, 'event_logs')).to.equal(1)
      const bad = await runCli(['event', '--action', 'lower'], {env, cwd: dir})
      expect(bad.exitCode).to.equal(2)
      expect(bad.stderr).to.match(/The event is refused: action: an upper-case word/)
      const badJson = await runCli(['event', '--action', 'X', '--changes', '{nope'], {env, cwd: dir})
      expect(badJson.exitCode).to.equal(2)
      expect(badJson.stderr).to.match(/--changes is not JSON/)
    } finally {
      await db.drop()
    }
  })

  it('run killed with SIGKILL right after the 2xx: the events are in the stores after the restart', async () => {
    const db = await freshDatabase({migrated: true})
    const env = {AUDIT_LOGS_DATABASE_URL: db.url, AUDIT_LOGS_EVENTS_TOKEN: TOKEN}
    // the sinks are held back (a sink lag that never ends the deferral) only by killing at once: the 2xx came from the journal
    let run = await startRun(['--upstream', app.url], env)
    const batch = JSON.stringify(Array.from({length: 100}, (_, i) => ({action: 'CRASH_TEST', target: {type: 't', id: i}})))
    const r = await post(run, batch)
    expect(r.status).to.equal(200)
    process.kill(-run.child.pid!, 'SIGKILL')
    await run.child
    try {
      run = await startRun(['--upstream', app.url], env, {dir: run.dir})
      await until(async () => (await count(db.client, 'event_logs', "action = 'CRASH_TEST'")) >= 100, 30_000, '100 events')
      expect(await count(db.client, 'event_logs', "action = 'CRASH_TEST'")).to.equal(100)
    } finally {
      await run.stop()
      await db.drop()
    }
  })

  it('an app that run spawns gets the events address and a token, and its events carry the request id', async () => {
    const db = await freshDatabase({migrated: true})
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-spawn-'))
    const appFile = path.join(dir, 'app.mjs')
    writeFileSync(
      appFile,
      `import http from 'node:http'
      http.createServer(async (req, res) => {
        const r = await fetch(process.env.AUDIT_LOGS_EVENTS_URL, {method: 'POST',
          headers: {'content-type': 'application/json', authorization: 'Bearer ' + process.env.AUDIT_LOGS_EVENTS_TOKEN},
          body: JSON.stringify({action: 'VIEW', target: {type: 'page', id: req.url}, request_id: req.headers['x-request-id']})})
        res.end(String(r.status))
      }).listen(Number(process.env.PORT), '127.0.0.1')`,
    )
    const run = await startRun(['--', process.execPath, appFile], {AUDIT_LOGS_DATABASE_URL: db.url}, {dir})
    try {
      const r = await request(`${run.url}/page-1`, {headers: {'x-request-id': 'req-spawn-1'}})
      expect(r.body.toString()).to.equal('200')
      await until(async () => (await count(db.client, 'event_logs', "request_id = 'req-spawn-1'")) === 1, 20_000, 'the event')
      // without a configured token, nothing else may send events: the token was made for this run
      const other = await request(`${run.adminUrl}/_audit/events`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: '{"action":"X"}',
      })
      expect(other.status).to.equal(401)
    } finally {
      await run.stop()
      await db.drop()
    }
  })

  it('no token configured and no app spawned: events are refused, unless eventsAllowNoToken on a loopback admin listener', async () => {
    const db = await freshDatabase({migrated: true})
    let run = await startRun(['--upstream', app.url], {AUDIT_LOGS_DATABASE_URL: db.url})
    const send = () =>
      request(`${run.adminUrl}/_audit/events`, {method: 'POST', headers: {'content-type': 'application/json'}, body: '{"action":"OPEN"}'})
    try {
      const off = await send()
      expect(off.status).to.equal(403)
      expect(json(off).error).to.match(/no eventsToken is configured/)
      await run.stop()
      run = await startRun(['--upstream', app.url], {AUDIT_LOGS_DATABASE_URL: db.url, AUDIT_LOGS_EVENTS_ALLOW_NO_TOKEN: 'true'})
      expect((await send()).status).to.equal(200)
    } finally {
      await run.stop()
      await db.drop()
    }
  })

  it('eventsAllowNoToken with an admin listener that is not loopback (this machine’s own address, and 0.0.0.0): events are still refused without a token', async () => {
    // a non-loopback address of this machine, when it has one (the admin listener can bind it); 0.0.0.0 always
    const own = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a && !a.internal && a.family === 'IPv4')?.address
    const db = await freshDatabase({migrated: true})
    try {
      for (const adminHost of [...(own ? [own] : []), '0.0.0.0']) {
        const run = await startRun(
          ['--upstream', app.url],
          {AUDIT_LOGS_DATABASE_URL: db.url, AUDIT_LOGS_EVENTS_ALLOW_NO_TOKEN: 'true'},
          {adminHost},
        )
        try {
          const r = await request(`${run.adminUrl}/_audit/events`, {
            method: 'POST',
            headers: {'content-type': 'application/json'},
            body: '{"action":"OPEN_ON_THE_NETWORK"}',
          })
          expect(r.status, `admin listener on ${adminHost}`).to.equal(403)
          expect(json(r).error).to.match(/no eventsToken is configured .*eventsAllowNoToken with a loopback admin listener/)
          // the listener itself answers there: it is the events that are refused
          expect((await request(`${run.adminUrl}/health`)).status).to.equal(200)
        } finally {
          await run.stop()
        }
      }
      expect(await count(db.client, 'event_logs')).to.equal(0)
    } finally {
      await db.drop()
    }
  })

  it('stores=both: events in PostgreSQL and MongoDB, and the read side gives the same answers from each', async function () {
    skipUnless(this, !!mongoServerUri(), 'no MongoDB server for the tests (AUDIT_LOGS_TEST_MONGO_URI)', {expectedInCi: true})
    const db = await freshDatabase({migrated: true})
    const m: TestMongo = await freshMongo()
    const env = {
      AUDIT_LOGS_DATABASE_URL: db.url,
      AUDIT_LOGS_MONGO_URI: m.uri,
      AUDIT_LOGS_MONGO_DB_NAME: m.dbName,
      AUDIT_LOGS_EVENTS_TOKEN: TOKEN,
    }
    const run = await startRun(['--upstream', app.url, '--stores', 'both'], env)
    try {
      const r = await post(
        run,
        JSON.stringify([
          {action: 'LOGIN_FAILED', actor: 'eve', ip: '10.0.0.1', changes: {'a.b': {before: 1, after: 2}}},
          {action: 'EXPORT', actor: '7', extra: {record_count: 5}},
          {action: 'UPDATE', actor: '7', target: {type: 'shop.Order', id: '1'}},
        ]),
      )
      expect(r.status).to.equal(200)
      await until(async () => (await m.client.db(m.dbName).collection('event_logs').countDocuments()) === 3, 20_000, 'three documents')
      await until(async () => (await count(db.client, 'event_logs')) === 3, 20_000, 'three rows')
      const read = async (source: string, ...args: string[]) => {
        const out = await runCli([...args, '--log-type', 'event', '--source', source, '--json'], {env})
        expect(out.exitCode, out.stderr).to.equal(0)
        return out.json()
      }
      expect(await read('mongo', 'stats')).to.deep.equal(await read('postgres', 'stats'))
      const pgRows = (await read('postgres', 'query', '--actor', '7')).records
      const mongoRows = (await read('mongo', 'query', '--actor', '7')).records
      expect(mongoRows.map((x: {id: string}) => x.id)).to.deep.equal(pgRows.map((x: {id: string}) => x.id))
      const failed = (await read('mongo', 'query', '--action', 'LOGIN_FAILED')).records[0]
      expect(failed.changes).to.deep.equal({'a.b': {before: 1, after: 2}})
    } finally {
      await run.stop()
      await m.drop()
      await db.drop()
    }
  })
})

describe('event filters and the event summary: PostgreSQL, MongoDB and the files give the expected answers', function () {
  this.timeout(240_000)
  let app: Upstream
  let db: TestDatabase
  let m: TestMongo
  let run: RunningServer
  let env: Record<string, string>
  // ten minutes apart, over the last two hours: one time per event, so newest-first is one order everywhere
  const base = Math.floor(Date.now() / 60_000) * 60_000 - 2 * 3_600_000
  const at = (i: number) => new Date(base + i * 600_000).toISOString()
  const SENT = [
    {action: 'LOGIN', actor: 'ann', ip: '10.0.0.1', severity: 'INFO'},
    {action: 'UPDATE', actor: 'ann', target: {type: 'shop.Order', id: '1'}, severity: 'INFO'},
    {action: 'UPDATE', actor: 'bob', target: {type: 'shop.Order', id: '2'}}, // no severity
    {action: 'SYSTEM', severity: 'ERROR', reason: 'disk almost full'},
    {action: 'SYSTEM', actor: 'cron', severity: 'ERROR'},
    {action: 'LOGIN_FAILED', actor: 'eve', ip: '10.0.0.9', severity: 'SECURITY'},
    {action: 'LOGIN_FAILED', actor: 'eve', ip: '10.0.0.9', severity: 'SECURITY'},
    {action: 'BRUTEFORCE_SUSPECTED', ip: '10.0.0.9', severity: 'SECURITY'},
    {action: 'EXPORT', actor: 'bob', target: {type: 'shop.Customer'}, severity: 'WARNING', extra: {record_count: 40}},
    {action: 'SLOW_QUERY', target: {type: 'db'}, severity: 'PERFORMANCE'},
    {action: 'DELETE', actor: 'bob', target: {type: 'shop.Order', id: '2'}, severity: 'WARNING'},
  ].map((e, i) => ({...e, created_at: at(i)}))
  let ids: string[] = []
  const SOURCES = ['postgres', 'mongo', 'files'] as const

  before(async function () {
    skipUnless(this, !!mongoServerUri(), 'no MongoDB server for the tests (AUDIT_LOGS_TEST_MONGO_URI)', {expectedInCi: true})
    app = await startUpstream()
    db = await freshDatabase({migrated: true})
    m = await freshMongo()
    env = {AUDIT_LOGS_DATABASE_URL: db.url, AUDIT_LOGS_MONGO_URI: m.uri, AUDIT_LOGS_MONGO_DB_NAME: m.dbName, AUDIT_LOGS_EVENTS_TOKEN: TOKEN}
    run = await startRun(['--upstream', app.url, '--stores', 'both'], env)
    const r = await post(run, JSON.stringify(SENT))
    expect(r.status).to.equal(200)
    expect(json(r).refused).to.deep.equal([])
    ids = json(r).ids
    await until(async () => (await count(db.client, 'event_logs')) === SENT.length, 20_000, 'the events in PostgreSQL')
    await until(
      async () => (await m.client.db(m.dbName).collection('event_logs').countDocuments()) === SENT.length,
      20_000,
      'the events in MongoDB',
    )
    await until(() => jsonlLines(run.logDir, 'events.jsonl').length === SENT.length, 20_000, 'the events in the files')
  })
  after(async () => {
    await run?.stop()
    await app?.close()
    await m?.drop()
    await db?.drop()
  })

  /** The command's --json answer from one source. */
  const read = async (source: string, args: string[]) => {
    const files = source === 'files' ? ['--log-dir', run.logDir] : []
    const out = await runCli([...args, '--log-type', 'event', '--source', source, ...files, '--json'], {env})
    expect(out.exitCode, `${args.join(' ')} from ${source}: ${out.stderr}`).to.equal(0)
    return out.json()
  }

  // the events each filter selects (by their index in SENT), newest first
  const cases: Array<[string[], number[]]> = [
    [
      ['--severity', 'ERROR'],
      [4, 3],
    ],
    [
      ['--severity', 'SECURITY,WARNING'],
      [10, 8, 7, 6, 5],
    ],
    [
      ['--severity', 'INFO', '--actor', 'ann'],
      [1, 0],
    ],
    [['--severity', 'PERFORMANCE', '--target', 'db'], [9]],
    [['--severity', 'ERROR', '--since', at(4)], [4]],
    [['--severity', 'INFO', '--action', 'SYSTEM'], []],
    [
      ['--actor', 'bob'],
      [10, 8, 2],
    ],
    [
      ['--since', at(2), '--until', at(5)],
      [4, 3, 2],
    ], // since includes its event, until leaves its own out
  ]
  for (const [args, want] of cases)
    it(`query ${args.join(' ')}`, async () => {
      for (const source of SOURCES) {
        const records: Array<{id: string; severity: string | null}> = (await read(source, ['query', ...args])).records
        expect(
          records.map((r) => r.id),
          source,
        ).to.deep.equal(want.map((i) => ids[i]))
      }
    })

  it('stats --log-type event: counts by action, actor, target type and severity, failed logins and exports; for one actor; for a time range', async () => {
    const none = {total: 0, byActor: [], byIp: []}
    const expected: Array<[string[], Record<string, unknown>]> = [
      [
        [],
        {
          total: 11,
          // most frequent first, ties by value
          byAction: [
            {action: 'LOGIN_FAILED', count: 2},
            {action: 'SYSTEM', count: 2},
            {action: 'UPDATE', count: 2},
            {action: 'BRUTEFORCE_SUSPECTED', count: 1},
            {action: 'DELETE', count: 1},
            {action: 'EXPORT', count: 1},
            {action: 'LOGIN', count: 1},
            {action: 'SLOW_QUERY', count: 1},
          ],
          byActor: [
            {actor: 'bob', count: 3},
            {actor: 'ann', count: 2},
            {actor: 'eve', count: 2},
            {actor: 'cron', count: 1},
          ],
          byTargetType: [
            {type: 'shop.Order', count: 3},
            {type: 'db', count: 1},
            {type: 'shop.Customer', count: 1},
          ],
          bySeverity: [
            {severity: 'SECURITY', count: 3},
            {severity: 'ERROR', count: 2},
            {severity: 'INFO', count: 2},
            {severity: 'WARNING', count: 2},
            {severity: 'PERFORMANCE', count: 1},
          ],
          failedLogins: {total: 2, byActor: [{actor: 'eve', count: 2}], byIp: [{ip: '10.0.0.9', count: 2}]},
          exports: {total: 1, records: 40},
        },
      ],
      [
        ['--actor', 'bob'],
        {
          total: 3,
          byAction: [
            {action: 'DELETE', count: 1},
            {action: 'EXPORT', count: 1},
            {action: 'UPDATE', count: 1},
          ],
          byActor: [{actor: 'bob', count: 3}],
          byTargetType: [
            {type: 'shop.Order', count: 2},
            {type: 'shop.Customer', count: 1},
          ],
          bySeverity: [{severity: 'WARNING', count: 2}],
          failedLogins: none,
          exports: {total: 1, records: 40},
        },
      ],
      [
        ['--since', at(3), '--until', at(8)],
        {
          total: 5,
          byAction: [
            {action: 'LOGIN_FAILED', count: 2},
            {action: 'SYSTEM', count: 2},
            {action: 'BRUTEFORCE_SUSPECTED', count: 1},
          ],
          byActor: [
            {actor: 'eve', count: 2},
            {actor: 'cron', count: 1},
          ],
          byTargetType: [],
          bySeverity: [
            {severity: 'SECURITY', count: 3},
            {severity: 'ERROR', count: 2},
          ],
          failedLogins: {total: 2, byActor: [{actor: 'eve', count: 2}], byIp: [{ip: '10.0.0.9', count: 2}]},
          exports: {total: 0, records: 0},
        },
      ],
      [
        ['--actor', 'eve', '--since', at(6)],
        {
          total: 1,
          byAction: [{action: 'LOGIN_FAILED', count: 1}],
          byActor: [{actor: 'eve', count: 1}],
          byTargetType: [],
          bySeverity: [{severity: 'SECURITY', count: 1}],
          failedLogins: {total: 1, byActor: [{actor: 'eve', count: 1}], byIp: [{ip: '10.0.0.9', count: 1}]},
          exports: {total: 0, records: 0},
        },
      ],
      [
        ['--severity', 'WARNING'],
        {
          total: 2,
          byAction: [
            {action: 'DELETE', count: 1},
            {action: 'EXPORT', count: 1},
          ],
          byActor: [{actor: 'bob', count: 2}],
          byTargetType: [
            {type: 'shop.Customer', count: 1},
            {type: 'shop.Order', count: 1},
          ],
          bySeverity: [{severity: 'WARNING', count: 2}],
          failedLogins: none,
          exports: {total: 1, records: 40},
        },
      ],
    ]
    for (const [args, want] of expected)
      for (const source of SOURCES)
        expect(await read(source, ['stats', ...args]), `stats ${args.join(' ')} from ${source}`).to.deep.equal(want)
  })
})

describe('login attempts seen by the proxy (loginRoutes)', function () {
  this.timeout(180_000)
  let app: Upstream
  before(async () => (app = await startUpstream()))
  after(() => app?.close())

  it('LOGIN and LOGIN_FAILED from the status, the username from the body (never the password); repeated failures flag suspicious:bruteforce with one SECURITY event', async () => {
    const db = await freshDatabase({migrated: true})
    const run = await startRun(['--upstream', app.url], {
      AUDIT_LOGS_DATABASE_URL: db.url,
      AUDIT_LOGS_LOGIN_ROUTES: 'POST /login,POST /form-login 302',
      AUDIT_LOGS_BRUTEFORCE_THRESHOLD: '3',
    })
    const login = (username: string, password: string) =>
      request(`${run.url}/login`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({username, password}),
      })
    const form = (username: string, password: string) =>
      request(`${run.url}/form-login`, {
        method: 'POST',
        headers: {'content-type': 'application/x-www-form-urlencoded'},
        body: new URLSearchParams({username, password}).toString(),
      })
    try {
      expect((await login('alice', 'right')).status).to.equal(200)
      expect((await form('carol', 'right')).status).to.equal(302)
      expect((await form('carol', 'wrong-form-password')).status).to.equal(200) // the form again: a failure on this route
      for (let i = 0; i < 4; i++) expect((await login('bob', `wrong-password-${i}`)).status).to.equal(401)
      await until(async () => (await count(db.client, 'event_logs')) >= 9, 20_000, 'nine events')
      await new Promise((r) => setTimeout(r, 500))
      const {rows} = await db.client.query(
        'SELECT action, actor_id, severity, request_id, reason, extra FROM event_logs ORDER BY created_at, id',
      )
      expect(rows.filter((r) => r.action === 'LOGIN').map((r) => r.actor_id)).to.deep.equal(['alice', 'carol'])
      expect(rows.filter((r) => r.action === 'LOGIN_FAILED').map((r) => r.actor_id)).to.deep.equal(['carol', 'bob', 'bob', 'bob', 'bob'])
      // 3 failures from 127.0.0.1 (carol's and two of bob's), then 3 for bob: one SECURITY event for each, once
      const security = rows.filter((r) => r.action === 'BRUTEFORCE_SUSPECTED')
      expect(security.map((r) => [r.severity, r.extra.key])).to.deep.equal([
        ['SECURITY', 'ip'],
        ['SECURITY', 'user'],
      ])
      expect(security[0].reason).to.match(/3 failed logins from 127\.0\.0\.1 within 300 s/)
      expect(JSON.stringify(rows)).not.to.match(/wrong-password|wrong-form-password|right/)
      const flagged = await db.client.query(
        "SELECT request_id FROM request_logs WHERE 'suspicious:bruteforce' = ANY(flags) ORDER BY created_at, id",
      )
      expect(flagged.rows).to.have.length(3) // the third failure on and after
      const events = rows.filter((r) => r.action === 'LOGIN_FAILED').map((r) => r.request_id)
      expect(flagged.rows.map((r) => r.request_id)).to.deep.equal(events.slice(2))
      const q = await runCli(['query', '--flag', 'suspicious:bruteforce', '--json'], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
      expect(q.json().records).to.have.length(3)
    } finally {
      await run.stop()
      await db.drop()
    }
  })

  it('a login route that is not understood stops run at start with the accepted form', async () => {
    const r = await runCli(['run', '--upstream', app.url, '--bind', '127.0.0.1:0'], {env: {AUDIT_LOGS_LOGIN_ROUTES: 'login please'}})
    expect(r.exitCode).to.equal(2)
    expect(r.stderr).to.match(/"login please" is not "METHOD \/path" or "METHOD \/path STATUSES"/)
  })
})
