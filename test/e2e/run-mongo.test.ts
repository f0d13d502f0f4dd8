import {mkdtempSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {freePort} from '../../src/util/process.js'
import {runCli} from '../helpers/cli.js'
import {type TestDatabase, count, freshDatabase} from '../helpers/db.js'
import {jsonlLines} from '../helpers/jsonl.js'
import {type TestMongo, ferretDbBuilt, freshMongo, mongoServerUri, startFerretDb, tcpRelay} from '../helpers/mongo.js'
import {request, sendLoops, startRun, until} from '../helpers/run-server.js'
import {skipUnless} from '../helpers/skip.js'
import {type Upstream, startUpstream} from '../helpers/upstream.js'

const mongoEnv = (m: TestMongo, uri = m.uri) => ({AUDIT_LOGS_MONGO_URI: uri, AUDIT_LOGS_MONGO_DB_NAME: m.dbName})

/** Documents and distinct ids in a collection. */
async function tally(m: TestMongo, collection: string): Promise<{n: number; distinct: number}> {
  const ids = await m.client
    .db(m.dbName)
    .collection(collection)
    .find({}, {projection: {_id: 1}})
    .toArray()
  return {n: ids.length, distinct: new Set(ids.map((d) => String(d._id))).size}
}

/** Sends GETs with `parallel` loops until stopped; counts the replies. */
function traffic(url: string, parallel = 4) {
  const stats = {ok: 0, failed: 0}
  const loops = sendLoops(parallel, async (k, i) => {
    const r = await request(`${url}/json?loop=${k}&i=${i}`).catch(() => undefined)
    if (r?.status === 200) stats.ok++
    else stats.failed++
  })
  let stopped: Promise<typeof stats> | undefined
  return {stop: () => (stopped ??= loops.stop().then(() => stats))}
}

describe('audit-logs run with MongoDB', function () {
  this.timeout(180_000)
  let app: Upstream
  before(async function () {
    skipUnless(this, !!mongoServerUri(), 'no MongoDB server for the tests (test/support/ferretdb.sh, or AUDIT_LOGS_TEST_MONGO_URI)')
    app = await startUpstream()
  })
  after(() => app?.close())

  it('stores=both: every record in PostgreSQL, MongoDB and the files once; header names with . and $ read back intact', async () => {
    const db: TestDatabase = await freshDatabase({migrated: true})
    const m = await freshMongo()
    const run = await startRun(['--upstream', app.url, '--stores', 'both'], {AUDIT_LOGS_DATABASE_URL: db.url, ...mongoEnv(m)})
    try {
      expect(run.stderr()).to.match(/stores: PostgreSQL .* and MongoDB mongodb:\/\/.* database t_\w+ \(stores = both\)/)
      for (let i = 0; i < 20; i++) {
        const r = await request(`${run.url}/json?i=${i}`, {headers: {'x.trace$id': `t-${i}`, 'x-a%2Eb': 'pct'}})
        expect(r.status).to.equal(200)
      }
      await until(async () => (await tally(m, 'request_logs')).n >= 20 && (await tally(m, 'access_logs')).n >= 20, 20_000, '20 documents')
      await until(async () => (await count(db.client, 'request_logs')) >= 20, 20_000, '20 rows')
      expect(await tally(m, 'request_logs')).to.deep.equal({n: 20, distinct: 20})
      expect(await tally(m, 'access_logs')).to.deep.equal({n: 20, distinct: 20})
      const doc = await m.client.db(m.dbName).collection('request_logs').findOne({path: '/json'})
      expect(doc!.created_at).to.be.instanceOf(Date)
      // read back through the product's own reader: the names as the client sent them
      const shown = await runCli(['show', String(doc!._id), '--source', 'mongo', '--json'], {env: mongoEnv(m)})
      expect(shown.exitCode, shown.stderr).to.equal(0)
      {
        const headers = shown.json().record?.request_headers ?? shown.json().request_headers
        expect(headers).to.include.keys('x.trace$id', 'x-a%2eb') // Node gives header names in lower case
      }
      const ids = new Set(jsonlLines(run.logDir, 'requests.jsonl').map((l) => JSON.parse(l).id))
      const mongoIds = (
        await m.client
          .db(m.dbName)
          .collection('request_logs')
          .find({}, {projection: {_id: 1}})
          .toArray()
      ).map((d) => d._id)
      expect(new Set(mongoIds)).to.deep.equal(ids)
    } finally {
      await run.stop()
      await db.drop()
      await m.drop()
    }
  })

  it('MongoDB stopped for 30 s while traffic flows: every request succeeds, PostgreSQL keeps pace, afterwards every record is in both stores exactly once', async () => {
    const db: TestDatabase = await freshDatabase({migrated: true})
    const m = await freshMongo()
    const relay = await tcpRelay(m.uri) // the server as run sees it: stopped and started by closing the relay's port
    const run = await startRun(['--upstream', app.url, '--no-files', '--stores', 'both'], {
      AUDIT_LOGS_DATABASE_URL: db.url,
      ...mongoEnv(m, relay.uri),
    })
    const load = traffic(run.url)
    try {
      await new Promise((r) => setTimeout(r, 2000))
      await relay.stop()
      const atStop = await count(db.client, 'request_logs')
      await new Promise((r) => setTimeout(r, 30_000))
      // PostgreSQL was not held back by MongoDB's outage: it kept receiving records throughout
      const duringOutage = await count(db.client, 'request_logs')
      expect(duringOutage - atStop, 'rows written to PostgreSQL while MongoDB was down').to.be.greaterThan(100)
      const health = JSON.parse((await request(`${run.adminUrl}/health`)).body.toString())
      expect(health.sinks.mongo.lastError, 'the MongoDB sink reports its failure').to.be.a('string')
      await relay.start()
      await new Promise((r) => setTimeout(r, 2000))
      const sent = await load.stop()
      expect(sent.failed).to.equal(0)
      expect(sent.ok).to.be.greaterThan(100)
      await until(
        async () => (await tally(m, 'request_logs')).n >= sent.ok && (await tally(m, 'access_logs')).n >= sent.ok,
        90_000,
        'every record in MongoDB',
      )
      expect(await tally(m, 'request_logs')).to.deep.equal({n: sent.ok, distinct: sent.ok})
      expect(await tally(m, 'access_logs')).to.deep.equal({n: sent.ok, distinct: sent.ok})
      await until(async () => (await count(db.client, 'request_logs')) >= sent.ok, 30_000, 'every record in PostgreSQL')
      expect(await count(db.client, 'request_logs')).to.equal(sent.ok)
      expect(run.stderr()).to.match(/sink mongo: .*retrying/)
      expect(run.stderr()).not.to.match(/sink postgres: .*retrying/)
    } finally {
      await load.stop()
      await run.stop()
      await relay.close()
      await db.drop()
      await m.drop()
    }
  })

  it('PostgreSQL and MongoDB both down for 10 s: every request succeeds, the journal holds the records, afterwards each is in both stores once', async () => {
    const db: TestDatabase = await freshDatabase({migrated: true})
    const m = await freshMongo()
    const pgRelay = await tcpRelay(db.url) // a TCP relay serves any server: here PostgreSQL's
    const mongoRelay = await tcpRelay(m.uri)
    const run = await startRun(['--upstream', app.url, '--no-files', '--stores', 'both'], {
      AUDIT_LOGS_DATABASE_URL: pgRelay.uri,
      ...mongoEnv(m, mongoRelay.uri),
    })
    const load = traffic(run.url, 2)
    try {
      await new Promise((r) => setTimeout(r, 1000))
      await pgRelay.stop()
      await mongoRelay.stop()
      await new Promise((r) => setTimeout(r, 10_000))
      const health = JSON.parse((await request(`${run.adminUrl}/health`)).body.toString())
      expect(health.sinks.postgres.lastError, 'PostgreSQL reported down').to.be.a('string')
      expect(health.sinks.mongo.lastError, 'MongoDB reported down').to.be.a('string')
      await pgRelay.start()
      await mongoRelay.start()
      await new Promise((r) => setTimeout(r, 1000))
      const sent = await load.stop()
      expect(sent.failed).to.equal(0)
      expect(sent.ok).to.be.greaterThan(50)
      await until(async () => (await tally(m, 'request_logs')).n >= sent.ok, 60_000, 'every record in MongoDB')
      await until(async () => (await count(db.client, 'request_logs')) >= sent.ok, 60_000, 'every record in PostgreSQL')
      expect(await tally(m, 'request_logs')).to.deep.equal({n: sent.ok, distinct: sent.ok})
      expect(await count(db.client, 'request_logs')).to.equal(sent.ok)
    } finally {
      await load.stop()
      await run.stop()
      await pgRelay.close()
      await mongoRelay.close()
      await db.drop()
      await m.drop()
    }
  })

  it('kill -9 while traffic flows: after a restart every record that reached the journal is in MongoDB exactly once', async () => {
    const m = await freshMongo()
    const env = {...mongoEnv(m), AUDIT_LOGS_USE_MONGO: 'true'} // the seeds' switch: MongoDB (and the files) only
    const first = await startRun(['--upstream', app.url, '--workers', '2'], env)
    try {
      expect(first.stderr()).to.match(/stores: MongoDB .*\(stores = mongo\)/)
      const load = traffic(first.url)
      await new Promise((r) => setTimeout(r, 2500))
      process.kill(-first.child.pid!, 'SIGKILL')
      await first.child
      await load.stop()
      // what reached the journal: every request record the files hold after the restart (the files sink replays it too)
      const second = await startRun(['--upstream', app.url], env, {dir: first.dir})
      try {
        await new Promise((r) => setTimeout(r, 1000))
        await second.stop()
        const inFiles = new Set(jsonlLines(first.logDir, 'requests.jsonl').map((l) => JSON.parse(l).id as string))
        expect(inFiles.size).to.be.greaterThan(0)
        const t = await tally(m, 'request_logs')
        expect(t.n, 'no document twice').to.equal(t.distinct)
        const ids = new Set(
          (
            await m.client
              .db(m.dbName)
              .collection('request_logs')
              .find({}, {projection: {_id: 1}})
              .toArray()
          ).map((d) => String(d._id)),
        )
        expect(
          [...inFiles].filter((id) => !ids.has(id)),
          'records in the files but not in MongoDB',
        ).to.deep.equal([])
      } finally {
        await second.stop()
      }
    } finally {
      await m.drop()
    }
  })

  describe('bad configuration: a clear error naming the setting, no password shown, exit 3', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-mongo-config-'))
    const start = async (uri: string, extra: Record<string, string> = {}) => {
      const run = await startRun(
        ['--upstream', app.url, '--stores', 'mongo'],
        {AUDIT_LOGS_MONGO_URI: uri, ...extra},
        {expectFailure: true, dir},
      )
      const r = await run.child
      return {exitCode: r.exitCode, stderr: run.stderr() + String(r.stdout)}
    }

    it('a connection string that does not parse', async () => {
      const r = await start('mongodb://ann:Pa55#word@db:27017/')
      expect(r.exitCode).to.equal(3)
      expect(r.stderr).to.match(/mongoUri = mongodb:\/\/ann:\*\*\*\*@db:27017\/ \(from environment AUDIT_LOGS_MONGO_URI\)/)
      expect(r.stderr).to.contain('percent-encode')
      expect(r.stderr).not.to.contain('Pa55')
    })

    it('a host that does not answer', async () => {
      const r = await start(`mongodb://ann:hunter22x@127.0.0.1:${await freePort()}/`)
      expect(r.exitCode).to.equal(3)
      expect(r.stderr).to.match(/Cannot connect to MongoDB at mongodb:\/\/ann:\*\*\*\*@127\.0\.0\.1:\d+\//)
      expect(r.stderr).to.contain('AUDIT_LOGS_MONGO_URI')
      expect(r.stderr).not.to.contain('hunter22x')
    })

    it('a wrong password', async function () {
      skipUnless(this, ferretDbBuilt(), 'FerretDB is not built (test/support/ferretdb.sh)')
      const server = await startFerretDb({auth: {user: 'admin', password: 'right-pass-1'}})
      try {
        const r = await start(server.uri.replace('right-pass-1', 'wrong-pass-2'))
        expect(r.exitCode).to.equal(3)
        expect(r.stderr).to.match(/MongoDB refused the login for mongodb:\/\/admin:\*\*\*\*@127\.0\.0\.1:\d+\//)
        expect(r.stderr).to.contain('AUDIT_LOGS_MONGO_URI')
        expect(r.stderr).not.to.contain('wrong-pass-2')
      } finally {
        await server.stop()
      }
    })

    it('MongoDB chosen with no server configured', async () => {
      const run = await startRun(['--upstream', app.url], {AUDIT_LOGS_USE_MONGO: 'yes'}, {expectFailure: true, dir})
      const r = await run.child
      expect(r.exitCode).to.equal(2)
      expect(run.stderr()).to.contain('stores = "mongo" (from environment AUDIT_LOGS_USE_MONGO) needs a MongoDB server')
    })
  })
})
