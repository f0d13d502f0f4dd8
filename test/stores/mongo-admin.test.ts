import {expect} from 'chai'
import {generateRecords} from '../../src/generate/records.js'
import {type MongoStore, connectMongo} from '../../src/stores/mongo/connection.js'
import {toDocument} from '../../src/stores/mongo/documents.js'
import {LOG_TYPES, indexesFor, reason, sameKey, ttlOf} from '../../src/stores/mongo/plan.js'
import {cleanupMongo} from '../../src/stores/mongo/retention.js'
import {rolePrivileges, setupMongo} from '../../src/stores/mongo/setup.js'
import {ttlCutoff} from '../../src/stores/mongo/verify.js'
import {honouredCutoffs} from '../../src/stores/postgres/prune.js'
import {mongoState} from '../../src/stores/mongo/status.js'
import {type TestMongo, freshMongo, isFerretDb, mongoServerUri, startFerretDb} from '../helpers/mongo.js'
import {skipUnless} from '../helpers/skip.js'

const NOW = new Date('2026-11-24T12:00:00Z')
const CUTOFF_90 = '2026-08-26T12:00:00.000Z'

describe('MongoDB set-up, plan (pure)', () => {
  it('an index for every filter, each with time after it; the access path on url (its filter is a regex on url)', () => {
    expect(indexesFor('request').map((i) => i.name)).to.deep.equal([
      'created_at_-1',
      'status_code_1_created_at_-1',
      'user_id_1_created_at_-1',
      'path_1_created_at_-1',
      '_ip_1_created_at_-1',
    ])
    expect(indexesFor('access')[3].key).to.deep.equal({url: 1, created_at: -1})
  })

  it('compares keys by field order and direction, whatever number type the server answers with', () => {
    expect(sameKey({status_code: 1.0, created_at: -1}, {status_code: 1, created_at: -1})).to.equal(true)
    expect(sameKey({created_at: -1, status_code: 1}, {status_code: 1, created_at: -1})).to.equal(false)
    expect(sameKey({created_at: 1}, {created_at: -1})).to.equal(false)
  })

  it('finds the TTL index: single-field on created_at with expireAfterSeconds', () => {
    expect(
      ttlOf([
        {key: {_id: 1}, name: '_id_'},
        {key: {created_at: -1}, name: 'created_at_-1'},
      ]),
    ).to.equal(undefined)
    expect(ttlOf([{key: {created_at: -1}, name: 'created_at_-1', expireAfterSeconds: 90 * 86_400}])).to.deep.equal({
      name: 'created_at_-1',
      seconds: 90 * 86_400,
      days: 90,
    })
    expect(ttlOf([{key: {created_at: -1, status_code: 1}, name: 'x', expireAfterSeconds: 5}])).to.equal(undefined)
  })

  it("verify honours a TTL index's horizon as a cutoff within the retention, and flags one shorter than the retention", () => {
    const ttl = ttlOf([{key: {created_at: -1}, name: 'created_at_-1', expireAfterSeconds: 90 * 86_400}])!
    const cutoff = ttlCutoff('request', ttl, NOW)
    expect(cutoff).to.deep.equal({
      log_type: 'request',
      cutoff: CUTOFF_90,
      written_at: NOW.toISOString(),
      how: 'the TTL index created_at_-1 (90 days), as of this verify',
    })
    // the documents older than the horizon were expired on purpose: verify counts them removed, not deleted
    expect(honouredCutoffs([cutoff], {request: 90}, NOW)).to.deep.equal({
      configured: new Map([['request', CUTOFF_90]]),
      signed: [],
      bad: [],
      notes: [],
    })
    // a TTL of 90 days under a retention of 120 expires what must be kept: not honoured
    const {configured, bad} = honouredCutoffs([cutoff], {request: 120}, NOW)
    expect(configured.size).to.equal(0)
    expect(bad).to.have.length(1)
    expect(bad[0].why).to.contain('120 days').and.contain('from the TTL index created_at_-1 (90 days)')
  })

  it("the roles' privileges: the writer inserts records only; the reader finds, follows and lists the records' indexes (verify reads a TTL)", () => {
    const collections = {request: 'r', access: 'a', event: 'e', outbound: 'o', app: 'p'}
    const writer = rolePrivileges('writer', collections)
    const reader = rolePrivileges('reader', collections)
    for (const c of Object.values(collections)) {
      expect(writer.find((p) => p.collection === c)?.actions).to.deep.equal(['insert'])
      expect(reader.find((p) => p.collection === c)?.actions).to.deep.equal(['find', 'changeStream', 'listIndexes'])
    }
    expect(writer.filter((p) => p.collection.startsWith('integrity_'))).to.deep.equal([
      {collection: 'integrity_batches', actions: ['insert', 'find', 'listIndexes']},
      {collection: 'integrity_digests', actions: ['insert']},
    ])
    expect(reader.filter((p) => p.collection.startsWith('integrity_')).map((p) => p.actions.join())).to.deep.equal([
      'find',
      'find',
      'find',
      'find',
    ])
    // nothing else: no write of any kind for the reader, no read of records for the writer
    expect(reader.flatMap((p) => p.actions).filter((a) => !['find', 'changeStream', 'listIndexes'].includes(a))).to.deep.equal([])
  })

  it("shortens a server's reason: no dump of the refused value", () => {
    const error = Object.assign(
      new Error('create: support for field "validator" with value &{map[$jsonSchema:1] [{0xc $x}]} is not implemented yet'),
      {
        code: 238,
        codeName: 'NotImplemented',
      },
    )
    expect(reason(error)).to.equal('NotImplemented 238: create: support for field "validator" is not implemented yet')
  })
})

describe('MongoDB set-up, retention and state (real server)', function () {
  this.timeout(60_000)
  let mongo: TestMongo
  let store: MongoStore
  const target = () => ({
    uri: mongo.uri,
    dbName: mongo.dbName,
    collections: {request: 'request_logs', access: 'access_logs', event: 'event_logs', outbound: 'outbound_logs', app: 'app_logs'},
  })

  beforeEach(async function () {
    skipUnless(this, !!mongoServerUri(), 'no MongoDB server', {expectedInCi: true})
    mongo = await freshMongo('setup')
    store = await connectMongo(target())
  })
  afterEach(async () => {
    await store?.close()
    await mongo?.drop()
  })

  const collections = async () => (await mongo.client.db(mongo.dbName).listCollections().toArray()).map((c) => c.name).sort()

  it('--dry-run lists the commands and changes nothing', async () => {
    const r = await setupMongo(store, {dryRun: true, passwords: {}})
    expect(r.changed).to.equal(false)
    expect(r.steps.filter((s) => s.status === 'would create').map((s) => s.step)).to.include('collection request_logs')
    expect(r.commands.join('\n')).to.contain('db.createCollection("request_logs"').and.contain('db.access_logs.createIndexes(')
    expect(await collections()).to.deep.equal([])
  })

  it('creates collections and indexes, skips what the server lacks with its reason, and a second run changes nothing', async () => {
    const first = await setupMongo(store, {dryRun: false, passwords: {}})
    expect(first.changed).to.equal(true)
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
    for (const logType of ['request', 'access'] as const) {
      const have = await store.collection(logType).indexes()
      for (const w of indexesFor(logType))
        expect(
          have.some((i) => sameKey(i.key, w.key)),
          w.name,
        ).to.equal(true)
    }
    const byStep = (r: typeof first, prefix: string) => r.steps.filter((s) => s.step.startsWith(prefix))
    if (isFerretDb()) {
      // FerretDB 1.24 implements neither validators nor users and roles: each is skipped, saying why
      for (const s of byStep(first, 'validator'))
        expect(s, s.step)
          .to.include({status: 'skipped'})
          .and.have.property('note')
          .match(/^not supported by FerretDB/)
      for (const s of byStep(first, 'user'))
        expect(s, s.step)
          .to.include({status: 'skipped'})
          .and.have.property('note')
          .match(/CommandNotFound 59/)
      expect(byStep(first, 'validator')).to.have.length(LOG_TYPES.length)
    }
    const second = await setupMongo(store, {dryRun: false, passwords: {}})
    expect(second.changed).to.equal(false)
    expect(
      second.steps.every((s) => ['exists', 'skipped'].includes(s.status)),
      JSON.stringify(second.steps),
    ).to.equal(true)
    expect(second.credentials).to.deep.equal([])
    const state = await mongoState(store)
    expect(state.missing).to.equal(0)
    expect(state.collections.map((c) => c.indexes.every((i) => i.state === 'present'))).to.deep.equal(LOG_TYPES.map(() => true))
  })

  it('--mongo-ttl on a server without TTL indexes: a clear error, and nothing changed (FerretDB)', async function () {
    skipUnless(this, isFerretDb(), 'the server implements TTL indexes', {expectedInCi: false})
    const error = await setupMongo(store, {
      dryRun: false,
      passwords: {},
      ttlDays: {request: 90, access: 120, event: 365, outbound: 90, app: 30},
    }).catch((e: Error) => e)
    expect(error).to.be.instanceOf(Error)
    expect((error as Error).message).to.match(/does not support TTL indexes \(--mongo-ttl\).*Nothing was changed/)
    expect((error as unknown as {suggestions: string[]}).suggestions.join()).to.contain('audit-logs cleanup')
    expect(await collections()).to.deep.equal([])
    // after a normal set-up too: the time index exists, and turning it into a TTL index is refused alike
    await setupMongo(store, {dryRun: false, passwords: {}})
    const before = await store.collection('request').indexes()
    const again = await setupMongo(store, {
      dryRun: false,
      passwords: {},
      ttlDays: {request: 90, access: 120, event: 365, outbound: 90, app: 30},
    }).catch((e: Error) => e)
    expect((again as Error).message).to.match(/Nothing was changed/)
    expect(await store.collection('request').indexes()).to.deep.equal(before)
  })

  it('users: with authentication on, what the server refuses is skipped, not a failure (FerretDB)', async function () {
    skipUnless(this, isFerretDb(), 'a real MongoDB: users are created (proven by the driver docs only)', {expectedInCi: false})
    const auth = await startFerretDb({auth: {user: 'admin', password: 'pw-' + Math.random().toString(36).slice(2)}})
    const s = await connectMongo({...target(), uri: auth.uri})
    try {
      const r = await setupMongo(s, {dryRun: false, passwords: {}})
      const users = r.steps.filter((x) => x.step.startsWith('user'))
      expect(users).to.have.length(2)
      for (const u of users) expect(u.status).to.equal('skipped')
      expect(r.credentials).to.deep.equal([])
    } finally {
      await s.close()
      await auth.stop()
    }
  })

  describe('cleanup', () => {
    let records: Array<Record<string, unknown>>
    const older = () => records.filter((r) => String(r.created_at) < CUTOFF_90).length
    beforeEach(async () => {
      records = [...generateRecords({rows: 700, days: 180, seed: 7, now: NOW})]
      await store.collection('request').insertMany(records.map((r) => toDocument('request', r)))
    })

    it('--dry-run counts per collection and deletes nothing', async () => {
      const r = await cleanupMongo(store, {retention: [{logType: 'request', days: 90}], dryRun: true, batchSize: 50, now: NOW})
      expect(r.targets[0]).to.include({collection: 'request_logs', older: older(), deleted: 0, batches: 0, cutoff: CUTOFF_90})
      expect(r.totalDocuments).to.equal(older())
      expect(await store.collection('request').countDocuments()).to.equal(700)
    })

    it('deletes what is older than the cutoff in batches of batchSize, oldest first, and keeps the rest', async () => {
      const progress: number[] = []
      const r = await cleanupMongo(store, {
        retention: [{logType: 'request', days: 90}],
        dryRun: false,
        batchSize: 100,
        now: NOW,
        onProgress: (e) => progress.push(e.deleted),
      })
      const n = older()
      expect(n).to.be.greaterThan(250)
      expect(r.targets[0].deleted).to.equal(n)
      expect(r.targets[0].batches).to.equal(Math.floor(n / 100) + 1)
      expect(progress.slice(0, 3)).to.deep.equal([100, 200, 300])
      expect(await store.collection('request').countDocuments()).to.equal(700 - n)
      expect(await store.collection('request').countDocuments({created_at: {$lt: new Date(CUTOFF_90)}})).to.equal(0)
    })

    it('stops between batches when the signal aborts, and reports it', async () => {
      const controller = new AbortController()
      const r = await cleanupMongo(store, {
        retention: [{logType: 'request', days: 90}],
        dryRun: false,
        batchSize: 100,
        now: NOW,
        signal: controller.signal,
        onProgress: () => controller.abort(),
      })
      expect(r.interrupted).to.equal(true)
      expect(r.targets[0].deleted).to.equal(100)
      expect(await store.collection('request').countDocuments()).to.equal(600)
    })
  })
})
