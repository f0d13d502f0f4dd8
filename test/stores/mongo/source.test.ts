import {Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {expect} from 'chai'
import {parseFilter} from '../../../src/filters/parse.js'
import {generateRecords} from '../../../src/generate/records.js'
import {encoder} from '../../../src/render/encoders.js'
import type {MongoStore} from '../../../src/stores/mongo/connection.js'
import {type Doc, toDocument} from '../../../src/stores/mongo/documents.js'
import {MongoSource, refusesChangeStreams} from '../../../src/stores/mongo/source.js'
import {statsOfRecords} from '../../../src/stores/files/stats.js'
import {type LogType, type Row, columnsOf} from '../../../src/stores/source.js'
import {type TestMongo, freshMongo, isFerretDb, mongoServerUri} from '../../helpers/mongo.js'
import {skipUnless} from '../../helpers/skip.js'

const NOW = new Date('2026-11-24T12:00:00Z')

describe('MongoDB as a source of records (real MongoDB-compatible server)', function () {
  this.timeout(120_000)
  let mongo: TestMongo
  let source: MongoSource
  const records = [...generateRecords({rows: 300, days: 5, seed: 5, now: NOW, order: 'time'})]
  const access = [...generateRecords({rows: 50, days: 5, seed: 6, now: NOW, logType: 'access', order: 'time'})]
  Object.assign(records[7], {request_headers: {'x.trace$id': 'a', 'x%2E': 'b'}, user_id: '{"$gt": ""}'})
  const collection = (t: LogType) => mongo.client.db(mongo.dbName).collection<Doc>(t === 'access' ? 'access_logs' : 'request_logs')

  before(async function () {
    skipUnless(this, !!mongoServerUri(), 'no MongoDB server', {expectedInCi: true})
    mongo = await freshMongo('source')
    await collection('request').insertMany(records.map((r) => toDocument('request', r)))
    await collection('access').insertMany(access.map((r) => toDocument('access', r)))
    source = new MongoSource({collection} as MongoStore)
  })
  after(() => mongo?.drop())

  it('query: the records as the other stores give them, newest first (or oldest), at most the limit', async () => {
    const newest = await source.query(parseFilter({}), {limit: 10})
    expect(newest.map((r) => r.id)).to.deep.equal(
      records
        .slice(-10)
        .reverse()
        .map((r) => r.id),
    )
    expect(Object.keys(newest[0])).to.deep.equal(columnsOf('request')) // no _id, no derived field
    expect(newest[0].created_at).to.deep.equal(new Date(records.at(-1)!.created_at as string))
    const oldest = await source.query(parseFilter({logType: 'access'}), {limit: 3, order: 'oldest'})
    expect(oldest.map((r) => r.id)).to.deep.equal(access.slice(0, 3).map((r) => r.id))
  })

  it('user text that looks like an operator is matched as text', async () => {
    const found = await source.query(parseFilter({user: '{"$gt": ""}'}), {limit: 100})
    expect(found.map((r) => r.id)).to.deep.equal([records[7].id])
    expect(await source.query(parseFilter({user: '$where'}), {limit: 100})).to.deep.equal([])
  })

  it('get: a record of either log type by id, header names with . and $ intact', async () => {
    const a = await source.get(String(records[7].id))
    expect(a?.logType).to.equal('request')
    expect(a?.record.request_headers).to.deep.equal({'x.trace$id': 'a', 'x%2E': 'b'})
    expect((await source.get(String(access[3].id)))?.logType).to.equal('access')
    expect(await source.get('01a20cc4-2be0-720d-89d3-7a27694234dc')).to.equal(undefined)
  })

  it('export: every matching record from a cursor, newest first, through the encoders of every format', async () => {
    const f = parseFilter({status: '>=300'})
    const want = records
      .filter((r) => Number(r.status_code) >= 300)
      .reverse()
      .map((r) => r.id)
    for (const format of ['ndjson', 'csv', 'json', 'har'] as const) {
      const input = await source.export(f, format)
      if (!('rows' in input)) throw new Error('expected rows')
      let text = ''
      const out = new Writable({
        write(chunk, _e, done) {
          text += chunk
          done()
        },
      })
      await pipeline(input.rows, encoder(format, columnsOf('request'), '0.0.0'), out)
      const ids =
        format === 'ndjson'
          ? text
              .trim()
              .split('\n')
              .map((l) => JSON.parse(l).id)
          : format === 'json'
            ? JSON.parse(text).map((r: Row) => r.id)
            : format === 'har'
              ? JSON.parse(text).log.entries.map((e: {_id: string}) => e._id)
              : text
                  .trim()
                  .split('\r\n')
                  .slice(1)
                  .map((l) => l.split(',')[0])
      expect(ids, format).to.deep.equal(want)
    }
    expect(want.length).to.be.greaterThan(20)
  })

  it('tail: where the server has no change streams (FerretDB), new records by polling, the filter applied', async function () {
    skipUnless(this, isFerretDb(), 'the server has change streams: the polling fallback is tested with FerretDB', {expectedInCi: false})
    const controller = new AbortController()
    const seen: Row[] = []
    const following = (async () => {
      for await (const r of source.follow(parseFilter({status: '5xx'}), {intervalMs: 100, signal: controller.signal})) {
        seen.push(r)
        if (seen.length === 1) controller.abort()
      }
    })()
    await new Promise((r) => setTimeout(r, 300))
    const [ok, failed] = [...generateRecords({rows: 2, days: 0, seed: 9})]
    Object.assign(ok, {status_code: 200, created_at: new Date().toISOString()})
    Object.assign(failed, {status_code: 503, created_at: new Date().toISOString()})
    await collection('request').insertMany([toDocument('request', ok), toDocument('request', failed)])
    await following
    expect(seen.map((r) => r.id)).to.deep.equal([failed.id])
  })

  it('tail: a refused change stream (not a replica set, 40573) falls back to polling; other errors are not hidden', async () => {
    expect(refusesChangeStreams({code: 238})).to.equal(true)
    expect(refusesChangeStreams({code: 40573})).to.equal(true)
    expect(refusesChangeStreams({code: 13})).to.equal(false)
    const row = {...records[0], created_at: new Date()}
    const stub = (code: number) => {
      let polled = 0
      const watch = () => ({
        tryNext: () => Promise.reject(Object.assign(new Error(`refused ${code}`), {code})),
        close: () => Promise.resolve(),
      })
      const find = () => ({
        limit: () => ({
          toArray: async () => (polled++ === 0 ? [toDocument('request', {...row, created_at: row.created_at.toISOString()})] : []),
        }),
      })
      return {store: {collection: () => ({watch, find})} as unknown as MongoStore, polls: () => polled}
    }
    const refused = stub(40573)
    const controller = new AbortController()
    const got: Row[] = []
    for await (const r of new MongoSource(refused.store).follow(parseFilter({}), {intervalMs: 50, signal: controller.signal})) {
      got.push(r)
      controller.abort()
    }
    expect(got.map((r) => r.id)).to.deep.equal([records[0].id])
    const unauthorized = stub(13)
    let error: unknown
    try {
      for await (const _r of new MongoSource(unauthorized.store).follow(parseFilter({}), {
        intervalMs: 50,
        signal: new AbortController().signal,
      }));
    } catch (e) {
      error = e
    }
    expect((error as Error)?.message).to.equal('refused 13')
    expect(unauthorized.polls()).to.equal(0)
  })

  it('stats of nothing: zeros and no percentiles, as PostgreSQL gives them', async () => {
    expect(await source.stats(parseFilter({status: '599'}), {bucket: 'day', top: 10})).to.deep.equal({
      total: 0,
      byClass: {'1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0},
      errorRate: 0,
      durationMs: {p50: null, p95: null, p99: null},
      slow: 0,
      suspicious: 0,
      topPaths: [],
      topUsers: [],
      topIps: [],
      slowPaths: [],
      failingPaths: [],
      histogram: [],
    })
  })

  it('stats: the slowest and the most failing paths and the histogram by the minute, as the files source computes them', async () => {
    // the same records through the files' one pass (test/filters/filters.test.ts compares both with PostgreSQL)
    const lines = (set: Row[]) =>
      (async function* () {
        for (const r of set) yield JSON.parse(JSON.stringify(r)) as Row
      })()
    // until NOW: the tail test above adds records of its own
    const until = NOW.toISOString()
    for (const [input, set] of [
      [{since: new Date(NOW.getTime() - 6 * 3_600_000).toISOString(), until}, records],
      [{status: '>=500', until}, records],
      [{logType: 'access', until}, access],
    ] as const) {
      const f = parseFilter(input)
      for (const options of [{bucket: 'minute', top: 5} as const, {bucket: 'day', top: 1000} as const]) {
        const want = await statsOfRecords(lines(set), f, options)
        const got = await source.stats(f, options)
        expect(got, `${JSON.stringify(input)} by ${options.bucket}`).to.deep.include({
          slowPaths: want.slowPaths,
          failingPaths: want.failingPaths,
          histogram: want.histogram,
        })
        expect(got.slowPaths.length).to.be.greaterThan(0)
      }
    }
    expect((await source.stats(parseFilter({until}), {bucket: 'day', top: 1000})).failingPaths.length).to.be.greaterThan(0)
  })
})
