import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {v7 as uuidv7} from 'uuid'
import {generateRecords} from '../../src/generate/records.js'
import {JournalWriter} from '../../src/pipeline/journal.js'
import {Shipper, deadLetterFile} from '../../src/pipeline/shipper.js'
import {mongoSink} from '../../src/pipeline/sinks.js'
import {fromDocument, ipKey, ipRange, toDocument} from '../../src/stores/mongo/documents.js'
import type {MongoTarget} from '../../src/stores/mongo/target.js'
import {freePort} from '../../src/util/process.js'
import {type TestMongo, freshMongo, isFerretDb, mongoServerUri, tcpRelay} from '../helpers/mongo.js'
import {skipUnless} from '../helpers/skip.js'

const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), `audit-logs-${p}-`))
const targetOf = (m: TestMongo, uri = m.uri): MongoTarget => ({
  uri,
  dbName: m.dbName,
  collections: {request: 'request_logs', access: 'access_logs', event: 'event_logs', outbound: 'outbound_logs', app: 'app_logs'},
})

describe('MongoDB documents', () => {
  it('keep header names and JSON keys with ".", "$", "%" and NUL intact, dates as BSON dates, and read back as the record', () => {
    const record = {
      log_type: 'request',
      id: uuidv7(),
      created_at: '2026-03-04T05:06:07.089Z',
      method: 'POST',
      path: '/a.b/$c',
      query: {'a.b': '1', $where: 'x', '%2E': 'literal'},
      request_headers: {'x.trace$id': 'v', 'x-a%2Eb': 'pct', 'nul\u0000key': 'n'},
      extra: {nested: {$gt: {'deep.er': [1, {$in: 2}]}}},
      ip: '2001:db8::1',
      status_code: 201,
      flags: ['slow'],
    }
    const doc = toDocument('request', record)
    const keys = (v: unknown): string[] =>
      v && typeof v === 'object' && !(v instanceof Date) ? Object.entries(v).flatMap(([k, x]) => [k, ...keys(x)]) : []
    expect(
      keys(doc).filter((k) => /[.$\0]/.test(k)),
      'keys a server may refuse',
    ).to.deep.equal([])
    expect(doc._id).to.equal(record.id)
    expect(doc.created_at).to.deep.equal(new Date(record.created_at))
    expect(doc._hour).to.deep.equal(new Date('2026-03-04T05:00:00.000Z'))
    const row = fromDocument('request', doc)
    expect(row).to.include({id: record.id, method: 'POST', path: '/a.b/$c', ip: '2001:db8::1', status_code: 201})
    expect(row.query).to.deep.equal(record.query)
    expect(row.request_headers).to.deep.equal(record.request_headers)
    expect(row.extra).to.deep.equal(record.extra)
    expect(row).not.to.have.any.keys('_ip', '_path', '_hour', '_id', 'log_type')
  })

  it('address keys order addresses within a family, so a CIDR range is a range of keys (IPv4 and IPv6)', () => {
    const inRange = (ip: string, cidr: string) => {
      const [a, b] = cidr.split('/')
      const r = ipRange(a, Number(b))
      const k = ipKey(ip)!
      return k >= r.from && k <= r.to
    }
    expect(inRange('10.1.2.3', '10.0.0.0/8')).to.equal(true)
    expect(inRange('11.0.0.0', '10.0.0.0/8')).to.equal(false)
    expect(inRange('192.168.1.255', '192.168.1.0/24')).to.equal(true)
    expect(inRange('192.168.2.0', '192.168.1.0/24')).to.equal(false)
    expect(inRange('10.0.0.1', '10.0.0.0/31')).to.equal(true)
    expect(inRange('10.0.0.2', '10.0.0.0/31')).to.equal(false)
    expect(inRange('2001:db8:ffff::1', '2001:db8::/32')).to.equal(true)
    expect(inRange('2001:db9::', '2001:db8::/32')).to.equal(false)
    expect(inRange('::ffff:10.0.0.1', '10.0.0.0/8'), 'IPv4-mapped stays IPv6, as in PostgreSQL').to.equal(false)
    expect(inRange('10.0.0.1', '::/0')).to.equal(false)
    expect(ipKey('not-an-ip')).to.equal(undefined)
  })
})

describe('the MongoDB sink (real server)', function () {
  this.timeout(60_000)
  let m: TestMongo
  before(async function () {
    skipUnless(this, !!mongoServerUri(), 'no MongoDB server for the tests')
    m = await freshMongo()
  })
  after(() => m?.drop())

  it('writes every record once, keeps what the server refuses in the dead-letter file, and a replay leaves one copy', async () => {
    const dir = tmp('mongo-sink')
    const w = new JournalWriter(dir, `ms-${process.pid}`)
    const requests = [...generateRecords({rows: 300, days: 2, seed: 41})].map((r) => JSON.stringify({log_type: 'request', ...r}))
    const access = [...generateRecords({rows: 200, days: 2, seed: 42, logType: 'access'})].map((r) =>
      JSON.stringify({log_type: 'access', ...r}),
    )
    const now = new Date().toISOString()
    const refused = [
      '{"log_type":"request","id":"' + uuidv7() + '","created_at":"' + now + '","method":"GET","pa', // a damaged line: not JSON
      JSON.stringify({log_type: 'request', id: uuidv7(), created_at: 'yesterday', method: 'GET', path: '/bad-date'}),
      // a value FerretDB refuses (infinity: JSON's 1e400) and MongoDB stores: refused by the server, per document
      `{"log_type":"request","id":"${uuidv7()}","created_at":"${now}","method":"POST","path":"/infinite","duration_ms":1e400}`,
    ]
    const lines = [
      ...requests.slice(0, 100),
      refused[0],
      ...access.slice(0, 100),
      refused[2],
      ...requests.slice(100),
      refused[1],
      ...access.slice(100),
    ]
    for (const line of lines) w.append(line)
    w.close()
    const logs: string[] = []
    const shipper = new Shipper(dir, mongoSink(targetOf(m)), {batchLines: 128, log: (msg) => logs.push(msg)})
    shipper.start()
    expect(await shipper.drain(40_000)).to.equal(true)
    await shipper.stop()
    const col = (n: string) => m.client.db(m.dbName).collection(n)
    const refusedByServer = isFerretDb() ? 1 : 0
    expect(await col('request_logs').countDocuments()).to.equal(301 - refusedByServer)
    expect(await col('access_logs').countDocuments()).to.equal(200)
    expect(shipper.stats).to.include({written: lines.length - 2 - refusedByServer, rejected: 2 + refusedByServer})
    const kept = readFileSync(deadLetterFile(dir, 'mongo'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(kept.map((k) => k.record?.path ?? 'damaged')).to.have.members([
      'damaged',
      '/bad-date',
      ...(refusedByServer ? ['/infinite'] : []),
    ])
    if (refusedByServer) expect(kept.find((k) => k.record?.path === '/infinite').error).to.match(/^MongoDB 2: .*infinity/)
    for (const k of kept) expect(k).to.include({sink: 'mongo'}).and.to.have.property('error').that.is.a('string')

    // a replay of everything (a checkpoint lost): duplicates are not failures, and each record stays once
    rmSync(path.join(dir, 'checkpoints'), {recursive: true, force: true})
    rmSync(path.join(dir, 'dead-letter'), {recursive: true, force: true})
    const again = new Shipper(dir, mongoSink(targetOf(m)), {batchLines: 128, log: () => {}})
    again.start()
    expect(await again.drain(40_000)).to.equal(true)
    await again.stop()
    expect(again.stats).to.include({written: lines.length - 2 - refusedByServer, rejected: 2 + refusedByServer, failures: 0})
    expect(await col('request_logs').countDocuments()).to.equal(301 - refusedByServer)
    expect(await col('access_logs').countDocuments()).to.equal(200)
  })

  it('a server that goes away after the sink connected: the write fails (insertMany reports it as a bulk error with no write errors), nothing counts as written', async () => {
    const relay = await tcpRelay(m.uri)
    const sink = mongoSink(targetOf(m, relay.uri))
    try {
      const lines = [...generateRecords({rows: 20, days: 1, seed: 44})].map((r) => Buffer.from(JSON.stringify({log_type: 'request', ...r})))
      await sink.write(lines.slice(0, 10))
      await relay.stop()
      let failed: unknown
      await sink.write(lines.slice(10)).catch((error) => (failed = error))
      expect(failed, 'a write to a server that is gone').to.be.instanceOf(Error)
      await relay.start()
      await sink.write(lines.slice(10))
      expect(
        await m.client
          .db(m.dbName)
          .collection('request_logs')
          .countDocuments({_id: {$in: lines.map((l) => JSON.parse(l.toString()).id)}}),
      ).to.equal(20)
    } finally {
      await sink.close()
      await relay.close()
    }
  })

  it('a server that does not answer is retried, never dead-lettered', async () => {
    const dir = tmp('mongo-sink-retry')
    const w = new JournalWriter(dir, `mr-${process.pid}`)
    for (const r of generateRecords({rows: 10, days: 1, seed: 43})) w.append(JSON.stringify({log_type: 'request', ...r}))
    w.close()
    const shipper = new Shipper(dir, mongoSink(targetOf(m, `mongodb://127.0.0.1:${await freePort()}/`)), {log: () => {}})
    shipper.start()
    const end = Date.now() + 20_000
    while (shipper.stats.retried < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
    await shipper.stop()
    expect(shipper.stats.retried).to.be.greaterThan(0)
    expect(shipper.stats).to.include({written: 0, rejected: 0})
    expect(shipper.stats.lastError).to.match(/Cannot connect to MongoDB/)
  })
})
