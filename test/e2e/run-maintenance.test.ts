import {randomUUID} from 'node:crypto'
import {expect} from 'chai'
import {ensurePartitions} from '../../src/stores/postgres/partitions.js'
import {runCli} from '../helpers/cli.js'
import {appAndDatabase} from '../helpers/app-and-database.js'
import {type TestDatabase, count, dropDatabase, dropRoles, freshDatabase, serverUrl} from '../helpers/db.js'
import {withDatabase} from '../../src/stores/postgres/connection.js'
import pg from 'pg'
import {type RunningServer, request, startRun, until} from '../helpers/run-server.js'
import {metric, periodsDone} from '../helpers/maintenance.js'
import {type TestMongo, freshMongo, mongoServerUri} from '../helpers/mongo.js'
import {skipUnless} from '../helpers/skip.js'

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
  const runs: RunningServer[] = []
  // registered before appAndDatabase's: the runs stop before the app closes and the database is dropped
  after(async () => {
    for (const r of runs) await r.stop().catch(() => {})
  })
  const ctx = appAndDatabase()

  const insertRequest = (at: string, path: string) =>
    ctx.db.client.query(`INSERT INTO request_logs (id, created_at, method, path) VALUES ($1, $2, 'GET', $3)`, [randomUUID(), at, path])

  it('premakes partitions and applies retention once per period, whichever instance takes the lock; metrics and /health say so', async () => {
    // Old data, as a long-running deployment has it: a whole expired partition, and expired rows in
    // the default partitions (a period no partition was made for); and recent rows, which stay.
    await ensurePartitions(ctx.db.client, [{from: new Date('2020-01-01T00:00:00Z'), to: new Date('2020-02-01T00:00:00Z')}], {
      tables: ['request_logs'],
    })
    for (let i = 0; i < 5; i++) await insertRequest('2020-01-15T12:00:00Z', `/old-partition-${i}`)
    for (let i = 0; i < 3; i++) await insertRequest('2019-06-01T12:00:00Z', `/old-default-${i}`)
    for (let i = 0; i < 2; i++)
      await ctx.db.client.query(
        `INSERT INTO access_logs (id, created_at, method, url) VALUES ($1, '2019-06-01T12:00:00Z', 'GET', '/old')`,
        [randomUUID()],
      )
    for (let i = 0; i < 4; i++) await insertRequest(new Date(Date.now() - 86_400_000).toISOString(), `/recent-${i}`)
    const seededOld = 5 + 3 + 2

    const env = {AUDIT_LOGS_DATABASE_URL: ctx.db.url, AUDIT_LOGS_MAINTENANCE_INTERVAL_MS: String(INTERVAL_MS)}
    for (const name of ['maint-a', 'maint-b', 'maint-c'])
      runs.push(await startRun(['--upstream', ctx.app.url, '--workers', '1', '--maintenance'], {...env, AUDIT_LOGS_INSTANCE: name}))

    // the old data goes, the recent rows stay
    await until(
      async () => (await count(ctx.db.client, 'request_logs', `path LIKE '/old%'`)) === 0,
      60_000,
      'the expired request rows gone',
    )
    await until(async () => (await count(ctx.db.client, 'access_logs')) === 0, 60_000, 'the expired access rows gone')
    expect(await count(ctx.db.client, 'request_logs', `path LIKE '/recent-%'`)).to.equal(4)
    const partitions = `SELECT relname FROM pg_class WHERE relispartition AND relname ~ '^request_logs_p[0-9]{8}$'`
    const names = (await ctx.db.client.query(partitions)).rows.map((r) => r.relname)
    expect(names).not.to.include('request_logs_p20200101')

    // a future partition that goes missing is made again by the next period's maintenance (the start's own premake is long past)
    const ahead = (await ctx.db.client.query(`SELECT max(relname) AS name FROM (${partitions}) p`)).rows[0].name
    expect(ahead > `request_logs_p${new Date().toISOString().slice(0, 7).replace('-', '')}01`).to.equal(true)
    await ctx.db.client.query(`DROP TABLE ${ahead}`)
    await until(
      async () => (await ctx.db.client.query(`SELECT to_regclass($1) AS t`, [ahead])).rows[0].t !== null,
      60_000,
      `${ahead} premade again`,
    )

    // several periods pass; each was done by exactly one instance, none skipped between the first and the last
    const done = await until(
      async () => {
        const p = await periodsDone(ctx.db, INTERVAL_MS)
        return p.length >= 4 ? p : undefined
      },
      90_000,
      'four periods of maintenance',
    )
    for (const p of done) expect(p.n, `period ${p.period.toISOString()} done by ${p.instances.join(', ')}`).to.equal(1)
    await expectNoPeriodMissed(ctx.db, done)
    for (const p of done) expect(['maint-a', 'maint-b', 'maint-c']).to.include(p.instances[0])
    expect(done.every((p) => p.period.getTime() % INTERVAL_MS === 0)).to.equal(true)

    // the metrics of the three instances add up to what was removed and made; the others skipped
    // (each thread reports a period to its primary just after recording it)
    const scrape = () => Promise.all(runs.map(async (r) => (await request(`${r.adminUrl}/metrics`)).body.toString()))
    const add = (all: string[], series: string) => all.reduce((n, t) => n + metric(t, series), 0)
    const texts = await until(
      async () => {
        const all = await scrape()
        return add(all, 'audit_logs_maintenance_runs_total{outcome="done"}') >= done.length ? all : undefined
      },
      10_000,
      'the periods in the metrics',
    )
    const sum = (series: string) => add(texts, series)
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
    const none = await startRun(['--upstream', ctx.app.url, '--maintenance', '--no-database'], {}, {expectFailure: true})
    expect((await none.child).exitCode).to.equal(2)
    expect(none.stderr()).to.contain('--maintenance (AUDIT_LOGS_MAINTENANCE) needs a database store to maintain, and this run writes none.')

    const short = await startRun(
      ['--upstream', ctx.app.url, '--maintenance'],
      {AUDIT_LOGS_DATABASE_URL: ctx.db.url, AUDIT_LOGS_MAINTENANCE_INTERVAL_MS: '500'},
      {expectFailure: true},
    )
    expect((await short.child).exitCode).to.equal(2)
    expect(short.stderr()).to.match(/AUDIT_LOGS_MAINTENANCE_INTERVAL_MS.*a whole number of at least 1000/)
  })

  it('with MongoDB configured too, removes its expired documents in the same period; with MongoDB alone, every instance cleans (no lock to take)', async function () {
    skipUnless(this, !!mongoServerUri(), 'no MongoDB server for the tests', {expectedInCi: true})
    const m: TestMongo = await freshMongo()
    const pg = await freshDatabase({migrated: true})
    const mongoEnv = {
      AUDIT_LOGS_MONGO_URI: m.uri,
      AUDIT_LOGS_MONGO_DB_NAME: m.dbName,
      AUDIT_LOGS_MAINTENANCE_INTERVAL_MS: String(INTERVAL_MS),
    }
    const requests = m.client.db(m.dbName).collection<{_id: string; created_at: Date; path: string}>('request_logs')
    const seed = async (n: number, at: Date, prefix: string) => {
      for (let i = 0; i < n; i++) await requests.insertOne({_id: randomUUID(), created_at: at, path: `${prefix}-${i}`})
    }
    const old = new Date('2019-06-01T12:00:00Z')
    const left = () => requests.countDocuments({created_at: {$lt: new Date(Date.now() - 90 * 86_400_000)}})
    try {
      await seed(4, old, '/old')
      await seed(2, new Date(Date.now() - 86_400_000), '/recent')
      // both stores: the instance that takes PostgreSQL's lock cleans MongoDB too, and records it
      const both = await startRun(['--upstream', ctx.app.url, '--workers', '1', '--maintenance', '--stores', 'both'], {
        ...mongoEnv,
        AUDIT_LOGS_DATABASE_URL: pg.url,
        AUDIT_LOGS_INSTANCE: 'both-a',
      })
      runs.push(both)
      await until(async () => (await left()) === 0, 60_000, 'the expired documents gone')
      expect(await requests.countDocuments({path: /^\/recent/})).to.equal(2)
      const recorded = await until(
        async () => {
          const {rows} = await pg.client.query(
            'SELECT coalesce(sum(documents_removed), 0)::int AS n FROM maintenance_runs WHERE error IS NULL',
          )
          return rows[0].n > 0 ? rows[0].n : undefined
        },
        30_000,
        'the period recorded',
      )
      expect(recorded).to.equal(4)
      // the thread reports the period to the primary just after recording it
      const text = await until(
        async () => {
          const t = (await request(`${both.adminUrl}/metrics`)).body.toString()
          return metric(t, 'audit_logs_maintenance_runs_total{outcome="done"}') > 0 ? t : undefined
        },
        10_000,
        'the period in the metrics',
      )
      expect(metric(text, 'audit_logs_maintenance_removed_total{store="mongo"}')).to.equal(4)
      expect(both.stderr()).to.match(
        /done in \d+ ms: \d+ partition\(s\) created, 0 dropped, 0 row\(s\) and 4 MongoDB document\(s\) removed/,
      )
      expect((await both.stop()).exitCode).to.equal(0)
      runs.splice(runs.indexOf(both), 1)

      // MongoDB alone: each instance cleans each period; what one deletes the other finds gone
      await seed(3, old, '/old-again')
      // a chain set up before its pruning (no integrity_pruned): each period says so, as cleanup does
      await m.client.db(m.dbName).createCollection('integrity_batches')
      const solo: RunningServer[] = []
      for (const name of ['mongo-a', 'mongo-b'])
        solo.push(
          await startRun(['--upstream', ctx.app.url, '--workers', '1', '--maintenance', '--stores', 'mongo'], {
            ...mongoEnv,
            AUDIT_LOGS_INSTANCE: name,
          }),
        )
      runs.push(...solo)
      await until(async () => (await left()) === 0, 60_000, 'the expired documents gone again')
      // both instances did periods of their own
      await until(
        () => solo.every((r) => /maintenance of the period from \S+ done/.test(r.stderr())),
        60_000,
        'a period done by each instance',
      )
      const texts = await Promise.all(solo.map(async (r) => (await request(`${r.adminUrl}/metrics`)).body.toString()))
      expect(texts.reduce((n, t) => n + metric(t, 'audit_logs_maintenance_removed_total{store="mongo"}'), 0)).to.equal(3)
      expect(texts.every((t) => metric(t, 'audit_logs_maintenance_runs_total{outcome="done"}') >= 1)).to.equal(true)
      expect(await requests.countDocuments({path: /^\/recent/})).to.equal(2)
      for (const r of solo)
        expect(r.stderr()).to.include(
          `maintenance: integrity_batches (MongoDB ${m.dbName}): not pruned: integrity_pruned does not exist (run \`audit-logs setup-db --store mongo\`, which makes it)`,
        )
      for (const r of solo) {
        expect((await r.stop()).exitCode).to.equal(0)
        runs.splice(runs.indexOf(r), 1)
      }
    } finally {
      await m.drop()
      await pg.drop()
    }
  })

  it("a period whose MongoDB step fails still logs what PostgreSQL's step said (its notes), with the failure, once", async function () {
    skipUnless(this, !!mongoServerUri(), 'no MongoDB server for the tests', {expectedInCi: true})
    const m: TestMongo = await freshMongo()
    const pg = await freshDatabase({migrated: true})
    const NOTE = 'maintenance: integrity_batches: ghost: its chain starts at batch 5, not 1 where it was last pruned: not pruned'
    try {
      // a chain whose first batches are gone (not by a prune): PostgreSQL's cleanup leaves it and says so
      await pg.client.query(
        `INSERT INTO integrity_batches (instance, seq, log_type, ids, created_ats, record_hashes, records_hash, prev_hash, hash, count, total, min_created_at, max_created_at)
         VALUES ('ghost', 5, 'request', '{}', '{}', '', '', '', '', 0, 0, now(), now())`,
      )
      // MongoDB's step fails: recording its cutoff for an expired document meets a unique index that refuses it
      const db = m.client.db(m.dbName)
      await db
        .collection('request_logs')
        .insertOne({_id: randomUUID() as never, created_at: new Date('2019-06-01T12:00:00Z'), path: '/old'})
      await db.collection('integrity_retention').createIndex({log_type: 1}, {unique: true})
      await db.collection('integrity_retention').insertOne({log_type: 'request', cutoff: new Date(0), how: 'in the way'})
      const run = await startRun(['--upstream', ctx.app.url, '--workers', '1', '--maintenance', '--stores', 'both'], {
        AUDIT_LOGS_DATABASE_URL: pg.url,
        AUDIT_LOGS_MONGO_URI: m.uri,
        AUDIT_LOGS_MONGO_DB_NAME: m.dbName,
        AUDIT_LOGS_MAINTENANCE_INTERVAL_MS: String(INTERVAL_MS),
      })
      runs.push(run)
      await until(() => /maintenance.* failed: .*/.test(run.stderr()), 60_000, 'a failed period')
      expect(run.stderr()).to.include(NOTE)
      await until(
        async () =>
          metric((await request(`${run.adminUrl}/metrics`)).body.toString(), 'audit_logs_maintenance_runs_total{outcome="failed"}') >= 2,
        60_000,
        'a second failed attempt',
      )
      expect((await run.stop()).exitCode).to.equal(0)
      runs.splice(runs.indexOf(run), 1)
      const failures = run.stderr().match(/maintenance.* failed: .*/g) ?? []
      expect(failures, 'one line for a failure that repeats').to.have.length(1)
      expect(failures[0]).to.match(/duplicate key|E11000/i)
      expect(run.stderr().split(NOTE).length - 1, 'its notes logged with it, once').to.equal(1)
    } finally {
      await m.drop()
      await pg.drop()
    }
  })

  it('with the writer role (no rights to maintain), each period fails, logged once and counted; records are written as before', async () => {
    const dbName = `e2e_maint_${randomUUID().slice(0, 8)}`
    const password = `writer-${randomUUID()}`
    try {
      const setup = await runCli(['setup-db', '--db-name', dbName, '--premake', '1', '--json'], {
        env: {AUDIT_LOGS_ADMIN_URL: serverUrl(), AUDIT_LOGS_WRITER_PASSWORD: password},
      })
      expect(setup.exitCode, setup.stderr).to.equal(0)
      const url = new URL(withDatabase(serverUrl(), dbName))
      url.username = `${dbName}_writer`
      url.password = encodeURIComponent(password)
      const run = await startRun(['--upstream', ctx.app.url, '--workers', '1', '--maintenance'], {
        AUDIT_LOGS_DATABASE_URL: url.toString(),
        AUDIT_LOGS_MAINTENANCE_INTERVAL_MS: String(INTERVAL_MS),
      })
      runs.push(run)
      // retried within each period (a quarter of it): several failures, one line
      await until(
        async () =>
          metric((await request(`${run.adminUrl}/metrics`)).body.toString(), 'audit_logs_maintenance_runs_total{outcome="failed"}') >= 3,
        60_000,
        'three failed attempts',
      )
      const lines = run.stderr().match(/maintenance.* failed: .*/g) ?? []
      expect(lines).to.have.length(1)
      expect(lines[0]).to.match(/permission denied/)
      expect(lines[0]).not.to.contain(password)
      const health = JSON.parse((await request(`${run.adminUrl}/health`)).body.toString())
      expect(health.maintenance.lastError).to.match(/permission denied/)
      expect(health.maintenance.lastSuccess).to.equal(null)
      // the capture itself is untouched
      expect((await request(`${run.url}/api/writer-still-writes`)).status).to.equal(200)
      const superuser = new pg.Client({connectionString: withDatabase(serverUrl(), dbName)})
      await superuser.connect()
      try {
        await until(async () => (await count(superuser, 'request_logs', `path = '/api/writer-still-writes'`)) === 1, 30_000, 'the record')
      } finally {
        await superuser.end()
      }
      expect((await run.stop()).exitCode).to.equal(0)
      runs.splice(runs.indexOf(run), 1)
    } finally {
      await dropDatabase(dbName)
      await dropRoles(dbName)
    }
  })
})
