import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {generateRecords} from '../../src/generate/records.js'
import {toDocument} from '../../src/stores/mongo/documents.js'
import {writeRecords} from '../../src/stores/postgres/writer.js'
import {runCli} from '../helpers/cli.js'
import {type TestDatabase, count, freshDatabase} from '../helpers/db.js'
import {type TestMongo, freshMongo, isFerretDb, mongoServerUri} from '../helpers/mongo.js'
import {skipUnless} from '../helpers/skip.js'

const DAY = 86_400_000

/** Records well inside (0-30 days old) and well outside (150-180 days) both retentions (90 and 120 days): no record near a cutoff. */
function load(logType: 'request' | 'access', oldRows: number, newRows: number) {
  const now = Date.now()
  return {
    old: [...generateRecords({rows: oldRows, days: 30, seed: 1, now: new Date(now - 150 * DAY), logType})],
    new: [...generateRecords({rows: newRows, days: 30, seed: 2, now: new Date(now), logType})],
  }
}

describe('MongoDB administration (subprocess): setup-db, cleanup, migrate status, partitions list, scaffold', function () {
  this.timeout(120_000)
  let mongo: TestMongo
  const env = (more: Record<string, string> = {}) => ({
    AUDIT_LOGS_MONGO_URI: mongo.uri,
    AUDIT_LOGS_MONGO_DB_NAME: mongo.dbName,
    AUDIT_LOGS_STORES: 'mongo',
    ...more,
  })
  const db = () => mongo.client.db(mongo.dbName)
  const collections = async () => (await db().listCollections().toArray()).map((c) => c.name).sort()

  before(async function () {
    skipUnless(this, !!mongoServerUri(), 'no MongoDB server', {expectedInCi: true})
    mongo = await freshMongo('admin')
  })
  after(() => mongo?.drop())

  it('setup-db --store mongo --dry-run prints the commands and changes nothing', async () => {
    const r = await runCli(['setup-db', '--store', 'mongo', '--dry-run'], {env: env({AUDIT_LOGS_STORES: 'postgres'})})
    expect(r.exitCode, r.stderr).to.equal(0)
    expect(r.stdout).to.contain('dry run: nothing was changed').and.contain('db.createCollection("request_logs"')
    expect(r.stdout).to.contain('db.access_logs.createIndexes(')
    expect(await collections()).to.deep.equal([])
  })

  it('setup-db --mongo-ttl on a server without TTL indexes fails clearly, naming cleanup, and changes nothing', async function () {
    skipUnless(this, isFerretDb(), 'the server implements TTL indexes', {expectedInCi: false})
    const r = await runCli(['setup-db', '--mongo-ttl'], {env: env()})
    expect(r.exitCode).to.equal(3)
    expect(r.stderr).to.match(/FerretDB \S+ does not support TTL indexes \(--mongo-ttl\): NotImplemented 238/)
    expect(r.stderr).to.contain('Nothing was changed').and.contain('audit-logs cleanup')
    expect(await collections()).to.deep.equal([])
  })

  it('setup-db creates the collections and indexes; a second run has nothing to do', async () => {
    const first = await runCli(['setup-db', '--json'], {env: env()})
    expect(first.exitCode, first.stderr).to.equal(0)
    const result = first.json()
    expect(result.changed).to.equal(true)
    expect(result.mongo.database).to.equal(mongo.dbName)
    expect(result.steps.map((s: {step: string}) => s.step)).to.include('MongoDB collection request_logs')
    expect(await collections()).to.deep.equal([
      'access_logs',
      'app_logs',
      'event_logs',
      'integrity_batches', // the integrity chain's (stores/mongo/integrity.ts)
      'integrity_digests',
      'integrity_pruned',
      'integrity_retention',
      'outbound_logs',
      'request_logs',
    ])
    expect((await db().collection('access_logs').indexes()).map((i) => i.name)).to.include('url_1_created_at_-1')
    if (isFerretDb())
      expect(result.steps.find((s: {step: string}) => s.step.startsWith('MongoDB validator request_logs'))).to.include({status: 'skipped'})

    const second = await runCli(['setup-db'], {env: env()})
    expect(second.exitCode, second.stderr).to.equal(0)
    expect(second.stdout).to.contain(`Nothing to do: MongoDB database ${mongo.dbName} was already set up`)
    expect(second.stdout).not.to.match(/│ (created|updated)/)
  })

  it('migrate status and partitions list with stores=mongo say what applies to MongoDB', async () => {
    const status = await runCli(['migrate', 'status'], {env: env()})
    expect(status.exitCode, status.stderr).to.equal(0)
    expect(status.stdout).to.contain('has no migrations').and.contain('all 5 present')
    const json = (await runCli(['migrate', 'status', '--json'], {env: env()})).json()
    expect(json.migrations).to.deep.equal([])
    expect(json.pending).to.equal(0)
    expect(json.mongo.collections.map((c: {collection: string}) => c.collection)).to.deep.equal([
      'request_logs',
      'access_logs',
      'event_logs',
      'outbound_logs',
      'app_logs',
    ])

    const list = await runCli(['partitions', 'list', '--json'], {env: env()})
    expect(list.exitCode, list.stderr).to.equal(0)
    const partitions = list.json()
    expect(partitions.partitions).to.deep.equal([])
    expect(partitions.mongo.collections[0]).to.include({collection: 'request_logs', exists: true, ttl: null})
    const text = await runCli(['partitions', 'list'], {env: env()})
    expect(text.stdout).to.contain('has no partitions')
  })

  describe('cleanup', () => {
    const request = load('request', 130, 70)
    const access = load('access', 50, 20)
    beforeEach(async () => {
      for (const name of ['request_logs', 'access_logs']) await db().collection(name).deleteMany({})
      await db()
        .collection('request_logs')
        .insertMany([...request.old, ...request.new].map((r) => toDocument('request', r)) as never[])
      await db()
        .collection('access_logs')
        .insertMany([...access.old, ...access.new].map((r) => toDocument('access', r)) as never[])
    })

    it('--dry-run counts per collection and deletes nothing', async () => {
      const r = await runCli(['cleanup', '--dry-run', '--json'], {env: env()})
      expect(r.exitCode, r.stderr).to.equal(0)
      const report = r.json()
      expect(report.dryRun).to.equal(true)
      expect(report.mongo.targets.map((t: {collection: string; older: number}) => [t.collection, t.older])).to.deep.equal([
        ['request_logs', 130],
        ['access_logs', 50],
        ['event_logs', 0],
        ['outbound_logs', 0],
        ['app_logs', 0],
      ])
      expect(await db().collection('request_logs').countDocuments()).to.equal(200)
      const text = await runCli(['cleanup', '--dry-run'], {env: env()})
      expect(text.stdout).to.contain('Dry run: 180 document(s) would be removed from MongoDB; nothing was changed.')
    })

    it('deletes what is past the cutoff in batches of --batch-size; --log-type picks the collection', async () => {
      const r = await runCli(['cleanup', '--batch-size', '40', '--log-type', 'request', '--json'], {env: env()})
      expect(r.exitCode, r.stderr).to.equal(0)
      const [t] = r.json().mongo.targets
      expect(t).to.include({collection: 'request_logs', older: 130, deleted: 130, batches: 4})
      expect(await db().collection('request_logs').countDocuments()).to.equal(70)
      expect(await db().collection('access_logs').countDocuments()).to.equal(70) // untouched

      const gunicorn = await runCli(['cleanup', '--log-type', 'gunicorn'], {env: env()})
      expect(gunicorn.exitCode, gunicorn.stderr).to.equal(0)
      expect(gunicorn.stdout).to.contain('Removed 50 document(s) from MongoDB.')
      expect(await db().collection('access_logs').countDocuments()).to.equal(20)
    })

    describe('with both stores', () => {
      let pg: TestDatabase
      before(async () => {
        pg = await freshDatabase({migrated: true})
      })
      after(() => pg?.drop())

      it('cleans PostgreSQL and MongoDB in one run', async () => {
        await writeRecords(pg.client, 'request', [...request.old, ...request.new])
        const r = await runCli(['cleanup', '--log-type', 'request', '--json'], {
          env: env({AUDIT_LOGS_STORES: 'both', AUDIT_LOGS_DATABASE_URL: pg.url}),
        })
        expect(r.exitCode, r.stderr).to.equal(0)
        const report = r.json()
        expect(report.totalRows).to.equal(130)
        expect(report.mongo.totalDocuments).to.equal(130)
        expect(await count(pg.client, 'request_logs')).to.equal(70)
        expect(await db().collection('request_logs').countDocuments()).to.equal(70)

        // migrate status shows PostgreSQL's migrations and MongoDB's state
        const status = await runCli(['migrate', 'status', '--json'], {
          env: env({AUDIT_LOGS_STORES: 'both', AUDIT_LOGS_DATABASE_URL: pg.url}),
        })
        expect(status.json().migrations.length).to.be.greaterThan(0)
        expect(status.json().mongo.database).to.equal(mongo.dbName)
      })
    })
  })

  it('scaffold server-config writes the MongoDB settings, commented when unset, a password only when given', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-scaffold-mongo-'))
    try {
      const plain = await runCli(['scaffold', 'server-config', '--yes', '--out', path.join(dir, 'a.mjs')], {
        env: {AUDIT_LOGS_MONGO_URI: 'mongodb://writer:from-env-secret@mongo.internal:27017/', AUDIT_LOGS_STORES: 'both'},
      })
      expect(plain.exitCode, plain.stderr).to.equal(0)
      const a = readFileSync(path.join(dir, 'a.mjs'), 'utf8')
      expect(a).to.contain('stores: "both"').and.contain("// mongoUri: 'mongodb://").and.contain('// mongoDbName: "audit_logs"')
      expect(a).not.to.contain('from-env-secret')

      const given = await runCli(
        [
          'scaffold',
          'server-config',
          '--yes',
          '--out',
          path.join(dir, 'b.mjs'),
          '--mongo-uri',
          'mongodb://writer:given-secret@mongo.internal:27017/',
        ],
        {env: {AUDIT_LOGS_STORES: 'mongo', AUDIT_LOGS_MONGO_DB_NAME: 'trail', AUDIT_LOGS_MONGO_REQUEST_LOGS_COLLECTION: 'requests'}},
      )
      expect(given.exitCode, given.stderr).to.equal(0)
      expect(given.stdout + given.stderr).not.to.contain('given-secret')
      const b = readFileSync(path.join(dir, 'b.mjs'), 'utf8')
      expect(b).to.contain('stores: "mongo"').and.contain('mongoUri: "mongodb://writer:given-secret@mongo.internal:27017/"')
      expect(b)
        .to.contain('mongoDbName: "trail"')
        .and.contain('mongoRequestCollection: "requests"')
        .and.contain('// mongoAccessCollection: "access_logs"')
      const none = await runCli(['scaffold', 'server-config', '--yes', '--out', path.join(dir, 'c.mjs')], {
        env: {AUDIT_LOGS_STORES: undefined, AUDIT_LOGS_MONGO_URI: undefined},
      })
      expect(readFileSync(path.join(dir, 'c.mjs'), 'utf8'), none.stderr).to.contain("// stores: 'both'")
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
