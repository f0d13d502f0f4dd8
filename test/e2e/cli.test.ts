import {expect} from 'chai'
import pg from 'pg'
import {generateRecords} from '../../src/generate/records.js'
import {clientConfig, withDatabase} from '../../src/stores/postgres/connection.js'
import {writeRecords} from '../../src/stores/postgres/writer.js'
import {TABLES} from '../../src/stores/postgres/partitions.js'
import {execa} from 'execa'
import {BIN, runCli} from '../helpers/cli.js'
import {count, dropDatabase, dropRoles, freshDatabase, serverUrl} from '../helpers/db.js'

const uniq = () => Math.random().toString(36).slice(2, 8)

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client(clientConfig(url))
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}

async function queryError(url: string, text: string): Promise<string | undefined> {
  return withClient(url, async (c) => {
    try {
      await c.query(text)
      return undefined
    } catch (error) {
      return (error as Error).message
    }
  })
}

describe('audit-logs CLI (subprocess)', function () {
  this.timeout(120_000)

  it('--help lists every command with a one-line description', async () => {
    const {exitCode, stdout} = await runCli(['--help'])
    expect(exitCode).to.equal(0)
    for (const id of ['setup-db', 'migrate', 'partitions list', 'partitions create', 'partitions repair', 'cleanup'])
      expect(stdout).to.contain(id)
  })

  describe('setup-db', () => {
    const dbName = `e2e_setup_${uniq()}`
    const env = () => ({AUDIT_LOGS_DATABASE_URL: serverUrl()})
    after(async () => {
      await dropDatabase(dbName)
      await dropRoles(dbName)
    })

    it('--dry-run prints the SQL and changes nothing', async () => {
      const {exitCode, stdout} = await runCli(['setup-db', '--db-name', dbName, '--dry-run'], {env: env()})
      expect(exitCode).to.equal(0)
      expect(stdout).to.contain(`CREATE ROLE "${dbName}_writer" LOGIN PASSWORD '****'`)
      expect(stdout).to.contain(`CREATE DATABASE "${dbName}"`)
      expect(stdout).to.contain('CREATE TABLE request_logs')
      expect(stdout).to.contain('PARTITION OF "request_logs"')
      const exists = await withClient(serverUrl(), (c) => c.query('SELECT 1 FROM pg_database WHERE datname = $1', [dbName]))
      expect(exists.rowCount).to.equal(0)
    })

    it('creates database, roles, schema and partitions; prints generated passwords once', async () => {
      const first = await runCli(['setup-db', '--db-name', dbName, '--premake', '2', '--json'], {env: env()})
      expect(first.exitCode, first.stderr).to.equal(0)
      const result = first.json()
      expect(result.changed).to.equal(true)
      expect(result.credentials.map((c: {role: string}) => c.role)).to.deep.equal([
        `${dbName}_owner`,
        `${dbName}_writer`,
        `${dbName}_reader`,
      ])
      const writer = result.credentials[1]
      const reader = result.credentials[2]

      // least privilege, checked with the printed credentials
      expect(await queryError(writer.url, 'SELECT count(*) FROM request_logs')).to.match(/permission denied/)
      expect(
        await queryError(reader.url, `INSERT INTO access_logs (id, created_at, method, url) VALUES (gen_random_uuid(), now(), 'GET', '/')`),
      ).to.match(/permission denied/)
      expect(await queryError(reader.url, 'SELECT count(*) FROM request_logs')).to.equal(undefined)
      const owned = await withClient(withDatabase(serverUrl(), dbName), (c) =>
        c.query(`SELECT DISTINCT pg_get_userbyid(relowner) AS o FROM pg_class WHERE relname LIKE 'request_logs%'`),
      )
      expect(owned.rows.map((r) => r.o)).to.deep.equal([`${dbName}_owner`])

      const second = await runCli(['setup-db', '--db-name', dbName, '--premake', '2'], {env: env()})
      expect(second.exitCode).to.equal(0)
      expect(second.stdout).to.contain(`Nothing to do: database ${dbName} was already set up.`)
      for (const c of result.credentials) expect(second.stdout + second.stderr).to.not.contain(c.password)

      // later commands meet setup-db's database through AUDIT_LOGS_DB_NAME
      const list = await runCli(['partitions', 'list', '--json'], {env: {...env(), AUDIT_LOGS_DB_NAME: dbName}})
      expect(list.exitCode, list.stderr).to.equal(0)
      expect(list.json().partitions.filter((p: {table: string}) => p.table === 'request_logs')).to.have.length(4) // default + current + 2
    })

    it('quotes a database name with a dash, and refuses quotes and spaces', async () => {
      const dashed = `e2e-dash-${uniq()}`
      try {
        const ok = await runCli(['setup-db', '--db-name', dashed, '--premake', '0', '--json'], {env: env()})
        expect(ok.exitCode, ok.stderr).to.equal(0)
      } finally {
        await dropDatabase(dashed)
        await dropRoles(dashed)
      }
      for (const bad of [`x"; DROP DATABASE postgres; --`, "it's", 'two words']) {
        const {exitCode, stderr} = await runCli(['setup-db', '--db-name', bad], {env: env()})
        expect(exitCode).to.equal(2)
        expect(stderr).to.contain('dbName').and.contain('letters, digits')
      }
    })
  })

  describe('on a migrated database', () => {
    let dbName: string
    let env: Record<string, string>
    before(async () => {
      const db = await freshDatabase({prefix: 'e2e'})
      dbName = db.name
      await db.client.end()
      env = {AUDIT_LOGS_DATABASE_URL: withDatabase(serverUrl(), dbName)}
    })
    after(() => dropDatabase(dbName))

    it('migrate applies, then reports nothing pending; status lists them', async () => {
      const first = await runCli(['migrate', '--json'], {env})
      expect(first.exitCode, first.stderr).to.equal(0)
      expect(first.json().applied).to.deep.equal([
        {version: 1, name: 'initial'},
        {version: 2, name: 'bounded_index_keys'},
        {version: 3, name: 'event_logs'},
        {version: 4, name: 'outbound_and_app_logs'},
        {version: 5, name: 'maintenance_runs'},
        {version: 6, name: 'integrity'},
        {version: 7, name: 'integrity_pruned'},
        {version: 8, name: 'signed_retention'},
      ])
      const again = await runCli(['migrate'], {env})
      expect(again.stdout).to.contain('No pending migrations')
      const status = await runCli(['migrate', 'status', '--json'], {env})
      expect(status.json().pending).to.equal(0)
      expect(status.json().migrations[0].state).to.equal('applied')
    })

    it('partitions: create ahead, warn about rows in default, repair them', async () => {
      const created = await runCli(['partitions', 'create', '--ahead', '2', '--json'], {env})
      expect(created.exitCode, created.stderr).to.equal(0)
      expect(created.json().created).to.have.length(3 * TABLES.length) // this month and two ahead, of each table
      await withClient(env.AUDIT_LOGS_DATABASE_URL, (c) =>
        writeRecords(c, 'request', [...generateRecords({rows: 200, days: 200, seed: 1})]),
      )
      const list = await runCli(['partitions', 'list', '--json'], {env})
      expect(list.json().defaultRows.request_logs).to.be.greaterThan(0)
      expect(list.json().warnings[0]).to.contain('partitions repair')
      const repair = await runCli(['partitions', 'repair', '--json'], {env})
      expect(repair.exitCode, repair.stderr).to.equal(0)
      expect(repair.json().remaining).to.deep.equal(Object.fromEntries(TABLES.map((t) => [t, 0])))
    })

    it('cleanup --dry-run reports, cleanup removes, gunicorn is access', async () => {
      const dry = await runCli(['cleanup', '--days', '90', '--dry-run', '--json'], {env})
      expect(dry.exitCode, dry.stderr).to.equal(0)
      const wouldGo = dry.json().totalRows
      expect(wouldGo).to.be.greaterThan(0)
      // 90 days is the request logs' default retention, shorter than the access logs' 120: said before anything goes
      const warnings = (dry.json().warnings as string[]).join('\n')
      expect(warnings).to.include(
        '--days 90 is shorter than the 120 days configured for access logs (accessRetentionDays): it would remove records the configuration keeps',
      )
      expect(warnings).to.include('set accessRetentionDays (AUDIT_LOGS_ACCESS_RETENTION_DAYS) to 90 first')
      expect(warnings).not.to.include('configured for request logs')
      const plain = await runCli(['cleanup', '--days', '90', '--log-type', 'access', '--dry-run'], {env})
      expect(plain.stderr).to.include('Warning: --days 90 is shorter than the 120 days configured for access logs')
      const real = await runCli(['cleanup', '--days', '90', '--batch-size', '7', '--json'], {env})
      expect(real.json().totalRows).to.equal(wouldGo)
      const again = await runCli(['cleanup', '--days', '90', '--json'], {env})
      expect(again.json().totalRows).to.equal(0)
      const alias = await runCli(['cleanup', '--log-type', 'gunicorn', '--dry-run', '--json'], {env})
      expect(alias.json().targets).to.deep.equal([
        {logType: 'access', table: 'access_logs', days: 120, cutoff: alias.json().targets[0].cutoff},
      ])
    })

    it('refuses bad cleanup input with exit 2 and says what is accepted', async () => {
      const cases: Array<[string[], RegExp]> = [
        [['--log-type', 'nginx'], /one of: request, access, event, outbound, app, all, gunicorn/],
        [['--days', '0'], /greater than or equal to 1/],
        [['--days', '-3'], /greater than or equal to 1/],
        [['--batch-size', '0'], /greater than or equal to 1/],
        [['--days', 'ten'], /integer/i],
      ]
      for (const [args, message] of cases) {
        const {exitCode, stderr} = await runCli(['cleanup', ...args], {env})
        expect(exitCode, args.join(' ')).to.equal(2)
        expect(stderr).to.match(message)
      }
    })

    it('refuses an applied migration that changed (exit 4)', async () => {
      await withClient(env.AUDIT_LOGS_DATABASE_URL, (c) =>
        c.query(`UPDATE audit_logs_migrations SET checksum = repeat('0', 64) WHERE version = 1`),
      )
      try {
        const {exitCode, stderr} = await runCli(['migrate'], {env})
        expect(exitCode).to.equal(4)
        expect(stderr).to.contain('0001_initial.sql was changed after it was applied')
      } finally {
        await withClient(env.AUDIT_LOGS_DATABASE_URL, async (c) => {
          const {parseMigration, MIGRATIONS_DIR} = await import('../../src/stores/postgres/migrations.js')
          const {readFileSync} = await import('node:fs')
          const m = parseMigration('0001_initial.sql', readFileSync(`${MIGRATIONS_DIR}/0001_initial.sql`, 'utf8'))
          await c.query('UPDATE audit_logs_migrations SET checksum = $1 WHERE version = 1', [m.checksum])
        })
      }
    })
  })

  describe('cleanup interrupted with Ctrl-C', () => {
    it('stops between batches with exit 130, and the table stays consistent', async () => {
      const db = await freshDatabase({prefix: 'e2e_sigint', migrated: true})
      try {
        const old = [...generateRecords({rows: 20000, days: 1, seed: 3, now: new Date(Date.now() - 100 * 86_400_000)})]
        await writeRecords(db.client, 'request', old)
        const child = execa(process.execPath, [BIN, 'cleanup', '--days', '90', '--batch-size', '1', '--log-type', 'request', '--json'], {
          env: {AUDIT_LOGS_DATABASE_URL: db.url, OCLIF_SKIP_NEW_VERSION_CHECK: '1'},
          reject: false,
        })
        // wait until batches are being deleted, then press Ctrl-C
        const until = Date.now() + 30_000
        while ((await count(db.client, 'request_logs')) === 20000 && Date.now() < until) await new Promise((r) => setTimeout(r, 50))
        child.kill('SIGINT')
        const result = await child
        expect(result.exitCode).to.equal(130)
        const report = JSON.parse(result.stdout)
        expect(report.interrupted).to.equal(true)
        expect(report.totalRows).to.be.greaterThan(0).and.lessThan(20000)
        expect(await count(db.client, 'request_logs')).to.equal(20000 - report.totalRows)
      } finally {
        await db.drop()
      }
    })
  })

  describe('failures', () => {
    it('an unreachable server: clear error, exit 3, no stack trace, no password', async () => {
      const {exitCode, stderr, stdout} = await runCli(['partitions', 'list'], {
        env: {AUDIT_LOGS_DATABASE_URL: 'postgres://audit:s3cr3t-pass@127.0.0.1:1/audit_logs'},
      })
      expect(exitCode).to.equal(3)
      expect(stderr).to.contain('Cannot connect to PostgreSQL at postgres://audit:****@127.0.0.1:1/audit_logs')
      expect(stderr + stdout).to.not.contain('s3cr3t-pass')
      expect(stderr).to.not.match(/\n\s+at /)
    })

    it('the same in --json: one JSON document on stdout', async () => {
      const {exitCode, stdout} = await runCli(['cleanup', '--json', '--database-url', 'postgres://audit:s3cr3t-pass@127.0.0.1:1/x'])
      expect(exitCode).to.equal(3)
      const doc = JSON.parse(stdout)
      expect(doc.error.exit).to.equal(3)
      expect(stdout).to.not.contain('s3cr3t-pass')
    })

    it('a database that does not exist points at setup-db', async () => {
      const {exitCode, stderr} = await runCli(['partitions', 'list'], {
        env: {AUDIT_LOGS_DATABASE_URL: serverUrl(), AUDIT_LOGS_DB_NAME: `missing_${uniq()}`},
      })
      expect(exitCode).to.equal(3)
      expect(stderr).to.contain('does not exist').and.contain('setup-db')
      expect(stderr).to.not.contain(new URL(serverUrl()).password || 'no-password')
    })

    it('a database without the schema points at setup-db', async () => {
      const db = await freshDatabase({prefix: 'e2e_empty'})
      try {
        const {exitCode, stderr} = await runCli(['cleanup', '--dry-run'], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
        expect(exitCode).to.equal(3)
        expect(stderr).to.contain('audit tables are missing').and.contain('setup-db')
      } finally {
        await db.drop()
      }
    })

    it('on a terminal of 0 columns (script, docker run -t) a command shows no spinner and finishes', async () => {
      // the spinner used to clear "lines" without end on such a terminal, and the command never ended
      const db = await freshDatabase({prefix: 'e2e_tty'})
      try {
        const shell = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} migrate --dry-run`
        const r = await execa('script', ['-qec', shell, '/dev/null'], {
          env: {AUDIT_LOGS_DATABASE_URL: db.url, OCLIF_SKIP_NEW_VERSION_CHECK: '1'},
          reject: false,
          timeout: 60_000,
          stdin: 'ignore',
          maxBuffer: 1024 * 1024,
        })
        expect(r.timedOut, 'timed out').to.equal(false)
        expect(r.exitCode, r.stdout.slice(0, 500)).to.equal(0)
        expect(r.stdout).to.contain('dry run').and.not.contain('\u001B[1A')
      } finally {
        await db.drop()
      }
    })

    it('a bad configuration value names the key, the value and what is accepted', async () => {
      const {exitCode, stderr} = await runCli(['partitions', 'list'], {env: {AUDIT_LOGS_PARTITION_INTERVAL: 'fortnight'}})
      expect(exitCode).to.equal(2)
      expect(stderr).to.contain('partitionInterval').and.contain('fortnight').and.contain('month, week, day')
    })
  })
})
