import {randomUUID} from 'node:crypto'
import {expect} from 'chai'
import {ensurePartitions} from '../../src/stores/postgres/partitions.js'
import {type TestDatabase, count, freshDatabase} from '../helpers/db.js'
import {type RunningServer, request, startRun, until} from '../helpers/run-server.js'
import {type Upstream, startUpstream} from '../helpers/upstream.js'
import {metric, periodsDone} from '../helpers/maintenance.js'

const INTERVAL_MS = 4000

/**
 * A period between the first and the last done is left undone only while an earlier period's work
 * was still running through it (at the background priority, on a busy host, the work can outlast
 * the short interval of the test): the instance that finishes then does the current period at once.
 */
async function expectNoPeriodMissed(db: TestDatabase, done: Array<{period: Date}>): Promise<void> {
  const runs = (await db.client.query('SELECT started_at, finished_at FROM maintenance_runs WHERE error IS NULL')).rows
  const periods = new Set(done.map((p) => p.period.getTime()))
  for (let t = done[0].period.getTime(); t <= done.at(-1)!.period.getTime(); t += INTERVAL_MS) {
    if (periods.has(t)) continue
    const busy = runs.some((r) => r.started_at.getTime() < t + INTERVAL_MS && r.finished_at.getTime() > t)
    expect(busy, `the period from ${new Date(t).toISOString()} was done by none, and no work was running then`).to.equal(true)
  }
}

describe('audit-logs run --maintenance: three instances on one database (subprocess, real PostgreSQL)', function () {
  this.timeout(180_000)
  let app: Upstream
  let db: TestDatabase
  const runs: RunningServer[] = []
  before(async () => {
    app = await startUpstream()
    db = await freshDatabase({migrated: true})
  })
  after(async () => {
    for (const r of runs) await r.stop().catch(() => {})
    await app?.close()
    await db?.drop()
  })

  const insertRequest = (at: string, path: string) =>
    db.client.query(`INSERT INTO request_logs (id, created_at, method, path) VALUES ($1, $2, 'GET', $3)`, [randomUUID(), at, path])

  it('premakes partitions and applies retention once per period, whichever instance takes the lock; metrics and /health say so', async () => {
    // Old data, as a long-running deployment has it: a whole expired partition, and expired rows in
    // the default partitions (a period no partition was made for); and recent rows, which stay.
    await ensurePartitions(db.client, [{from: new Date('2020-01-01T00:00:00Z'), to: new Date('2020-02-01T00:00:00Z')}], {
      tables: ['request_logs'],
    })
    for (let i = 0; i < 5; i++) await insertRequest('2020-01-15T12:00:00Z', `/old-partition-${i}`)
    for (let i = 0; i < 3; i++) await insertRequest('2019-06-01T12:00:00Z', `/old-default-${i}`)
    for (let i = 0; i < 2; i++)
      await db.client.query(`INSERT INTO access_logs (id, created_at, method, url) VALUES ($1, '2019-06-01T12:00:00Z', 'GET', '/old')`, [
        randomUUID(),
      ])
    for (let i = 0; i < 4; i++) await insertRequest(new Date(Date.now() - 86_400_000).toISOString(), `/recent-${i}`)
    const seededOld = 5 + 3 + 2

    const env = {AUDIT_LOGS_DATABASE_URL: db.url, AUDIT_LOGS_MAINTENANCE_INTERVAL_MS: String(INTERVAL_MS)}
    for (const name of ['maint-a', 'maint-b', 'maint-c'])
      runs.push(await startRun(['--upstream', app.url, '--workers', '1', '--maintenance'], {...env, AUDIT_LOGS_INSTANCE: name}))

    // the old data goes, the recent rows stay
    await until(async () => (await count(db.client, 'request_logs', `path LIKE '/old%'`)) === 0, 60_000, 'the expired request rows gone')
    await until(async () => (await count(db.client, 'access_logs')) === 0, 60_000, 'the expired access rows gone')
    expect(await count(db.client, 'request_logs', `path LIKE '/recent-%'`)).to.equal(4)
    const partitions = `SELECT relname FROM pg_class WHERE relispartition AND relname ~ '^request_logs_p[0-9]{8}$'`
    const names = (await db.client.query(partitions)).rows.map((r) => r.relname)
    expect(names).not.to.include('request_logs_p20200101')

    // a future partition that goes missing is made again by the next period's maintenance (the start's own premake is long past)
    const ahead = (await db.client.query(`SELECT max(relname) AS name FROM (${partitions}) p`)).rows[0].name
    expect(ahead > `request_logs_p${new Date().toISOString().slice(0, 7).replace('-', '')}01`).to.equal(true)
    await db.client.query(`DROP TABLE ${ahead}`)
    await until(
      async () => (await db.client.query(`SELECT to_regclass($1) AS t`, [ahead])).rows[0].t !== null,
      60_000,
      `${ahead} premade again`,
    )

    // several periods pass; each was done by exactly one instance, none skipped between the first and the last
    const done = await until(
      async () => {
        const p = await periodsDone(db, INTERVAL_MS)
        return p.length >= 4 ? p : undefined
      },
      90_000,
      'four periods of maintenance',
    )
    for (const p of done) expect(p.n, `period ${p.period.toISOString()} done by ${p.instances.join(', ')}`).to.equal(1)
    await expectNoPeriodMissed(db, done)
    for (const p of done) expect(['maint-a', 'maint-b', 'maint-c']).to.include(p.instances[0])
    expect(done.every((p) => p.period.getTime() % INTERVAL_MS === 0)).to.equal(true)

    // the metrics of the three instances add up to what was removed and made; the others skipped
    const texts = await Promise.all(runs.map(async (r) => (await request(`${r.adminUrl}/metrics`)).body.toString()))
    const sum = (series: string) => texts.reduce((n, t) => n + metric(t, series), 0)
    expect(sum('audit_logs_maintenance_removed_total{store="postgres"}')).to.equal(seededOld)
    expect(sum('audit_logs_maintenance_partitions_dropped_total')).to.equal(1)
    expect(sum('audit_logs_maintenance_partitions_created_total')).to.be.at.least(1)
    expect(sum('audit_logs_maintenance_runs_total{outcome="done"}')).to.be.at.least(4)
    expect(
      sum('audit_logs_maintenance_runs_total{outcome="skipped_locked"}') + sum('audit_logs_maintenance_runs_total{outcome="skipped_done"}'),
    ).to.be.greaterThan(0)
    for (const t of texts) {
      const did = metric(t, 'audit_logs_maintenance_runs_total{outcome="done"}')
      const last = metric(t, 'audit_logs_maintenance_last_success_timestamp_seconds')
      if (did > 0) {
        expect(last).to.be.within(Date.now() / 1000 - 120, Date.now() / 1000 + 5)
        expect(t).to.match(/^audit_logs_maintenance_last_duration_seconds \d/m)
      } else expect(last).to.equal(0)
    }
    const doers = runs.filter((_, i) => metric(texts[i], 'audit_logs_maintenance_runs_total{outcome="done"}') > 0)
    const health = JSON.parse((await request(`${doers[0].adminUrl}/health`)).body.toString())
    expect(health.maintenance).to.include({intervalMs: INTERVAL_MS, lastError: null})
    expect(health.maintenance.lastSuccess).to.be.a('string')
    expect(health.maintenance.runs.done).to.be.at.least(1)

    // the log says what each period did
    const logs = runs.map((r) => r.stderr()).join('\n')
    expect(logs).to.contain(`maintenance every ${INTERVAL_MS} ms`)
    expect(logs).to.match(/maintenance of the period from \S+ done in \d+ ms: \d+ partition\(s\) created, 1 dropped, \d+ row\(s\) removed/)
    expect(logs).not.to.match(/maintenance.*failed/)
    for (const r of runs.splice(0)) expect((await r.stop()).exitCode).to.equal(0)
  })

  it('refuses --maintenance without a database store, and an interval under a second, naming the setting', async () => {
    const none = await startRun(['--upstream', app.url, '--maintenance', '--no-database'], {}, {expectFailure: true})
    expect((await none.child).exitCode).to.equal(2)
    expect(none.stderr()).to.contain('--maintenance (AUDIT_LOGS_MAINTENANCE) needs a database store to maintain, and this run writes none.')

    const short = await startRun(
      ['--upstream', app.url, '--maintenance'],
      {AUDIT_LOGS_DATABASE_URL: db.url, AUDIT_LOGS_MAINTENANCE_INTERVAL_MS: '500'},
      {expectFailure: true},
    )
    expect((await short.child).exitCode).to.equal(2)
    expect(short.stderr()).to.match(/AUDIT_LOGS_MAINTENANCE_INTERVAL_MS.*a whole number of at least 1000/)
  })
})
