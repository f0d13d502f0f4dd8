import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {parseFilter} from '../../src/filters/parse.js'
import {generateRecords} from '../../src/generate/records.js'
import {FilesSource} from '../../src/stores/files/source.js'
import type {MongoStore} from '../../src/stores/mongo/connection.js'
import {type Doc, toDocument} from '../../src/stores/mongo/documents.js'
import {MongoSource} from '../../src/stores/mongo/source.js'
import {repair} from '../../src/stores/postgres/partitions.js'
import {PostgresSource} from '../../src/stores/postgres/source.js'
import {selectRecords} from '../../src/stores/postgres/sql/reader.js'
import {writeRecords} from '../../src/stores/postgres/writer.js'
import {type Cursor, type Order, type RecordSource, type Row, columnsOf, cursorOf, positionOf} from '../../src/stores/source.js'
import {type TestDatabase, freshDatabase} from '../helpers/db.js'
import {type TestMongo, freshMongo, mongoServerUri} from '../helpers/mongo.js'
import {skipUnless} from '../helpers/skip.js'

const NOW = new Date('2026-11-24T12:00:00Z')

describe('cursors', () => {
  it('cursorOf: the same cursor from a row of any source (a Date or an ISO text)', () => {
    const id = '01a20cc4-2be0-720d-89d3-7a27694234dc'
    const want = {created_at: '2026-11-24T11:59:59.123Z', id}
    expect(cursorOf({id, created_at: new Date('2026-11-24T11:59:59.123Z')})).to.deep.equal(want)
    expect(cursorOf({id, created_at: '2026-11-24T11:59:59.123Z'})).to.deep.equal(want)
    expect(cursorOf({id, created_at: '2026-11-24T12:59:59.123+01:00'})).to.deep.equal(want)
  })

  it('positionOf: a time and a record id, or a usage error naming what is wrong (a cursor comes from a client)', () => {
    const id = '01A20CC4-2BE0-720D-89D3-7A27694234DC'
    expect(positionOf({created_at: '2026-11-24T11:59:59.123Z', id})).to.deep.equal({
      at: new Date('2026-11-24T11:59:59.123Z'),
      id: id.toLowerCase(),
    })
    expect(() => positionOf({created_at: 'yesterday', id})).to.throw(/after: created_at "yesterday" is not an ISO time/)
    expect(() => positionOf({created_at: '2026-02-30T25:00:00Z', id})).to.throw(/is not an ISO time/)
    expect(() => positionOf({created_at: '2026-11-24T11:59:59.123Z', id: "x' OR '1'='1"})).to.throw(/after: id .* is not a record id/)
  })
})

describe('keyset paging: PostgreSQL, MongoDB and the files give every record once, in order (real servers)', function () {
  this.timeout(120_000)
  let db: TestDatabase
  let mongo: TestMongo | undefined
  let logDir: string
  let sources: RecordSource[]
  // 25 records, 11 of them in three shared milliseconds (ties broken by id), and one a millisecond after a shared one
  const records = [...generateRecords({rows: 25, days: 1, seed: 31, now: NOW})]
  const shared = ['2026-11-24T10:00:00.500Z', '2026-11-24T08:30:00.001Z', '2026-11-23T20:00:00.999Z']
  records.forEach((r, i) => {
    if (i < 4) r.created_at = shared[0]
    else if (i < 8) r.created_at = shared[1]
    else if (i < 11) r.created_at = shared[2]
    else if (i === 11) r.created_at = '2026-11-24T10:00:00.501Z'
  })
  const position = (r: Row) => ({at: Date.parse(String(r.created_at)), id: String(r.id)})
  const oldestFirst = [...records]
    .sort((a, b) => position(a).at - position(b).at || (position(a).id < position(b).id ? -1 : 1))
    .map((r) => String(r.id))

  before(async function () {
    db = await freshDatabase({migrated: true})
    await writeRecords(db.client, 'request', records)
    await repair(db.client, 'month')
    logDir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-paging-'))
    // in no order: the files source sorts
    const shuffled = [...records].sort((a, b) => (String(a.request_body_size) + a.id < String(b.request_body_size) + b.id ? -1 : 1))
    writeFileSync(path.join(logDir, 'requests.jsonl'), shuffled.map((r) => JSON.stringify({log_type: 'request', ...r}) + '\n').join(''))
    sources = [new PostgresSource(db.client), new FilesSource(logDir)]
    if (mongoServerUri()) {
      mongo = await freshMongo('paging')
      const collection = mongo.client.db(mongo.dbName).collection<Doc>('request_logs')
      await collection.insertMany(records.map((r) => toDocument('request', r)))
      sources.push(new MongoSource({collection: () => collection} as unknown as MongoStore))
    }
  })
  after(async () => {
    await db?.drop()
    await mongo?.drop()
    if (logDir) rmSync(logDir, {recursive: true, force: true})
  })

  const pages = async (source: RecordSource, order: Order, size: number, filter = parseFilter({})) => {
    const out: string[][] = []
    let after: Cursor | undefined
    for (;;) {
      const page = await source.query(filter, {limit: size, order, ...(after ? {after} : {})})
      if (page.length === 0) return out
      out.push(page.map((r) => String(r.id)))
      after = cursorOf(page.at(-1)!)
    }
  }

  for (const order of ['newest', 'oldest'] as const)
    it(`pages of 7, ${order} first: every record exactly once, in (created_at, id) order`, async function () {
      skipUnless(this, !!mongo, 'no MongoDB server', {expectedInCi: true})
      const want = order === 'oldest' ? oldestFirst : [...oldestFirst].reverse()
      expect(sources.map((s) => s.kind)).to.deep.equal(['postgres', 'files', 'mongo'])
      for (const source of sources) {
        const got = await pages(source, order, 7)
        expect(
          got.map((p) => p.length),
          source.kind,
        ).to.deep.equal([7, 7, 7, 4])
        expect(got.flat(), source.kind).to.deep.equal(want)
        // one page of all of them is the same order
        expect(
          (await source.query(parseFilter({}), {limit: 100, order})).map((r) => String(r.id)),
          source.kind,
        ).to.deep.equal(want)
      }
    })

  it('a page boundary inside a shared millisecond, a filter beside the cursor, and a cursor past the end', async function () {
    skipUnless(this, !!mongo, 'no MongoDB server', {expectedInCi: true})
    const f = parseFilter({method: 'GET'})
    const matching = new Set(records.filter((r) => r.method === 'GET').map((r) => String(r.id)))
    const want = oldestFirst.filter((id) => matching.has(id))
    expect(want.length).to.be.within(10, 24)
    for (const source of sources) {
      // pages of 1 and 2: every boundary falls once between two records of one millisecond
      for (const size of [1, 2]) expect((await pages(source, 'oldest', size, f)).flat(), `${source.kind}, ${size}`).to.deep.equal(want)
      expect((await pages(source, 'newest', 3, f)).flat(), source.kind).to.deep.equal([...want].reverse())
      // the cursor of the second record of a shared millisecond: the other two of it, then the rest
      const second = records.find(
        (r) => r.id === oldestFirst.filter((id) => records.find((x) => x.id === id)!.created_at === shared[0])[1],
      )!
      const after = cursorOf(second)
      const next = await source.query(parseFilter({}), {limit: 3, order: 'oldest', after})
      const from = oldestFirst.indexOf(String(second.id))
      expect(
        next.map((r) => String(r.id)),
        source.kind,
      ).to.deep.equal(oldestFirst.slice(from + 1, from + 4))
      expect(await source.query(parseFilter({}), {limit: 3, order: 'oldest', after: cursorOf({...second, created_at: NOW})})).to.deep.equal(
        [],
      )
      // an upper-case id is the same position
      expect(
        (await source.query(parseFilter({}), {limit: 3, order: 'oldest', after: {...after, id: after.id.toUpperCase()}})).map((r) => r.id),
      ).to.deep.equal(next.map((r) => r.id))
      // a bad cursor is refused by every source alike
      let refused: unknown
      await source.query(parseFilter({}), {limit: 3, after: {...after, id: 'not-an-id'}}).catch((e) => (refused = e))
      expect((refused as Error)?.message, source.kind).to.match(/after: id "not-an-id" is not a record id/)
    }
  })

  it('PostgreSQL: the next page is read from the created_at index, starting at the cursor', async () => {
    const q = selectRecords(parseFilter({}), columnsOf('request'), 7, 'newest', cursorOf(records[0]))
    await db.client.query('SET enable_seqscan = off')
    const plan = (await db.client.query(`EXPLAIN ${q.text}`, q.values)).rows.map((r) => r['QUERY PLAN']).join('\n')
    await db.client.query('RESET enable_seqscan')
    expect(plan, plan).to.match(/Index Cond: \(created_at <= /)
    // ordered by the table's id (uuid), not the select list's id::text, which PostgreSQL sorted again
    expect(plan, plan).not.to.match(/Sort Key: .*::text/)
  })
})
