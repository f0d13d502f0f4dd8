import {generateKeyPairSync} from 'node:crypto'
import {mkdtempSync, readFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {v7 as uuidv7} from 'uuid'
import {generateRecords} from '../../../src/generate/records.js'
import {mongoSink} from '../../../src/pipeline/sinks.js'
import {type MongoStore, connectMongo} from '../../../src/stores/mongo/connection.js'
import {type Doc, toDocument} from '../../../src/stores/mongo/documents.js'
import {INTEGRITY_COLLECTIONS, chainedOf, docHash} from '../../../src/stores/mongo/integrity.js'
import {setupMongo} from '../../../src/stores/mongo/setup.js'
import {mongoTarget} from '../../../src/stores/mongo/target.js'
import {mongoChainSource} from '../../../src/stores/mongo/verify.js'
import {insertLines} from '../../../src/stores/mongo/writer.js'
import type {IntegrityOptions} from '../../../src/stores/postgres/integrity.js'
import {verifyChainsOf} from '../../../src/stores/postgres/verify.js'
import {type TestMongo, freshMongo, mongoServerUri} from '../../helpers/mongo.js'
import {skipUnless} from '../../helpers/skip.js'

const {privateKey, publicKey} = generateKeyPairSync('ed25519')
const keyPem = privateKey.export({type: 'pkcs8', format: 'pem'}).toString()
const lines = (n: number, seed: number) => [...generateRecords({rows: n, days: 1, seed})].map((r) => Buffer.from(JSON.stringify(r)))

/** Records that make canonical forms go wrong (as test/stores/integrity.test.ts's for PostgreSQL), and keys MongoDB escapes. */
function hostile(): Array<Record<string, unknown>> {
  const base = {method: 'POST', path: '/x', scheme: 'https', host: 'h'}
  const at = (ms: number) => new Date(Date.now() - ms).toISOString()
  return [
    {
      ...base,
      id: uuidv7(),
      created_at: at(1),
      path: '/ünï/😀/\u0007',
      request_body: 'Zürich \u2028 \u{1F600} "quoted" \\ back',
      request_headers: {'x-b': '2', 'x-a': 'é', 'x.trace$id': 'dots', '%2E': 'percent'},
    },
    {...base, id: uuidv7(), created_at: '2026-12-01T10:00:00.123456+02:00', request_body: '', response_body: null, query: {}},
    {
      ...base,
      id: uuidv7(),
      created_at: at(3),
      extra: {z: {y: [1, 2.5, 1e21, -0, 2 ** 31, 2 ** 53 + 2], x: null}, a: 'b', big: 1.0000000000000002, nested: [{b: 1, a: 2}]},
      duration_ms: 0.1 + 0.2,
      status_code: 200,
    },
    {
      ...base,
      id: uuidv7(),
      created_at: at(4),
      request_headers: {'set-cookie': ['a=1', 'b=2'], empty: ''},
      flags: ['slow', 'suspicious'],
      ip: '2001:db8::1',
    },
    {...base, id: uuidv7(), created_at: at(5), request_body: null, ip: '10.0.0.1', user_id: '', duration_ms: 1e-7, flags: []},
    {...base, id: uuidv7(), created_at: at(6), request_body: 'lone \ud800 surrogate and \udc00 one'},
  ]
}

describe('integrity chain of the MongoDB store (real MongoDB-compatible server)', function () {
  this.timeout(120_000)
  let mongo: TestMongo
  let store: MongoStore
  const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-mchain-'))
  const options = (instance: string): IntegrityOptions => ({
    instance,
    keyPem,
    digestIntervalMs: 3_600_000,
    digestFile: path.join(dir, 'digests.jsonl'),
  })
  const target = () => mongoTarget({...defaults(), mongoUri: mongo.uri, mongoDbName: mongo.dbName})!
  const verify = () =>
    verifyChainsOf(mongoChainSource(store), {
      since: new Date(Date.now() - 3 * 86_400_000),
      publicKey,
      digestFile: path.join(dir, 'digests.jsonl'),
    })
  const batches = () => store.db.collection(INTEGRITY_COLLECTIONS.batches)

  before(async function () {
    skipUnless(this, !!mongoServerUri(), 'no MongoDB server', {expectedInCi: true})
    mongo = await freshMongo('mchain')
    store = await connectMongo(target())
    await setupMongo(store, {dryRun: false, passwords: {}})
  })
  after(async () => {
    await store?.close()
    await mongo?.drop()
  })

  it('a record hashes the same as its document read back from the server (canonical form: keys, dates, numbers, escapes, surrogates)', async () => {
    const docs = hostile().map((r) => toDocument('request', JSON.parse(JSON.stringify(r)) as Record<string, unknown>))
    const before = docs.map((d) => chainedOf(d))
    await store.collection('request').insertMany(docs)
    for (const [i, d] of docs.entries()) {
      const back = (await store.collection('request').findOne({_id: d._id}))!
      expect(docHash(back).toString('hex'), `record ${i}`).to.equal(before[i].h.toString('hex'))
      expect((back.created_at as Date).toISOString()).to.equal(before[i].at)
    }
    // and a change to any field, nested or derived, changes it
    const first = (await store.collection('request').findOne({_id: docs[0]._id}))!
    for (const change of [{user_id: 'mallory'}, {'request_headers.x-a': 'e'}, {_ip: '40a000001'}, {created_at: new Date(0)}]) {
      const changed = structuredClone(first) as Doc
      for (const [k, v] of Object.entries(change)) {
        const [a, b] = k.split('.')
        if (b) (changed[a] as Record<string, unknown>)[b] = v
        else changed[k] = v
      }
      expect(docHash(changed).equals(before[0].h), JSON.stringify(change)).to.equal(false)
    }
    await store.collection('request').deleteMany({_id: {$in: docs.map((d) => d._id)}})
  })

  it('the sink chains each batch (seq 1, 2, … linked), signs its first batch at once and its head at close (digests marked mongo), and verify is clean', async () => {
    const logs: string[] = []
    const sink = mongoSink(target(), options('m-a'), (m) => logs.push(m))
    const hostileLines = hostile().map((r) => Buffer.from(JSON.stringify(r)))
    try {
      const second = lines(15, 2)
      await sink.write(lines(20, 1))
      await sink.write([...second, ...hostileLines])
      await sink.write(second) // a replay: all duplicates, already chained: no new batch
      expect(sink.integrity?.()).to.deep.equal({chained: true, digestErrors: 0})
    } finally {
      await sink.close()
    }
    expect(logs.filter((l) => /OFF/.test(l))).to.deep.equal([])
    const rows = await batches().find({instance: 'm-a'}).sort({seq: 1}).toArray()
    expect(rows.map((b) => b.seq)).to.deep.equal([1, 2])
    expect(rows.map((b) => b.count)).to.deep.equal([20, 21])
    expect(rows[1].total).to.equal(41)
    expect(Buffer.from(rows[1].prev_hash.buffer).equals(Buffer.from(rows[0].hash.buffer))).to.equal(true)
    const digest = JSON.parse(readFileSync(path.join(dir, 'digests.jsonl'), 'utf8').trim().split('\n').at(-1)!)
    expect(JSON.parse(digest.body)).to.include({store: 'mongo', instance: 'm-a', seq: 2})
    // the first batch is signed at once (verify fails a chain no digest covers), the head at close
    const signed = await store.db.collection(INTEGRITY_COLLECTIONS.digests).find({instance: 'm-a'}).sort({seq: 1}).toArray()
    expect(signed.map((d) => d.seq)).to.deep.equal([1, 2])
    const report = await verify()
    expect(report.ok, JSON.stringify(report, null, 1)).to.equal(true)
    expect(report.instances[0]).to.include({instance: 'm-a', records: 41, headUnproven: false})
    expect(report.instances[0].digests.lastSignedSeq).to.equal(2)
  })

  it('records inserted but never chained (a crash between records and batch) are chained when the journal sends them again', async () => {
    const batch = lines(12, 3)
    await insertLines(store, 'request', batch) // the records, then the crash: no batch document
    const gap = await verify()
    expect(gap.ok).to.equal(false)
    expect(gap.inserted).to.have.length(12)
    const sink = mongoSink(target(), options('m-a'))
    try {
      await sink.write(batch) // the replay: all duplicates, none chained
    } finally {
      await sink.close()
    }
    const rows = await batches().find({instance: 'm-a'}).sort({seq: 1}).toArray()
    expect(rows.map((b) => b.seq)).to.deep.equal([1, 2, 3])
    expect(rows[2].count).to.equal(12)
    const report = await verify()
    expect(report.ok, JSON.stringify(report, null, 1)).to.equal(true)
  })

  it('two sinks with the same instance name never fork the chain: the second retries on the next seq', async () => {
    const a = mongoSink(target(), options('m-b'))
    const b = mongoSink(target(), options('m-b'))
    try {
      await a.write(lines(5, 10))
      await b.write(lines(5, 11)) // b reads the head a left
      await a.write(lines(5, 12)) // a's head is stale: seq 2 is taken, it reads the head again and writes 3
    } finally {
      await a.close()
      await b.close()
    }
    const rows = await batches().find({instance: 'm-b'}).sort({seq: 1}).toArray()
    expect(rows.map((r) => r.seq)).to.deep.equal([1, 2, 3])
    expect(rows.map((r) => r.total)).to.deep.equal([5, 10, 15])
    const report = await verify()
    const mb = report.instances.find((i) => i.instance === 'm-b')!
    expect(mb.badBatches).to.deep.equal([])
    expect(mb.gaps).to.deep.equal([])
  })

  it('without the integrity collections (setup-db not run): the records are written, the chain is off, said once', async () => {
    const other = await freshMongo('mchain_off')
    const logs: string[] = []
    const sink = mongoSink(mongoTarget({...defaults(), mongoUri: other.uri, mongoDbName: other.dbName})!, options('m-off'), (m) =>
      logs.push(m),
    )
    try {
      await sink.write(lines(10, 20))
      await sink.write(lines(10, 21))
      expect(await other.client.db(other.dbName).collection('request_logs').countDocuments()).to.equal(20)
      const off = logs.filter((l) => /integrity chain of instance "m-off" is OFF/.test(l))
      expect(off, logs.join('\n')).to.have.length(1)
      expect(off[0]).to.include('the collection integrity_batches does not exist')
      expect(off[0]).to.include('`audit-logs setup-db --store mongo`')
      expect(sink.integrity?.()).to.deep.include({chained: false, digestErrors: 0})
      expect(await other.client.db(other.dbName).listCollections({name: 'integrity_batches'}).toArray()).to.deep.equal([])
    } finally {
      await sink.close()
      await other.drop()
    }
  })

  it('setup-db is idempotent for the chain, and --dry-run shows the collections and the unique index it would make', async () => {
    const again = await setupMongo(store, {dryRun: false, passwords: {}})
    expect(again.steps.filter((s) => /integrity/.test(s.step)).map((s) => s.status)).to.deep.equal([
      'exists',
      'exists',
      'exists',
      'exists',
      'exists',
    ])
    const other = await freshMongo('mchain_dry')
    const s = await connectMongo(mongoTarget({...defaults(), mongoUri: other.uri, mongoDbName: other.dbName})!)
    try {
      const dry = await setupMongo(s, {dryRun: true, passwords: {}})
      expect(dry.commands.join('\n')).to.include('db.createCollection("integrity_batches")')
      expect(dry.commands.join('\n')).to.include(
        'db.integrity_batches.createIndex({"instance":1,"seq":1}, {"name":"instance_1_seq_1","unique":true})',
      )
      expect(await s.db.listCollections({name: 'integrity_batches'}).toArray()).to.deep.equal([])
    } finally {
      await s.close()
      await other.drop()
    }
  })
})

function defaults() {
  return {
    mongoRequestCollection: 'request_logs',
    mongoAccessCollection: 'access_logs',
    mongoEventCollection: 'event_logs',
    mongoOutboundCollection: 'outbound_logs',
    mongoAppCollection: 'app_logs',
  }
}
