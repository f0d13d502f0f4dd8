import {expect} from 'chai'
import pg from 'pg'
import {generateRecords} from '../../src/generate/records.js'
import {clientConfig} from '../../src/stores/postgres/connection.js'
import {listPartitions, repair} from '../../src/stores/postgres/partitions.js'
import {cleanup} from '../../src/stores/postgres/retention.js'
import {writeLines, writeRecords} from '../../src/stores/postgres/writer.js'
import {type TestDatabase, count, freshDatabase} from '../helpers/db.js'

const NOW = new Date('2026-11-24T12:00:00Z')
const CUTOFF_90 = '2026-08-26T12:00:00.000Z'

describe('cleanup (real PostgreSQL)', () => {
  let db: TestDatabase
  let records: Array<Record<string, unknown>>
  beforeEach(async () => {
    db = await freshDatabase({migrated: true})
    records = [...generateRecords({rows: 3000, days: 180, seed: 5, now: NOW})]
    await writeRecords(db.client, 'request', records)
    await repair(db.client, 'month')
  })
  afterEach(() => db.drop())

  const older = () => records.filter((r) => String(r.created_at) < CUTOFF_90).length

  it('dry run reports per partition exactly what would go and changes nothing', async () => {
    const report = await cleanup(db.client, {retention: [{logType: 'request', days: 90}], dryRun: true, batchSize: 100, now: NOW})
    expect(report.totalRows).to.equal(older())
    expect(report.actions.filter((a) => a.action === 'drop').map((a) => a.partition)).to.deep.equal([
      'request_logs_p20260501',
      'request_logs_p20260601',
      'request_logs_p20260701',
    ])
    expect(report.actions.filter((a) => a.action === 'delete').map((a) => a.partition)).to.deep.equal(['request_logs_p20260801'])
    for (const a of report.actions) expect(a.bytes).to.be.greaterThan(0)
    expect(await count(db.client, 'request_logs')).to.equal(3000)
  })

  it('drops whole expired partitions and deletes the older rows of the boundary one in batches', async () => {
    const batches: number[] = []
    const report = await cleanup(db.client, {
      retention: [{logType: 'request', days: 90}],
      dryRun: false,
      batchSize: 100,
      now: NOW,
      onProgress: (e) => e.action === 'delete' && batches.push(e.rows),
    })
    expect(report.totalRows).to.equal(older())
    expect(await count(db.client, 'request_logs')).to.equal(3000 - older())
    expect(await count(db.client, 'request_logs', `created_at < '${CUTOFF_90}'`)).to.equal(0)
    const names = (await listPartitions(db.client, ['request_logs'])).map((p) => p.name)
    expect(names).to.not.include('request_logs_p20260701')
    expect(names).to.include('request_logs_p20260801')
    // every batch held at most batchSize rows
    for (let i = 1; i < batches.length; i++) expect(batches[i] - batches[i - 1]).to.be.at.most(100)
    expect(batches.length).to.be.greaterThan(1)
  })

  it('also clears expired rows from the default partition', async () => {
    const old = [...generateRecords({rows: 50, days: 1, seed: 6, now: new Date('2020-03-01T00:00:00Z')})]
    await writeRecords(db.client, 'request', old)
    await cleanup(db.client, {retention: [{logType: 'request', days: 90}], dryRun: false, batchSize: 1000, now: NOW})
    expect(await count(db.client, 'request_logs_default')).to.equal(0)
  })

  it('stops between batches when interrupted, leaving a consistent table', async () => {
    const controller = new AbortController()
    let batches = 0
    const report = await cleanup(db.client, {
      retention: [{logType: 'request', days: 130}],
      dryRun: false,
      batchSize: 10,
      now: NOW,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.action === 'delete' && ++batches === 3) controller.abort()
      },
    })
    expect(report.interrupted).to.equal(true)
    const left = await count(db.client, 'request_logs')
    expect(left).to.equal(3000 - report.totalRows)
    // rerunning finishes the job
    await cleanup(db.client, {retention: [{logType: 'request', days: 130}], dryRun: false, batchSize: 10, now: NOW})
    expect(await count(db.client, 'request_logs', `created_at < '2026-07-17T12:00:00Z'`)).to.equal(0)
  })

  it("runs beside a writer without losing the writer's rows", async () => {
    const writer = new pg.Client(clientConfig(db.url))
    await writer.connect()
    try {
      const fresh = [...generateRecords({rows: 2000, days: 10, seed: 99, now: NOW})].map((r) => JSON.stringify(r))
      const writing = (async () => {
        for (let i = 0; i < fresh.length; i += 100) await writeLines(writer, 'request', fresh.slice(i, i + 100))
      })()
      await cleanup(db.client, {retention: [{logType: 'request', days: 90}], dryRun: false, batchSize: 50, now: NOW})
      await writing
      expect(await count(db.client, 'request_logs')).to.equal(3000 - older() + 2000)
    } finally {
      await writer.end()
    }
  })
})
