import {expect} from 'chai'
import {generateRecords} from '../../src/generate/records.js'
import {
  TABLES,
  defaultPartitionRows,
  ensurePartitions,
  listPartitions,
  premake,
  repair,
  uncovered,
} from '../../src/stores/postgres/partitions.js'
import {writeRecords} from '../../src/stores/postgres/writer.js'
import {type TestDatabase, count, freshDatabase} from '../helpers/db.js'

const NOW = new Date('2026-11-24T12:00:00Z')

describe('partitions (real PostgreSQL)', () => {
  let db: TestDatabase
  beforeEach(async () => {
    db = await freshDatabase({migrated: true})
  })
  afterEach(() => db.drop())

  it('premakes the current period and N ahead for both tables, once', async () => {
    const created = await premake(db.client, {interval: 'month', ahead: 3, now: NOW})
    expect(created.map((p) => p.name)).to.deep.equal(
      TABLES.flatMap((t) => ['20261101', '20261201', '20270101', '20270201'].map((d) => `${t}_p${d}`)),
    )
    expect(await premake(db.client, {interval: 'month', ahead: 3, now: NOW})).to.deep.equal([])
    const list = await listPartitions(db.client, ['request_logs'])
    expect(list.map((p) => [p.name, p.isDefault, p.from, p.to])).to.deep.equal([
      ['request_logs_default', true, null, null],
      ['request_logs_p20261101', false, '2026-11-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z'],
      ['request_logs_p20261201', false, '2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
      ['request_logs_p20270101', false, '2027-01-01T00:00:00.000Z', '2027-02-01T00:00:00.000Z'],
      ['request_logs_p20270201', false, '2027-02-01T00:00:00.000Z', '2027-03-01T00:00:00.000Z'],
    ])
  })

  it('makes daily and weekly partitions', async () => {
    await premake(db.client, {interval: 'week', ahead: 1, now: NOW})
    await premake(db.client, {interval: 'day', ahead: 0, now: new Date('2026-12-15T00:00:00Z')})
    const names = (await listPartitions(db.client, ['access_logs'])).map((p) => p.name)
    expect(names).to.deep.equal(['access_logs_default', 'access_logs_p20261123', 'access_logs_p20261130', 'access_logs_p20261215'])
  })

  it('moves rows waiting in the default partition into a partition when it is created', async () => {
    const records = [...generateRecords({rows: 400, days: 20, seed: 3, now: NOW})]
    await writeRecords(db.client, 'request', records)
    expect((await defaultPartitionRows(db.client)).request_logs).to.equal(400)
    const created = await premake(db.client, {interval: 'month', ahead: 0, now: NOW})
    const inNovember = records.filter((r) => String(r.created_at) >= '2026-11-01').length
    expect(created.find((p) => p.table === 'request_logs')?.movedRows).to.equal(inNovember)
    expect(await count(db.client, 'request_logs_p20261101')).to.equal(inNovember)
    expect(await count(db.client, 'request_logs_default')).to.equal(400 - inNovember)
    expect(await count(db.client, 'request_logs')).to.equal(400)
  })

  it('repair creates the partitions that rows in the default partition belong to', async () => {
    const records = [...generateRecords({rows: 1000, days: 100, seed: 4, now: NOW})]
    await writeRecords(db.client, 'request', records)
    const created = await repair(db.client, 'month')
    expect(created.map((p) => p.name)).to.deep.equal([
      'request_logs_p20260801',
      'request_logs_p20260901',
      'request_logs_p20261001',
      'request_logs_p20261101',
    ])
    expect(created.reduce((n, p) => n + p.movedRows, 0)).to.equal(1000)
    expect(await defaultPartitionRows(db.client)).to.deep.equal(Object.fromEntries(TABLES.map((t) => [t, 0])))
    expect(await count(db.client, 'request_logs')).to.equal(1000)
    // the moved rows still answer by primary key through the parent
    const {rows} = await db.client.query('SELECT id FROM request_logs WHERE id = $1 AND created_at = $2', [
      records[5].id,
      records[5].created_at,
    ])
    expect(rows).to.have.length(1)
  })

  it('leaves a range alone when a partition of another interval already holds all of it', async () => {
    await premake(db.client, {interval: 'month', ahead: 0, now: NOW})
    const created = await ensurePartitions(db.client, [{from: new Date('2026-11-23T00:00:00Z'), to: new Date('2026-11-30T00:00:00Z')}])
    expect(created).to.deep.equal([])
  })

  it('after a change of interval, fills only what the old partitions leave of a period (a week across a month end)', async () => {
    await premake(db.client, {interval: 'month', ahead: 0, now: NOW}) // November only
    const week = {from: new Date('2026-11-30T00:00:00Z'), to: new Date('2026-12-07T00:00:00Z')}
    const created = await ensurePartitions(db.client, [week], {tables: ['request_logs']})
    expect(created.map((p) => [p.name, p.from, p.to])).to.deep.equal([
      ['request_logs_p20261201', '2026-12-01T00:00:00.000Z', '2026-12-07T00:00:00.000Z'],
    ])
    // a record of the week's last day goes to that partition, not the default one
    await db.client.query(`INSERT INTO request_logs (id, created_at, method, path, status_code, instance)
      VALUES (gen_random_uuid(), '2026-12-06T10:00:00Z', 'GET', '/x', 200, 'test')`)
    expect(await count(db.client, 'request_logs_p20261201')).to.equal(1)
    expect(await count(db.client, 'request_logs_default')).to.equal(0)
    // the week is held whole now, by the two together; so is a week across two partitions that touch
    expect(await ensurePartitions(db.client, [week], {tables: ['request_logs']})).to.deep.equal([])
    const parts = await listPartitions(db.client, ['request_logs'])
    expect(uncovered(parts, 'request_logs', week.from, week.to)).to.deep.equal([])
    expect(uncovered(parts, 'request_logs', week.from, new Date('2026-12-09T00:00:00Z'))).to.deep.equal([
      {from: new Date('2026-12-07T00:00:00Z'), to: new Date('2026-12-09T00:00:00Z')},
    ])
  })

  it('dry run reports what it would create and creates nothing', async () => {
    const created = await premake(db.client, {interval: 'month', ahead: 1, now: NOW, dryRun: true})
    expect(created).to.have.length(2 * TABLES.length)
    expect(await listPartitions(db.client)).to.have.length(TABLES.length) // the default partitions
  })
})
