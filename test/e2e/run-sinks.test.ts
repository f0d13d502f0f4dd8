import {copyFileSync, mkdtempSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {MIGRATIONS_DIR, migrate} from '../../src/stores/postgres/migrations.js'
import {appAndDatabase} from '../helpers/app-and-database.js'
import {freshDatabase} from '../helpers/db.js'
import {jsonlLines} from '../helpers/jsonl.js'
import {type RunningServer, request, startRun, until} from '../helpers/run-server.js'

describe('audit-logs run: the sinks — dead letters, schema, bursts (subprocess, real PostgreSQL)', function () {
  this.timeout(120_000)
  let run: RunningServer | undefined
  after(() => run?.stop()) // registered first: it runs before the app and the database go
  const ctx = appAndDatabase()

  it('a record the database refuses is kept in the dead-letter file, counted and alerted; the records around it reach PostgreSQL and the files', async () => {
    run = await startRun(['--upstream', ctx.app.url, '--workers', '1'], {AUDIT_LOGS_DATABASE_URL: ctx.db.url})
    // a mask(record) hook with a bug: it puts text where PostgreSQL wants a number
    const config = path.join(run.dir, 'audit-logs.config.mjs')
    writeFileSync(
      config,
      `export default {}\nexport function mask(record) {\n  if (record.path === '/bad-hook') record.status_code = 'two hundred'\n  return record\n}\n`,
    )
    await run.stop()
    run = await startRun(
      ['--upstream', ctx.app.url, '--workers', '1', '--config', config],
      {AUDIT_LOGS_DATABASE_URL: ctx.db.url},
      {dir: run.dir},
    )

    for (const p of ['/json?n=1', '/bad-hook', '/json?n=2']) await request(`${run.url}${p}`)
    const rows = await until(
      async () => {
        const r = (await ctx.db.client.query(`SELECT query->>'n' AS n FROM request_logs ORDER BY n`)).rows
        return r.length >= 2 ? r : undefined
      },
      15_000,
      'the records around the refused one',
    )
    expect(rows.map((r) => r.n)).to.deep.equal(['1', '2'])
    const access = await until(
      async () => (await ctx.db.client.query(`SELECT count(*)::int AS n FROM access_logs`)).rows[0].n === 3 || undefined,
      15_000,
      'three access records',
    )
    expect(access).to.equal(true)

    const file = path.join(run.journalDir, 'dead-letter', 'postgres.jsonl')
    const kept = await until(
      () => {
        try {
          return readFileSync(file, 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l))
        } catch {
          return undefined
        }
      },
      10_000,
      'the dead-letter file',
    )
    expect(kept).to.have.length(1)
    expect(statSync(file).mode & 0o777).to.equal(0o600 & ~process.umask()) // the records it keeps: the writer's alone
    expect(kept[0].record).to.include({path: '/bad-hook', status_code: 'two hundred'})
    expect(kept[0].error).to.match(/^PostgreSQL 22P02: invalid input syntax for type integer/)

    const metrics = await until(
      async () => {
        const text = (await request(`${run!.adminUrl}/metrics`)).body.toString()
        return /audit_logs_records_rejected_total\{sink="postgres"\} 1\b/.test(text) ? text : undefined
      },
      10_000,
      'the rejected counter',
    )
    expect(metrics).to.match(/audit_logs_records_rejected_total\{sink="files"\} 0\b/)
    expect(JSON.parse((await request(`${run.adminUrl}/health`)).body.toString()).sinks.postgres.rejected).to.equal(1)
    expect(run.stderr()).to.match(
      /ALERT: sink postgres refused 1 record\(s\) \(PostgreSQL 22P02: .*\); they are kept in .*dead-letter\/postgres\.jsonl/,
    )

    const stopped = await run.stop()
    expect(stopped.exitCode).to.equal(0)
    expect(run.stderr()).to.match(/refused \(kept in the dead-letter files\) \{"files":0,"postgres":1\}/)
    // the files take the record as it is
    expect(jsonlLines(run.logDir, 'requests').map((l) => JSON.parse(l).path)).to.deep.equal(['/json', '/bad-hook', '/json'])
    run = undefined
  })

  it('says at start that the database misses a migration this version brings', async () => {
    const old = await freshDatabase()
    try {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-old-schema-'))
      copyFileSync(path.join(MIGRATIONS_DIR, '0001_initial.sql'), path.join(dir, '0001_initial.sql'))
      await migrate(old.client, {dir})
      const r = await startRun(['--upstream', ctx.app.url, '--workers', '1'], {AUDIT_LOGS_DATABASE_URL: old.url})
      await r.stop()
      expect(r.stderr()).to.contain(
        'database: 7 migration(s) pending (0002_bounded_index_keys, 0003_event_logs, 0004_outbound_and_app_logs, 0005_maintenance_runs, 0006_integrity, 0007_integrity_pruned, 0008_signed_retention): run `audit-logs setup-db`',
      )
    } finally {
      await old.drop()
    }
  })

  it('while the proxy is saturated, defers the sinks for at most shippingDeferMs of a busy period; a shutdown delivers at once', async () => {
    // the failpoint makes the worker report its event loop saturated, as under a burst
    const run = await startRun(['--upstream', ctx.app.url, '--workers', '1'], {
      AUDIT_LOGS_DATABASE_URL: ctx.db.url,
      AUDIT_LOGS_FAILPOINT: 'proxy-busy',
      AUDIT_LOGS_SHIPPING_DEFER_MS: '4000',
    })
    try {
      const health = async () => JSON.parse((await request(`${run.adminUrl}/health`)).body.toString())
      await until(async () => (await health()).sinks.postgres?.deferred === false || undefined, 10_000, 'the first poll')
      await new Promise((r) => setTimeout(r, 1200)) // two reports: the primary knows the proxy is busy
      expect((await request(`${run.url}/json?n=deferred`)).status).to.equal(200)
      await until(async () => (await health()).sinks.postgres?.deferred || undefined, 5000, 'the sinks to defer')
      const metrics = (await request(`${run.adminUrl}/metrics`)).body.toString()
      expect(metrics).to.match(/audit_logs_sink_deferred\{sink="postgres"\} 1/)
      const rows = async (n: string) =>
        (await ctx.db.client.query(`SELECT count(*)::int AS n FROM request_logs WHERE query->>'n' = $1`, [n])).rows[0].n
      expect(await rows('deferred')).to.equal(0) // deferred: not in PostgreSQL although the sinks reported themselves deferred after it was proxied
      // the busy period outlasts the bound: shipping goes on although the proxy is still "busy"
      await until(async () => (await rows('deferred')) === 1 || undefined, 15_000, 'the record after the deferral bound')
      await until(
        async () => (await health()).sinks.postgres?.deferred === false || undefined,
        5000,
        'the deferral to end although the proxy is still busy',
      )
    } finally {
      await run.stop()
    }
  })

  it('a deferral ends once a sink is catchUpLagBytes behind, however long the proxy stays busy: shipping catches up at the normal priority', async () => {
    const run = await startRun(['--upstream', ctx.app.url, '--workers', '1'], {
      AUDIT_LOGS_DATABASE_URL: ctx.db.url,
      AUDIT_LOGS_FAILPOINT: 'proxy-busy',
      AUDIT_LOGS_SHIPPING_DEFER_MS: '600000',
      AUDIT_LOGS_CATCH_UP_LAG_BYTES: '65536',
    })
    try {
      const health = async () => JSON.parse((await request(`${run.adminUrl}/health`)).body.toString())
      await new Promise((r) => setTimeout(r, 1200)) // two reports: the primary knows the proxy is busy
      expect((await request(`${run.url}/json?n=small`)).status).to.equal(200)
      await until(async () => (await health()).sinks.postgres?.deferred || undefined, 5000, 'the sinks to defer')
      const rows = async (n: string) =>
        (await ctx.db.client.query(`SELECT count(*)::int AS n FROM request_logs WHERE query->>'n' = $1`, [n])).rows[0].n
      expect(await rows('small')).to.equal(0) // under the bound, the deferral holds
      const big = 'x'.repeat(8000)
      for (let i = 0; i < 12; i++)
        expect(
          (await request(`${run.url}/echo?n=big`, {method: 'POST', body: big, headers: {'content-type': 'text/plain'}})).status,
        ).to.equal(200)
      // past 64 kB behind, everything goes, although the proxy still reports itself saturated
      await until(async () => (await rows('big')) === 12 && (await rows('small')) === 1, 15_000, 'the records past the catch-up bound')
      const metrics = (await request(`${run.adminUrl}/metrics`)).body.toString()
      expect(Number(/audit_logs_sink_catch_ups_total\{sink="postgres"\} (\d+)/.exec(metrics)?.[1])).to.be.at.least(1)
    } finally {
      await run.stop()
    }
  })

  it('a shutdown during a deferral delivers what the journal holds', async () => {
    const run = await startRun(['--upstream', ctx.app.url, '--workers', '1'], {
      AUDIT_LOGS_DATABASE_URL: ctx.db.url,
      AUDIT_LOGS_FAILPOINT: 'proxy-busy',
      AUDIT_LOGS_SHIPPING_DEFER_MS: '600000',
    })
    await new Promise((r) => setTimeout(r, 1200))
    for (let i = 0; i < 5; i++) expect((await request(`${run.url}/json?n=at-stop`)).status).to.equal(200)
    await until(
      async () => JSON.parse((await request(`${run.adminUrl}/health`)).body.toString()).sinks.postgres?.deferred || undefined,
      5000,
      'the sinks to defer',
    )
    const stopped = await run.stop()
    expect(stopped.exitCode).to.equal(0)
    expect((await ctx.db.client.query(`SELECT count(*)::int AS n FROM request_logs WHERE query->>'n' = 'at-stop'`)).rows[0].n).to.equal(5)
    expect(jsonlLines(run.logDir, 'requests')).to.have.length(5)
  })
})
