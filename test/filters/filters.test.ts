import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {generateRecords} from '../../src/generate/records.js'
import {type Filter, type FilterInput, parseFilter} from '../../src/filters/parse.js'
import {toPredicate} from '../../src/filters/predicate.js'
import {toSql} from '../../src/filters/sql.js'
import {FilesSource} from '../../src/stores/files/source.js'
import {statsOfRecords} from '../../src/stores/files/stats.js'
import type {MongoStore} from '../../src/stores/mongo/connection.js'
import {type Doc, toDocument} from '../../src/stores/mongo/documents.js'
import {MongoSource} from '../../src/stores/mongo/source.js'
import {repair} from '../../src/stores/postgres/partitions.js'
import {PostgresSource} from '../../src/stores/postgres/source.js'
import {computeStats} from '../../src/stores/postgres/stats.js'
import {type LogType, type Row, type Stats, type StatsOptions, columnsOf} from '../../src/stores/source.js'
import {writeRecords} from '../../src/stores/postgres/writer.js'
import {type TestDatabase, count, freshDatabase} from '../helpers/db.js'
import {type TestMongo, freshMongo, mongoServerUri} from '../helpers/mongo.js'
import {skipUnless} from '../helpers/skip.js'

const NOW = new Date('2026-11-24T12:00:00Z')
const error = (input: FilterInput): string => {
  try {
    parseFilter(input, NOW)
  } catch (e) {
    return (e as Error).message
  }
  throw new Error(`accepted ${JSON.stringify(input)}`)
}

describe('filter language: parsing', () => {
  it('reads every status form', () => {
    expect(parseFilter({status: '500'}).status).to.deep.equal({any: [{op: 'eq', value: 500}], not: []})
    expect(parseFilter({status: '>=400'}).status!.any).to.deep.equal([{op: 'ge', value: 400}])
    expect(parseFilter({status: '<300'}).status!.any).to.deep.equal([{op: 'lt', value: 300}])
    expect(parseFilter({status: '4xx'}).status!.any).to.deep.equal([{op: 'range', from: 400, to: 499}])
    expect(parseFilter({status: '400-499'}).status!.any).to.deep.equal([{op: 'range', from: 400, to: 499}])
    expect(parseFilter({status: '!=200'}).status).to.deep.equal({any: [], not: [200]})
    expect(parseFilter({status: '401,403'}).status!.any).to.deep.equal([
      {op: 'eq', value: 401},
      {op: 'eq', value: 403},
    ])
  })

  it('reads times, durations, paths, addresses and flags', () => {
    expect(parseFilter({since: '24h'}, NOW).since!.toISOString()).to.equal('2026-11-23T12:00:00.000Z')
    expect(parseFilter({since: '7d', until: '15m'}, NOW).until!.toISOString()).to.equal('2026-11-24T11:45:00.000Z')
    expect(parseFilter({since: '2026-11-01'}).since!.toISOString()).to.equal('2026-11-01T00:00:00.000Z')
    expect(parseFilter({minDuration: '500ms', maxDuration: '2s'})).to.include({minDurationMs: 500, maxDurationMs: 2000})
    expect(parseFilter({path: '/api/*'}).path).to.deep.equal({regex: '^/api/[^/]*$', prefix: '/api/'})
    expect(parseFilter({path: '/api/**'}).path).to.deep.equal({regex: '^/api/.*$', prefix: '/api/'})
    expect(parseFilter({path: '~^/api/v[12]/'}).path).to.deep.equal({regex: '^/api/v[12]/', prefix: ''})
    expect(parseFilter({ip: '10.0.0.0/8'}).ip).to.deep.equal({address: '10.0.0.0', bits: 8, family: 4})
    expect(parseFilter({flag: 'suspicious'}).flag).to.deep.equal({name: 'suspicious', prefix: true})
    expect(parseFilter({logType: 'gunicorn'}).logType).to.equal('access')
  })

  it('quotes a bad expression and lists the accepted forms', () => {
    expect(error({status: '45'}))
      .to.contain('--status "45"')
      .and.contain('4xx')
    expect(error({status: '500-400'})).to.contain('400-499')
    expect(error({status: '>=4xx'})).to.contain('Accepted')
    expect(error({method: 'GET;DROP'})).to.contain('--method "GET;DROP"')
    expect(error({path: 'api/*'})).to.contain('glob')
    expect(error({path: '~(unclosed'})).to.contain('regex is invalid')
    expect(error({ip: '10.0.0.0/33'})).to.contain('CIDR')
    expect(error({ip: 'localhost'})).to.contain('--ip "localhost"')
    expect(error({since: 'yesterday'})).to.contain('15m, 24h, 7d')
    expect(error({minDuration: '5 seconds'})).to.contain('250ms')
    expect(error({flag: 'evil'})).to.contain('upstream_error')
    expect(error({logType: 'nginx'})).to.contain('gunicorn')
    expect(error({logType: 'access', search: 'x'})).to.contain('--search applies to request, outbound and app logs; access logs take')
    expect(error({logType: 'event', status: '500'})).to.contain(
      '--status applies to request, access and outbound logs; event logs take --action',
    )
    expect(error({logType: 'request', actor: '42'})).to.contain('--actor applies to event logs; request logs take')
    expect(error({logType: 'event', action: 'lower case'})).to.contain('upper-case words')
    expect(error({logType: 'event', target: 'shop.Order:'})).to.contain('TYPE or TYPE:ID')
    expect(error({logType: 'event', severity: 'LOUD'})).to.contain('INFO, WARNING, ERROR, SECURITY, PERFORMANCE')
    expect(error({since: '1h', until: '2h'})).to.contain('must be before')
  })

  it('never puts user text into the SQL text', () => {
    const hostile = "x' OR '1'='1"
    const {text, values} = toSql(
      parseFilter({user: hostile, path: "/'; drop table request_logs; --", search: "%' OR 1=1 --", method: 'GET,POST'}, NOW),
    )
    expect(text).to.not.contain('drop').and.not.contain("'1'='1").and.not.contain('OR 1=1')
    expect(values).to.include(hostile)
  })
})

describe('filter language: PostgreSQL, MongoDB and the files agree (real PostgreSQL, real MongoDB-compatible server)', function () {
  this.timeout(180_000)
  let db: TestDatabase
  let mongo: TestMongo | undefined
  let logDir: string
  // a data set that FerretDB (the tests' MongoDB-compatible server, about 0.25 ms per document and pipeline) reads in good time
  const requests = [...generateRecords({rows: 1500, days: 30, seed: 77, now: NOW})]
  const access = [...generateRecords({rows: 600, days: 30, seed: 78, now: NOW, logType: 'access'})]
  // a few rows with the shapes filters look for
  Object.assign(requests[0], {flags: ['suspicious:sqli'], request_body: 'id=1 UNION SELECT password', path: '/api/v2/payments/9/refund'})
  Object.assign(requests[1], {flags: ['upstream_error'], status_code: 502, user_id: "x' or '1'='1"})
  // user text that a MongoDB query would run as an operator if it were ever a key or a whole value
  Object.assign(requests[2], {user_id: '{"$gt": ""}', request_body: '{"$where": "sleep(1000)"}'})
  Object.assign(requests[3], {user_id: '$where'})
  Object.assign(requests[4], {status_code: null}) // no status (an exchange that never got one): no status filter selects it
  Object.assign(requests[5], {duration_ms: null})
  // IPv6 clients, and paths beyond ASCII
  const v6 = ['2001:db8::1', '2001:db8::1', '2001:db8:0:1::5', '2001:db9::7', '::1', 'fe80::1']
  v6.forEach((ip, i) => Object.assign(requests[10 + i], {ip}))
  v6.forEach((ip, i) => Object.assign(access[10 + i], {ip}))
  const unicode = ['/files/héllo/日本', '/files/héllo/😀', '/files/héllo/日本', '/files/hello/x']
  unicode.forEach((path, i) => Object.assign(requests[20 + i], {path}))
  unicode.forEach((path, i) => Object.assign(access[20 + i], {url: i === 0 ? path + '?q=é' : path}))
  // a path failing more than once (the failing paths' order is by their number of 5xx), and a slow one among them
  for (let k = 0; k < 4; k++) Object.assign(requests[30 + k], {path: '/api/v2/payments', status_code: 500 + (k % 4)})
  for (let k = 0; k < 3; k++) Object.assign(access[30 + k], {url: `/api/v2/payments?try=${k}`, status_code: 503})
  Object.assign(requests[34], {path: '/files/héllo/😀', status_code: 504, duration_ms: 9999.95})
  // outbound calls: the request records' fields that outbound records have, CONNECT tunnels without a path or a status among them
  const outbound = [...generateRecords({rows: 300, days: 30, seed: 79, now: NOW})].map((r, i): Row => ({
    ...Object.fromEntries(columnsOf('outbound').map((c) => [c, r[c] ?? null])),
    host: i % 3 ? 'api.example.net' : 'pay.example.org',
    tunnel: i % 25 === 0,
    ...(i % 25 === 0 ? {path: null, status_code: null} : {}),
  }))
  // one time per record, so that newest-first is one order in every store
  for (const set of [requests, access, outbound]) {
    const seen = new Set<number>()
    for (const r of set) {
      let at = Date.parse(r.created_at as string)
      while (seen.has(at)) at++
      seen.add(at)
      r.created_at = new Date(at).toISOString()
    }
  }
  // bounds exactly on records: since includes its record, until excludes its own
  const [from, to] = [requests[100].created_at as string, requests[200].created_at as string].sort()

  before(async () => {
    db = await freshDatabase({migrated: true})
    await writeRecords(db.client, 'request', requests)
    await writeRecords(db.client, 'access', access)
    await writeRecords(db.client, 'outbound', outbound)
    await repair(db.client, 'month')
    logDir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-filters-files-'))
    writeFileSync(path.join(logDir, 'requests.jsonl'), requests.map((r) => JSON.stringify({log_type: 'request', ...r}) + '\n').join(''))
    writeFileSync(path.join(logDir, 'access.jsonl'), access.map((r) => JSON.stringify({log_type: 'access', ...r}) + '\n').join(''))
    writeFileSync(path.join(logDir, 'outbound.jsonl'), outbound.map((r) => JSON.stringify({log_type: 'outbound', ...r}) + '\n').join(''))
    if (mongoServerUri()) {
      mongo = await freshMongo('filters')
      const m = mongo.client.db(mongo.dbName)
      await m.collection<Doc>('request_logs').insertMany(requests.map((r) => toDocument('request', r)))
      await m.collection<Doc>('access_logs').insertMany(access.map((r) => toDocument('access', r)))
      await m.collection<Doc>('outbound_logs').insertMany(outbound.map((r) => toDocument('outbound', r)))
    }
  })
  after(async () => {
    await db.drop()
    await mongo?.drop()
    if (logDir) rmSync(logDir, {recursive: true, force: true})
  })

  const mongoSource = () =>
    new MongoSource({
      collection: (t: LogType) => mongo!.client.db(mongo!.dbName).collection<Doc>(`${t}_logs`),
    } as MongoStore)

  const linesStats = (source: Row[], f: Filter, options: StatsOptions) =>
    statsOfRecords(
      (async function* () {
        for (const r of source) yield JSON.parse(JSON.stringify(r))
      })(),
      f,
      options,
    )
  // the top lists compare as sets, the cut-off one (addresses) by its counts; the slowest and failing paths in their order
  const comparable = (x: Stats) => ({
    ...x,
    topPaths: [...x.topPaths].sort((a, b) => (a.path < b.path ? -1 : 1)),
    topUsers: [...x.topUsers].sort((a, b) => (a.user < b.user ? -1 : 1)),
    topIps: x.topIps.map((t) => t.count),
  })

  const cases: FilterInput[] = [
    {status: '>=400', since: '7d'},
    {status: '4xx'},
    {status: '401,403'},
    {status: '!=200'},
    {status: '!=200', method: 'POST,PUT'},
    {status: '200-204', until: '3d'},
    {status: '<300', method: 'DELETE'},
    {method: 'OPTIONS'},
    {user: '7', since: '20d'},
    {path: '/api/v1/*'},
    {path: '/api/**'},
    {path: '~^/api/v[12]/orders'},
    {path: '/files/héllo/*'},
    {path: '/files/héllo/日本'},
    {path: '~^/files/h.llo/'},
    {ip: '10.1.0.0/16'},
    {ip: '10.2.216.6'},
    {ip: '2001:db8::/32'},
    {ip: '2001:db8::1'},
    {ip: '::1'},
    {ip: '::/0'},
    {minDuration: '200ms', maxDuration: '2s'},
    {minDuration: '1s'},
    {maxDuration: '30ms'},
    {since: from, until: to},
    {since: '2026-11-10', until: '2026-11-11T12:30:00Z'},
    {flag: 'slow'},
    {flag: 'suspicious'},
    {flag: 'suspicious:sqli'},
    {flag: 'upstream_error'},
    {search: 'union select'},
    {search: '"ok":false'},
    {search: '$where'},
    {user: "x' or '1'='1"},
    {user: '{"$gt": ""}'},
    {user: '$where'},
    {path: "/'; drop table request_logs; --"},
    {status: '5xx', method: 'GET,POST', path: '/api/**', since: '25d', minDuration: '100ms'},
    {status: '4xx', method: 'GET,POST', ip: '10.0.0.0/9', maxDuration: '100ms'},
    {flag: 'suspicious', status: '2xx', method: 'GET'},
    {logType: 'access', status: '5xx'},
    {logType: 'gunicorn', path: '/api/v1/orders/*', since: '10d'},
    {logType: 'access', path: '/files/héllo/日本'},
    {logType: 'access', ip: '2001:db8::/32', status: '!=404'},
    // select nothing (as the injection path above)
    {status: '599'},
    {search: '.*'},
    {user: '{"$ne": null}'},
  ]
  const EMPTY = new Set([
    '{"status":"599"}',
    '{"search":".*"}',
    '{"user":"{\\"$ne\\": null}"}',
    '{"path":"/\'; drop table request_logs; --"}',
  ])
  for (const [i, input] of cases.entries()) {
    it(`${JSON.stringify(input)}`, async function () {
      const f = parseFilter(input, NOW)
      const table = f.logType === 'access' ? 'access_logs' : 'request_logs'
      const where = toSql(f)
      const {rows} = await db.client.query(`SELECT id::text FROM ${table} WHERE ${where.text} ORDER BY id`, where.values)
      const fromSql = rows.map((r) => r.id)
      const source = f.logType === 'access' ? access : requests
      const fromFiles = source
        .filter(toPredicate(f))
        .map((r) => String(r.id))
        .sort()
      expect(fromSql).to.deep.equal(fromFiles)
      // a case that selects nothing proves little: all but the few meant to select none select some rows
      if (EMPTY.has(JSON.stringify(input))) expect(fromSql, 'rows selected').to.deep.equal([])
      else expect(fromSql.length, 'rows selected').to.be.greaterThan(0)
      expect(fromSql.length, 'rows left out').to.be.lessThan(source.length)
      // and stats gives the same figures from either source (the records as the JSONL files hold them)
      const options = {bucket: 'day', top: 1000} as const
      const fromDb = await computeStats(db.client, f, options)
      const fromLines = await linesStats(source, f, options)
      expect(comparable(fromLines)).to.deep.equal(comparable(fromDb))
      // every path listed (so the lists compare whole), slowest and failing ones in their order, ties by path included
      expect(fromDb.slowPaths.length).to.be.lessThan(1000)
      if (fromDb.byClass['5xx']) expect(fromDb.failingPaths.length).to.be.greaterThan(0)
      // by the minute, and the path lists cut off among equal figures
      const minutely = {bucket: 'minute', top: 3} as const
      expect(comparable(await linesStats(source, f, minutely)), 'files by minute').to.deep.equal(
        comparable(await computeStats(db.client, f, minutely)),
      )

      // the three sources, as the commands read them: the same records in the same order, newest first and oldest first
      skipUnless(this, !!mongo, 'no MongoDB server', {expectedInCi: true})
      const sources = [new PostgresSource(db.client), mongoSource(), new FilesSource(logDir)]
      const thorough = i % 3 === 0 // oldest first and the hourly histogram for a third of the cases (each read costs FerretDB a pass)
      for (const order of thorough ? (['newest', 'oldest'] as const) : (['newest'] as const)) {
        const [pgIds, mongoIds, fileIds] = await Promise.all(
          sources.map(async (s) => (await s.query(f, {limit: 10_000, order})).map((r) => String(r.id))),
        )
        expect(mongoIds, `MongoDB, ${order} first`).to.deep.equal(pgIds)
        expect(fileIds, `files, ${order} first`).to.deep.equal(pgIds)
        expect([...pgIds].sort()).to.deep.equal(fromSql)
      }
      // MongoDB's stats equal PostgreSQL's exactly, top lists in their order included (ties in byte order in both)
      expect(await sources[1].stats(f, options), 'MongoDB stats by day').to.deep.equal(fromDb)
      const hourly = {bucket: 'hour', top: 3} as const
      if (thorough)
        expect(await sources[1].stats(f, hourly), 'MongoDB stats by hour, top 3').to.deep.equal(await computeStats(db.client, f, hourly))
      const byMinute = {bucket: 'minute', top: 2} as const
      // a sixth of the cases (each read costs FerretDB a pass)
      if (i % 6 === 1)
        expect(await sources[1].stats(f, byMinute), 'MongoDB stats by minute, top 2').to.deep.equal(
          await computeStats(db.client, f, byMinute),
        )
    })
  }

  it('stats of outbound calls: the same figures from the three sources (no user, address or flags; tunnels without a path)', async function () {
    skipUnless(this, !!mongo, 'no MongoDB server', {expectedInCi: true})
    for (const input of [{logType: 'outbound'}, {logType: 'outbound', status: '>=400', since: '20d'}] as FilterInput[]) {
      const f = parseFilter(input, NOW)
      for (const options of [{bucket: 'day', top: 1000} as const, {bucket: 'minute', top: 2} as const]) {
        const fromDb = await computeStats(db.client, f, options)
        expect(await mongoSource().stats(f, options), `MongoDB ${JSON.stringify(input)} ${options.bucket}`).to.deep.equal(fromDb)
        expect(await new FilesSource(logDir).stats(f, options), `files ${JSON.stringify(input)} ${options.bucket}`).to.deep.equal(fromDb)
        expect(fromDb).to.deep.include({topUsers: [], topIps: [], slow: 0, suspicious: 0})
        expect(fromDb.slowPaths.length).to.equal(options.top === 2 ? 2 : fromDb.topPaths.length)
        expect(fromDb.failingPaths.length).to.be.greaterThan(0)
      }
    }
  })

  it('export through COPY keeps user text out of the SQL and selects the same rows', async () => {
    const {prepareCopyExport} = await import('../../src/stores/postgres/reader.js')
    const {columnsOf} = await import('../../src/stores/source.js')
    const hostile = "x' or '1'='1"
    const sql = await prepareCopyExport(db.client, parseFilter({user: hostile, status: '4xx'}, NOW), columnsOf('request'), 'csv')
    expect(sql).to.not.contain(hostile).and.not.contain("'1'='1")
    const {rows} = await db.client.query(sql.replace(/^COPY \((.*)\) TO STDOUT.*$/s, '$1'))
    expect(rows.map((r) => r.id)).to.deep.equal(
      requests.filter(toPredicate(parseFilter({user: hostile, status: '4xx'}, NOW))).map((r) => r.id),
    )
  })

  it('injection attempts return no extra rows and change nothing', async () => {
    const f = parseFilter({user: "x' or '1'='1"}, NOW)
    const where = toSql(f)
    const {rows} = await db.client.query(`SELECT count(*)::int AS n FROM request_logs WHERE ${where.text}`, where.values)
    expect(rows[0].n).to.equal(1) // only the row whose user id is literally that text
    const g = toSql(parseFilter({path: "/'; drop table request_logs; --"}, NOW))
    await db.client.query(`SELECT count(*) FROM request_logs WHERE ${g.text}`, g.values)
    expect(await count(db.client, 'request_logs')).to.equal(requests.length)
  })
})

describe('CSV record endings', () => {
  it('become CRLF outside quotes only, across chunk boundaries', async () => {
    const {crlfRecords} = await import('../../src/render/csv.js')
    const t = crlfRecords()
    const out: Buffer[] = []
    t.on('data', (c: Buffer) => out.push(c))
    t.write(Buffer.from('a,"x\ny"\nb,"he said ""'))
    t.write(Buffer.from('hi""\nthere"\n'))
    t.end()
    await new Promise((r) => t.on('end', r))
    expect(Buffer.concat(out).toString()).to.equal('a,"x\ny"\r\nb,"he said ""hi""\nthere"\r\n')
  })
})

describe('path and url longer than a btree entry (real PostgreSQL)', function () {
  this.timeout(60_000)
  let db: TestDatabase
  // 3,000 characters of 2-byte UTF-8: about 6 KB, more than the 2,704 bytes a btree entry may take
  const long = '/files/' + 'é'.repeat(3000)
  const records = [...generateRecords({rows: 200, days: 3, seed: 91, now: NOW})]
  const access = [...generateRecords({rows: 50, days: 3, seed: 92, now: NOW, logType: 'access'})]
  before(async () => {
    db = await freshDatabase({migrated: true})
    Object.assign(records[0], {path: long + '/a'})
    Object.assign(records[1], {path: long + '/b'})
    Object.assign(access[0], {url: long + '?q=' + 'x'.repeat(5000)})
    await writeRecords(db.client, 'request', records)
    await writeRecords(db.client, 'access', access)
    await repair(db.client, 'month')
  })
  after(() => db.drop())

  it('are stored whole, and a filter whose literal prefix is longer than the indexed part still decides on the whole value', async () => {
    for (const [path, want] of [
      [long + '/a', [records[0].id]],
      [long + '/*', [records[0].id, records[1].id]],
      ['/files/**', [records[0].id, records[1].id]],
    ] as const) {
      const where = toSql(parseFilter({path}, NOW))
      const {rows} = await db.client.query(`SELECT id::text, path FROM request_logs WHERE ${where.text} ORDER BY id`, where.values)
      expect(rows.map((r) => r.id)).to.deep.equal([...want].map(String).sort())
      expect(rows.every((r) => r.path.startsWith(long))).to.equal(true)
    }
    const where = toSql(parseFilter({path: long, logType: 'access'}, NOW))
    const {rows} = await db.client.query(`SELECT url FROM access_logs WHERE ${where.text}`, where.values)
    expect(rows.map((r) => r.url)).to.deep.equal([access[0].url])
  })

  it('a path prefix is served by the path index', async () => {
    const where = toSql(parseFilter({path: '/api/v1/*'}, NOW))
    await db.client.query('SET enable_seqscan = off')
    const plan = (await db.client.query(`EXPLAIN SELECT id FROM request_logs WHERE ${where.text}`, where.values)).rows
      .map((r) => r['QUERY PLAN'])
      .join('\n')
    await db.client.query('RESET enable_seqscan')
    expect(plan, plan).to.match(/Index Cond: \(\("left"\(path, 600\) ~>=~/)
  })
})
