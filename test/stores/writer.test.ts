import {expect} from 'chai'
import pg from 'pg'
import {v7 as uuidv7} from 'uuid'
import {generateRecords} from '../../src/generate/records.js'
import {clientConfig} from '../../src/stores/postgres/connection.js'
import {premake} from '../../src/stores/postgres/partitions.js'
import {Chain} from '../../src/stores/postgres/integrity.js'
import {writeLines, writeRecords} from '../../src/stores/postgres/writer.js'
import {type TestDatabase, count, freshDatabase} from '../helpers/db.js'

describe('the writer (real PostgreSQL)', () => {
  let db: TestDatabase
  before(async () => {
    db = await freshDatabase({migrated: true})
    await premake(db.client, {interval: 'month', ahead: 1})
  })
  after(() => db.drop())
  beforeEach(() => db.client.query('TRUNCATE request_logs, access_logs'))

  it('appends a batch and keeps every field', async () => {
    const records = [...generateRecords({rows: 500, days: 3, seed: 7})]
    const result = await writeRecords(db.client, 'request', records)
    expect(result).to.deep.equal({received: 500, inserted: 500, duplicates: 0})
    const sample = records[123]
    const {rows} = await db.client.query('SELECT * FROM request_logs WHERE id = $1', [sample.id])
    const row = rows[0]
    expect(row.created_at.toISOString()).to.equal(sample.created_at)
    expect(row.path).to.equal(sample.path)
    expect(row.status_code).to.equal(sample.status_code)
    expect(row.request_headers).to.deep.equal(sample.request_headers)
    expect(row.flags).to.deep.equal(sample.flags)
    expect(row.ip).to.equal(sample.ip)
    expect(row.duration_ms).to.equal(sample.duration_ms)
  })

  it('is idempotent on id: a batch written twice leaves one copy of each row', async () => {
    const lines = [...generateRecords({rows: 300, days: 2, seed: 8})].map((r) => JSON.stringify(r))
    await writeLines(db.client, 'request', lines)
    const again = await writeLines(db.client, 'request', [...lines, ...lines.slice(0, 10)])
    expect(again.inserted).to.equal(0)
    expect(again.duplicates).to.equal(310)
    expect(await count(db.client, 'request_logs')).to.equal(300)
  })

  it('reuses its batch buffer on one connection without mixing batches: a big batch, then smaller ones and a line larger than the buffer', async () => {
    const withBody = (seed: number, rows: number, size: number) =>
      [...generateRecords({rows, days: 1, seed})].map((r): Record<string, unknown> => ({
        ...r,
        request_body: `${seed}:`.padEnd(size, String.fromCharCode(97 + (seed % 26))),
      }))
    const batches = [withBody(21, 400, 3000), withBody(22, 7, 500), withBody(23, 2, 700_000), withBody(24, 150, 2000)]
    for (const batch of batches) expect((await writeRecords(db.client, 'request', batch)).inserted).to.equal(batch.length)
    const {rows} = await db.client.query('SELECT id, request_body FROM request_logs')
    const stored = new Map(rows.map((r) => [r.id, r.request_body]))
    const all = batches.flat()
    expect(stored.size).to.equal(all.length)
    for (const r of all) expect(stored.get(r.id), String(r.id)).to.equal(r.request_body)
  })

  it('writes access records to access_logs', async () => {
    const records = [...generateRecords({rows: 50, days: 1, seed: 9, logType: 'access'})]
    await writeRecords(db.client, 'access', records)
    expect(await count(db.client, 'access_logs')).to.equal(50)
  })

  it('stores awkward text exactly: quotes, backslashes, newlines, control bytes, emoji; NUL becomes U+FFFD', async () => {
    const id = uuidv7()
    const body = 'a "quoted" \\ back\\slash\nnew line\ttab \x01\x02 emoji 🎉 , ; |'
    await writeRecords(db.client, 'request', [
      {id, created_at: new Date().toISOString(), method: 'POST', path: '/x', request_body: body, response_body: 'nul\u0000here'},
    ])
    const {rows} = await db.client.query('SELECT request_body, response_body FROM request_logs WHERE id = $1', [id])
    expect(rows[0].request_body).to.equal(body)
    expect(rows[0].response_body).to.equal('nul\ufffdhere')
    // the same, given as journal bytes (as the shipper does), among lines long enough to fill several COPY chunks
    const ids = Array.from({length: 60}, () => uuidv7())
    const lines = ids.map((i, k) =>
      Buffer.from(
        JSON.stringify({
          id: i,
          created_at: new Date().toISOString(),
          method: 'POST',
          path: '/b',
          request_body: k === 7 ? body : 'x'.repeat(10_000),
          response_body: k === 7 ? 'nul\u0000here' : null,
        }),
      ),
    )
    expect((await writeLines(db.client, 'request', lines)).inserted).to.equal(60)
    const got = (await db.client.query('SELECT request_body, response_body FROM request_logs WHERE id = $1', [ids[7]])).rows[0]
    expect(got).to.deep.equal({request_body: body, response_body: 'nul\ufffdhere'})
  })

  it('stores what PostgreSQL would refuse as JSON: a lone surrogate (as JSON.stringify writes it) becomes U+FFFD, as string or bytes', async () => {
    const [a, b] = [uuidv7(), uuidv7()]
    const line = (id: string) =>
      JSON.stringify({
        id,
        created_at: new Date().toISOString(),
        method: 'GET',
        path: '/s',
        user_id: 'u\ud800',
        extra: {note: 'cut \udc00 pair 😀'},
      })
    await writeLines(db.client, 'request', [line(a), Buffer.from(line(b))])
    const {rows} = await db.client.query('SELECT user_id, extra FROM request_logs WHERE id = ANY($1) ORDER BY id', [[a, b]])
    expect(rows).to.deep.equal([0, 1].map(() => ({user_id: 'u\ufffd', extra: {note: 'cut \ufffd pair 😀'}})))
    // chained, as bytes among clean lines: the batch is sent as it is, refused, and sent again made safe, all of it
    // chained once (the refused attempt's transaction left nothing)
    const ids = Array.from({length: 5}, () => uuidv7())
    const chained = ids.map((id, k) =>
      Buffer.from(k === 2 ? line(id) : JSON.stringify({id, created_at: new Date().toISOString(), method: 'GET', path: '/c'})),
    )
    expect((await writeLines(db.client, 'request', chained, new Chain('writer-escapes'))).inserted).to.equal(5)
    const batches = await db.client.query(`SELECT count, ids::text[] AS ids FROM integrity_batches WHERE instance = 'writer-escapes'`)
    expect(batches.rows).to.deep.equal([{count: 5, ids}])
    expect((await db.client.query('SELECT user_id FROM request_logs WHERE id = $1', [ids[2]])).rows[0].user_id).to.equal('u\ufffd')
  })

  it('routes rows whose period has no partition into the default partition, never refusing them', async () => {
    const records = [...generateRecords({rows: 100, days: 1, seed: 10, now: new Date('2020-01-15T00:00:00Z')})]
    await writeRecords(db.client, 'request', records)
    expect(await count(db.client, 'request_logs_default')).to.equal(100)
  })

  it('fails a batch as a whole on a bad record, leaving nothing half-written', async () => {
    const good = [...generateRecords({rows: 5, days: 1, seed: 11})].map((r) => JSON.stringify(r))
    let error: Error | undefined
    try {
      await writeLines(db.client, 'request', [
        ...good,
        JSON.stringify({id: uuidv7(), created_at: new Date().toISOString(), method: 'GET', path: '/x', ip: 'not-an-ip'}),
      ])
    } catch (e) {
      error = e as Error
    }
    expect(error?.message).to.match(/inet/)
    expect(await count(db.client, 'request_logs')).to.equal(0)
    // and the client is usable again
    expect((await writeLines(db.client, 'request', good)).inserted).to.equal(5)
  })

  it('works as the writer role, which may only INSERT', async () => {
    const role = `${db.name}_w`
    await db.client.query(`CREATE ROLE "${role}" LOGIN PASSWORD 'w-pass-123'`)
    await db.client.query(`GRANT CONNECT ON DATABASE "${db.name}" TO "${role}"`) // no TEMPORARY: the writer needs no temporary table
    await db.client.query(`GRANT USAGE ON SCHEMA public TO "${role}"`)
    await db.client.query(`GRANT INSERT ON request_logs, access_logs TO "${role}"`)
    const u = new URL(db.url)
    u.username = role
    u.password = 'w-pass-123'
    const writer = new pg.Client(clientConfig(u.toString()))
    await writer.connect()
    try {
      const lines = [...generateRecords({rows: 20, days: 1, seed: 12})].map((r) => JSON.stringify(r))
      expect((await writeLines(writer, 'request', lines)).inserted).to.equal(20)
      expect((await writeLines(writer, 'request', lines)).inserted).to.equal(0)
      let error: Error | undefined
      try {
        await writer.query('SELECT count(*) FROM request_logs')
      } catch (e) {
        error = e as Error
      }
      expect(error?.message).to.match(/permission denied/)
    } finally {
      await writer.end()
      await db.client.query(`DROP OWNED BY "${role}"; DROP ROLE "${role}"`)
    }
  })
})

describe('the writer over several connections (real PostgreSQL)', () => {
  let db: TestDatabase
  const others: pg.Client[] = []
  before(async () => {
    db = await freshDatabase({migrated: true})
    for (let i = 0; i < 2; i++) {
      const c = new pg.Client(clientConfig(db.url))
      await c.connect()
      others.push(c)
    }
  })
  after(async () => {
    for (const c of others) await c.end()
    await db.drop()
  })

  it('writes every batch once, even when batches overlap', async () => {
    const {writeBatchesConcurrently} = await import('../../src/stores/postgres/writer.js')
    const lines = [...generateRecords({rows: 2000, days: 5, seed: 21})].map((r) => JSON.stringify(r))
    const batches = []
    for (let i = 0; i < lines.length; i += 250) batches.push(lines.slice(i, i + 250))
    batches.push(lines.slice(0, 300), lines.slice(1700)) // replays, racing the originals
    const result = await writeBatchesConcurrently(others, 'request', batches)
    expect(result.received).to.equal(2600)
    expect(result.inserted).to.equal(2000)
    expect(await count(db.client, 'request_logs')).to.equal(2000)
  })
})
