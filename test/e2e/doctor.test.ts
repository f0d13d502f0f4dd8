import {randomBytes} from 'node:crypto'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import pg from 'pg'
import {clientConfig, withDatabase} from '../../src/stores/postgres/connection.js'
import {partitionName, plannedPeriods} from '../../src/stores/postgres/periods.js'
import {freePort} from '../../src/util/process.js'
import {type CliResult, runCli} from '../helpers/cli.js'
import {dropDatabase, dropRoles, serverUrl} from '../helpers/db.js'
import {type TestMongo, ferretDbBuilt, freshMongo, isFerretDb, mongoServerUri, startFerretDb} from '../helpers/mongo.js'
import {type RunningServer, request, startRun, until} from '../helpers/run-server.js'
import {skipUnless} from '../helpers/skip.js'
import {type Upstream, startUpstream} from '../helpers/upstream.js'

type Check = {check: string; state: 'ok' | 'warn' | 'fail' | 'skip'; message: string; fix?: string}

const PASSWORDS = {
  AUDIT_LOGS_OWNER_PASSWORD: 'owner-Pw-' + randomBytes(6).toString('hex'),
  AUDIT_LOGS_WRITER_PASSWORD: 'writer-Pw-' + randomBytes(6).toString('hex'),
  AUDIT_LOGS_READER_PASSWORD: 'reader-Pw-' + randomBytes(6).toString('hex'),
}

/** Every record of every log table, in a stable order: what doctor must leave as it found it. */
async function snapshot(client: pg.Client): Promise<string> {
  const out: unknown[] = []
  for (const t of ['request_logs', 'access_logs', 'event_logs', 'outbound_logs', 'app_logs'])
    out.push((await client.query(`SELECT * FROM ${t} ORDER BY id`)).rows)
  return JSON.stringify(out)
}

/**
 * The test app for a suite's runs, and the run a test starts (ctx.run): the run is stopped, if a test left it
 * up, and the app closed after the suite. Call it inside `describe`; ctx.upstream is set once `before` has run.
 */
function upstreamAndRun(): {upstream: Upstream; run: RunningServer | undefined} {
  const ctx = {run: undefined} as {upstream: Upstream; run: RunningServer | undefined}
  before(async () => {
    ctx.upstream = await startUpstream()
  })
  after(async () => {
    await ctx.run?.stop()
    await ctx.upstream?.close()
  })
  return ctx
}

describe('audit-logs doctor (subprocess, against setups broken each way)', function () {
  this.timeout(180_000)
  const name = `dr_${randomBytes(4).toString('hex')}`
  let url: string
  let su: pg.Client
  let dir: string

  /** doctor --json in `dir`, as the superuser of the test server with the roles' passwords, unless `env` says otherwise. */
  const doctor = (args: string[] = [], env: Record<string, string | undefined> = {}): Promise<CliResult> =>
    runCli(['doctor', '--json', ...args], {cwd: dir, env: {AUDIT_LOGS_DATABASE_URL: url, ...PASSWORDS, ...env}})
  const checks = (r: CliResult): Check[] => r.json().checks
  const check = (r: CliResult, name: string): Check => {
    const c = checks(r).find((x) => x.check === name)
    if (!c) throw new Error(`no check ${name} in ${r.stdout}`)
    return c
  }
  const notOk = (r: CliResult) => checks(r).filter((c) => c.state === 'warn' || c.state === 'fail')

  before(async function () {
    const setup = await runCli(['setup-db', '--database-url', serverUrl(), '--db-name', name], {env: PASSWORDS})
    expect(setup.exitCode, setup.stderr).to.equal(0)
    url = withDatabase(serverUrl(), name)
    su = new pg.Client(clientConfig(url))
    await su.connect()
    // a record in the current partition, for the "untouched" checks
    await su.query(`INSERT INTO app_logs (id, created_at, stream, message) VALUES (gen_random_uuid(), now(), 'stdout', 'kept as it is')`)
  })
  after(async () => {
    await su?.end().catch(() => {})
    await dropDatabase(name)
    await dropRoles(name)
  })
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-doctor-'))
  })
  afterEach(() => rmSync(dir, {recursive: true, force: true}))

  it('healthy: every check ok (or skipped), exit 0, the roles tried by logging in as them; as a table without --json', async () => {
    const before = await snapshot(su)
    const r = await doctor()
    expect(await snapshot(su)).to.equal(before)
    expect(r.exitCode, r.stdout + r.stderr).to.equal(0)
    expect(notOk(r)).to.deep.equal([])
    expect(r.json()).to.include({healthy: true, exitCode: 0})
    expect(check(r, 'writer role').message).to.include(`logged in as ${name}_writer`)
    expect(check(r, 'reader role').message).to.include(`logged in as ${name}_reader`)
    expect(check(r, 'migrations').state).to.equal('ok')
    // where each value came from, secrets never shown
    const settings = r.json().settings as Array<{key: string; value: string; from: string}>
    expect(settings.find((s) => s.key === 'databaseUrl')).to.include({from: 'environment AUDIT_LOGS_DATABASE_URL'})
    expect(settings.find((s) => s.key === 'writerPassword')).to.deep.include({value: '****'})
    for (const secret of [...Object.values(PASSWORDS), new URL(serverUrl()).password]) expect(r.stdout + r.stderr).not.to.include(secret)

    const table = await runCli(['doctor'], {cwd: dir, env: {AUDIT_LOGS_DATABASE_URL: url, ...PASSWORDS}})
    expect(table.exitCode).to.equal(0)
    expect(table.stdout).to.match(/│ writer role\s+│ ok\s+│/)
    expect(table.stdout).to.include('Healthy.')
    expect(table.stdout).to.include('environment AUDIT_LOGS_DATABASE_URL')
  })

  it('a bad configuration value: the configuration fails naming the value and its source, the rest is skipped, exit 6', async () => {
    const r = await doctor([], {AUDIT_LOGS_PREMAKE: 'lots'})
    expect(r.exitCode).to.equal(6)
    const c = check(r, 'configuration')
    expect(c.state).to.equal('fail')
    expect(c.message).to.include('premake = "lots" (from environment AUDIT_LOGS_PREMAKE)')
    expect(c.fix).to.be.a('string')
    expect(r.json().healthy).to.equal(false)
    // a bad URL's password is not shown either
    const bad = await doctor([], {AUDIT_LOGS_DATABASE_URL: 'http://someone:Sekr1t-pass@db.example/audit'})
    expect(bad.exitCode).to.equal(6)
    expect(check(bad, 'configuration').state).to.equal('fail')
    expect(bad.stdout + bad.stderr).not.to.include('Sekr1t-pass')
  })

  it('an unreachable database: PostgreSQL fails with its fix, its other checks are skipped, exit 6', async () => {
    const port = await freePort()
    const r = await doctor([], {AUDIT_LOGS_DATABASE_URL: `postgres://postgres:Unseen-pw1@127.0.0.1:${port}/${name}`})
    expect(r.exitCode).to.equal(6)
    expect(check(r, 'PostgreSQL')).to.include({state: 'fail'})
    expect(check(r, 'PostgreSQL').fix).to.include('--database-url')
    for (const c of ['writer role', 'reader role', 'migrations', 'partitions ahead', 'default partitions'])
      expect(check(r, c).state).to.equal('skip')
    expect(r.stdout).not.to.include('Unseen-pw1')
    expect(check(r, 'partitions ahead').message).to.equal('PostgreSQL is not reachable')
  })

  it('a server whose audit database is not set up: PostgreSQL fails with setup-db as the fix, the rest skipped as not set up (not as unreachable)', async () => {
    const r = await doctor([], {AUDIT_LOGS_DATABASE_URL: withDatabase(serverUrl(), `${name}_none`)})
    expect(r.exitCode).to.equal(6)
    expect(check(r, 'PostgreSQL')).to.include({state: 'fail', fix: 'audit-logs setup-db'})
    for (const c of ['writer role', 'reader role', 'migrations', 'partitions ahead', 'default partitions'])
      expect(check(r, c)).to.include({state: 'skip', message: 'no connection to the audit database (see PostgreSQL)'})
  })

  for (const privilege of ['SELECT', 'DELETE']) {
    it(`the writer granted ${privilege}: tried, the writer role fails with the REVOKE, and no record changes`, async () => {
      const before = await snapshot(su)
      await su.query(`GRANT ${privilege} ON app_logs TO ${name}_writer`)
      try {
        const r = await doctor()
        expect(r.exitCode).to.equal(6)
        const c = check(r, 'writer role')
        expect(c.state).to.equal('fail')
        expect(c.message).to.include(`${privilege} on app_logs`)
        expect(c.fix).to.include(`REVOKE ${privilege} ON app_logs FROM ${name}_writer`)
        expect(check(r, 'reader role').state).to.equal('ok')
      } finally {
        await su.query(`REVOKE ${privilege} ON app_logs FROM ${name}_writer`)
      }
      expect(await snapshot(su)).to.equal(before)
    })
  }

  it('the writer without the integrity grants (migrate instead of setup-db): integrity grants fails, naming them, fix setup-db', async () => {
    await su.query(`REVOKE INSERT ON integrity_digests FROM ${name}_writer`)
    try {
      const r = await doctor()
      expect(r.exitCode).to.equal(6)
      const c = check(r, 'integrity grants')
      expect(c.state).to.equal('fail')
      expect(c.message).to.include(`${name}_writer lacks INSERT on integrity_digests`)
      expect(c.fix).to.equal('audit-logs setup-db')
    } finally {
      await su.query(`GRANT INSERT ON integrity_digests TO ${name}_writer`)
    }
    expect(check(await doctor(), 'integrity grants').state).to.equal('ok')
  })

  it('a pending migration: migrations fails with setup-db as the fix (it applies them and grants the roles)', async () => {
    const {rows} = await su.query(`SELECT * FROM audit_logs_migrations WHERE version = 6`)
    await su.query(`DELETE FROM audit_logs_migrations WHERE version = 6`)
    try {
      const c = check(await doctor(), 'migrations')
      expect(c.state).to.equal('fail')
      expect(c.message).to.match(/1 pending: 0006_/)
      expect(c.fix).to.equal('audit-logs setup-db')
    } finally {
      const cols = Object.keys(rows[0])
      await su.query(
        `INSERT INTO audit_logs_migrations (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`,
        cols.map((k) => rows[0][k]),
      )
    }
  })

  it('the reader granted INSERT: the reader role fails, and nothing was inserted', async () => {
    const before = await snapshot(su)
    await su.query(`GRANT INSERT ON request_logs, app_logs TO ${name}_reader`)
    try {
      const r = await doctor()
      expect(r.exitCode).to.equal(6)
      const c = check(r, 'reader role')
      expect(c.state).to.equal('fail')
      expect(c.message).to.include('INSERT on request_logs').and.to.include('INSERT on app_logs')
      expect(check(r, 'writer role').state).to.equal('ok')
    } finally {
      await su.query(`REVOKE INSERT ON request_logs, app_logs FROM ${name}_reader`)
    }
    expect(await snapshot(su)).to.equal(before)
  })

  it('roles whose credentials are not available: a warning with the fix (exit 0, 1 with --strict); a member acts as them', async () => {
    // the owner logs in, knows neither password and is not a member of the writer or reader
    const asOwner = new URL(url)
    asOwner.username = `${name}_owner`
    asOwner.password = PASSWORDS.AUDIT_LOGS_OWNER_PASSWORD
    const noPasswords = {
      AUDIT_LOGS_DATABASE_URL: asOwner.toString(),
      AUDIT_LOGS_WRITER_PASSWORD: undefined,
      AUDIT_LOGS_READER_PASSWORD: undefined,
    }
    const r = await doctor([], noPasswords)
    expect(r.exitCode, r.stdout).to.equal(0)
    for (const role of ['writer role', 'reader role']) {
      expect(check(r, role).state).to.equal('warn')
      expect(check(r, role).message).to.include('cannot be checked')
    }
    expect(check(r, 'writer role').fix).to.include('AUDIT_LOGS_WRITER_PASSWORD')
    expect((await doctor(['--strict'], noPasswords)).exitCode).to.equal(1)
    // the superuser may act as both: tried with SET ROLE, its login not tried
    const su = await doctor([], {AUDIT_LOGS_WRITER_PASSWORD: undefined, AUDIT_LOGS_READER_PASSWORD: undefined})
    expect(check(su, 'writer role')).to.include({state: 'ok'})
    expect(check(su, 'writer role').message).to.include(`acting as ${name}_writer`)
    // a wrong password: the login is tried and refused
    const wrong = await doctor([], {AUDIT_LOGS_READER_PASSWORD: 'not-the-password'})
    expect(wrong.exitCode).to.equal(6)
    expect(check(wrong, 'reader role').state).to.equal('fail')
    expect(check(wrong, 'reader role').fix).to.include('AUDIT_LOGS_READER_PASSWORD')
  })

  it('a migration whose checksum no longer matches its file: migrations fail, exit 6', async () => {
    const {rows} = await su.query(`SELECT checksum FROM audit_logs_migrations WHERE version = 1`)
    await su.query(`UPDATE audit_logs_migrations SET checksum = repeat('0', 64) WHERE version = 1`)
    try {
      const r = await doctor()
      expect(r.exitCode).to.equal(6)
      const c = check(r, 'migrations')
      expect(c.state).to.equal('fail')
      expect(c.message).to.match(/0001_initial\.sql was changed after it was applied/)
      expect(c.fix).to.include('Restore the file')
    } finally {
      await su.query(`UPDATE audit_logs_migrations SET checksum = $1 WHERE version = 1`, [rows[0].checksum])
    }
  })

  it('a missing future partition: a warning (exit 0, 1 with --strict) whose fix, run, makes it healthy again', async () => {
    const last = plannedPeriods(new Date(), 'month', 3)[3]
    await su.query(`DROP TABLE ${partitionName('access_logs', last.from)}`)
    const r = await doctor()
    expect(r.exitCode).to.equal(0)
    const c = check(r, 'partitions ahead')
    expect(c).to.include({state: 'warn', fix: 'audit-logs partitions create'})
    expect(c.message).to.include(`access_logs ${last.from.toISOString().slice(0, 10)}`)
    expect((await doctor(['--strict'])).exitCode).to.equal(1)
    const fixed = await runCli(['partitions', 'create'], {cwd: dir, env: {AUDIT_LOGS_DATABASE_URL: url}})
    expect(fixed.exitCode, fixed.stderr).to.equal(0)
    expect(check(await doctor(), 'partitions ahead').state).to.equal('ok')
  })

  it('a missing current partition fails', async () => {
    const now = plannedPeriods(new Date(), 'month', 0)[0]
    const partition = partitionName('event_logs', now.from)
    await su.query(`ALTER TABLE event_logs DETACH PARTITION ${partition}`)
    try {
      const r = await doctor()
      expect(r.exitCode).to.equal(6)
      expect(check(r, 'partitions ahead')).to.include({state: 'fail', fix: 'audit-logs partitions create'})
    } finally {
      await su.query(
        `ALTER TABLE event_logs ATTACH PARTITION ${partition} FOR VALUES FROM ('${now.from.toISOString()}') TO ('${now.to.toISOString()}')`,
      )
    }
  })

  it('rows in a default partition: a warning naming the table and the count, fixed by partitions repair', async () => {
    await su.query(`INSERT INTO app_logs (id, created_at, message) VALUES (gen_random_uuid(), '2999-01-01T00:00:00Z', 'far ahead')`)
    try {
      const r = await doctor()
      expect(r.exitCode).to.equal(0)
      expect(check(r, 'default partitions')).to.include({state: 'warn', fix: 'audit-logs partitions repair'})
      expect(check(r, 'default partitions').message).to.include('app_logs_default 1')
      expect((await doctor(['--strict'])).exitCode).to.equal(1)
    } finally {
      await su.query(`DELETE FROM app_logs WHERE created_at = '2999-01-01T00:00:00Z'`)
    }
  })

  it('the log directory readable by others (o+r): a warning with the chmod; 0750 is ok', async () => {
    const logs = path.join(dir, 'logs')
    mkdirSync(logs)
    chmodSync(logs, 0o750)
    writeFileSync(path.join(logs, 'requests.jsonl'), '{}\n', {mode: 0o640})
    expect(check(await doctor(), 'log directory').state).to.equal('ok')
    for (const [target, mode] of [
      [logs, 0o755],
      [path.join(logs, 'requests.jsonl'), 0o644],
    ] as const) {
      chmodSync(logs, 0o750)
      chmodSync(path.join(logs, 'requests.jsonl'), 0o640)
      chmodSync(target, mode)
      const r = await doctor()
      const c = check(r, 'log directory')
      expect(c.state, `${target} ${mode.toString(8)}`).to.equal('warn')
      expect(c.message).to.include(target)
      expect(c.fix).to.equal(`chmod -R o-rwx ${logs}`)
      expect(r.exitCode).to.equal(0)
    }
    chmodSync(path.join(logs, 'requests.jsonl'), 0o640)
    chmodSync(logs, 0o777)
    expect(check(await doctor(), 'log directory').state).to.equal('warn')
  })

  it('the journal directory open to group or others (0755, a file 0644): a warning with the chmod; 0700 is ok', async () => {
    const journal = path.join(dir, 'journal')
    const env = {AUDIT_LOGS_JOURNAL_DIR: journal}
    expect(check(await doctor([], env), 'journal directory').message).to.include('does not exist yet: run makes it (mode 0700)')
    mkdirSync(journal, {mode: 0o700})
    chmodSync(journal, 0o700)
    writeFileSync(path.join(journal, '20260101T000000-1.jsonl'), '{}\n', {mode: 0o600})
    writeFileSync(path.join(journal, 'owner.pid'), '1 2\n', {mode: 0o644}) // run's claim: a pid, readable as run makes it
    expect(check(await doctor([], env), 'journal directory')).to.include({state: 'ok'})
    for (const [target, mode] of [
      [journal, 0o755],
      [journal, 0o720],
      [path.join(journal, '20260101T000000-1.jsonl'), 0o644],
    ] as const) {
      chmodSync(journal, 0o700)
      chmodSync(path.join(journal, '20260101T000000-1.jsonl'), 0o600)
      chmodSync(target, mode)
      const r = await doctor([], env)
      const c = check(r, 'journal directory')
      expect(c.state, `${target} ${mode.toString(8)}`).to.equal('warn')
      expect(c.message).to.include(`${target} (0${mode.toString(8)})`)
      expect(c.fix).to.equal(`chmod -R go-rwx ${journal}`)
      expect(r.exitCode).to.equal(0)
      expect((await doctor(['--strict'], env)).exitCode).to.equal(1)
    }
    // a dead letter in a directory of its own, open to the group
    chmodSync(journal, 0o700)
    chmodSync(path.join(journal, '20260101T000000-1.jsonl'), 0o600)
    mkdirSync(path.join(journal, 'dead-letter'), {mode: 0o700})
    writeFileSync(path.join(journal, 'dead-letter', 'postgres.jsonl'), '', {mode: 0o640})
    chmodSync(path.join(journal, 'dead-letter', 'postgres.jsonl'), 0o640)
    expect(check(await doctor([], env), 'journal directory').message).to.include(path.join(journal, 'dead-letter', 'postgres.jsonl'))
  })

  it('a log directory that cannot be written (a file in its place): it fails, exit 6', async () => {
    writeFileSync(path.join(dir, 'logs'), 'not a directory')
    const r = await doctor()
    expect(r.exitCode).to.equal(6)
    expect(check(r, 'log directory')).to.include({state: 'fail'})
    expect(check(r, 'log directory').message).to.include('is not writable')
  })

  it('a log directory of mode 0500: it fails', async function () {
    skipUnless(this, process.getuid?.() !== 0, 'root writes in a directory of mode 0500', {expectedInCi: false})
    mkdirSync(path.join(dir, 'logs'), {mode: 0o500})
    expect(check(await doctor(), 'log directory').state).to.equal('fail')
  })

  it('the journal over its fill level (warn at half, fail at 90%), a disk too small for journalMaxBytes, dead letters waiting', async () => {
    const journal = path.join(dir, '.audit-logs', 'journal')
    mkdirSync(journal, {recursive: true})
    const MiB = 1_048_576
    const bound = {AUDIT_LOGS_JOURNAL_MAX_BYTES: String(MiB)}
    writeFileSync(path.join(journal, '20260101T000000-1.jsonl'), Buffer.alloc(MiB * 0.4, 'x'))
    // an open segment whose writer is gone: counted, and left as it is (run seals it; doctor changes nothing)
    const open = path.join(journal, '20260101T000000-999999999.open')
    writeFileSync(open, Buffer.alloc(MiB * 0.2, 'x'))
    let r = await doctor([], bound)
    expect(check(r, 'journal backlog')).to.include({state: 'warn'})
    expect(check(r, 'journal backlog').message).to.include('60.0% of its bound')
    expect(r.exitCode).to.equal(0)
    expect(existsSync(open)).to.equal(true)
    writeFileSync(path.join(journal, '20260101T000001-1.jsonl'), Buffer.alloc(MiB * 0.35, 'x'))
    r = await doctor([], bound)
    expect(check(r, 'journal backlog')).to.include({state: 'fail'})
    expect(r.exitCode).to.equal(6)

    r = await doctor([], {AUDIT_LOGS_JOURNAL_MAX_BYTES: String(2 ** 52)})
    expect(check(r, 'disk free')).to.include({state: 'warn'})
    expect(check(r, 'disk free').fix).to.include('lower journalMaxBytes (AUDIT_LOGS_JOURNAL_MAX_BYTES)')
    expect(check(r, 'dead letters').state).to.equal('ok')

    mkdirSync(path.join(journal, 'dead-letter'))
    const letter = path.join(journal, 'dead-letter', 'postgres.jsonl')
    writeFileSync(
      letter,
      '{"rejected_at":"x","sink":"postgres","error":"e","id":"1"}\n{"rejected_at":"x","sink":"postgres","error":"e","id":"2"}\n',
    )
    r = await doctor()
    expect(check(r, 'dead letters')).to.include({state: 'warn'})
    expect(check(r, 'dead letters').message).to.include(`2 in ${letter}`)
  })

  describe('with a run', () => {
    const ctx = upstreamAndRun()

    it('a run holding the directories, and its /health (ok; not answering at the configured adminBind: a warning)', async () => {
      const run = (ctx.run = await startRun(['--upstream', ctx.upstream.url], {AUDIT_LOGS_DATABASE_SINK: 'false'}, {dir}))
      const same = {
        AUDIT_LOGS_DATA_DIR: path.join(dir, 'data'),
        AUDIT_LOGS_LOG_DIR: run.logDir,
        AUDIT_LOGS_ADMIN_BIND: run.adminUrl.replace('http://', ''),
      }
      const r = await doctor([], same)
      const c = check(r, 'run')
      expect(c.state).to.equal('ok')
      expect(c.message).to.include(`the journal (pid ${run.child.pid})`).and.to.include(`the log directory (pid ${run.child.pid})`)
      expect(check(r, 'run /health')).to.include({state: 'ok'})
      expect(check(r, 'log directory').state).to.equal('ok') // run made it 0750
      expect(check(r, 'journal directory').state).to.equal('ok') // and the journal 0700

      const elsewhere = await doctor([], {...same, AUDIT_LOGS_ADMIN_BIND: `127.0.0.1:${await freePort()}`})
      expect(check(elsewhere, 'run /health')).to.include({state: 'warn'})
      expect(check(elsewhere, 'run /health').message).to.include('does not answer')

      await run.stop()
      ctx.run = undefined
      const after = await doctor([], same)
      expect(check(after, 'run').message).to.include('no run holds')
      expect(check(after, 'run /health').state).to.equal('skip')
    })
  })

  describe('with a run whose journal fills', () => {
    const ctx = upstreamAndRun()

    it('a run with no sink, its journal at its bound: /health not ok (a warning), the backlog over 90% (a failure), exit 6', async () => {
      // no sink empties the journal: at its bound run drops new records and /health says so
      const noSinks = {AUDIT_LOGS_DATABASE_SINK: 'false', AUDIT_LOGS_FILE_SINK: 'false', AUDIT_LOGS_JOURNAL_MAX_BYTES: String(1_048_576)}
      const run = (ctx.run = await startRun(['--upstream', ctx.upstream.url], noSinks, {dir}))
      const body = 'x'.repeat(64 * 1024)
      await until(
        async () => {
          await request(`${run.url}/mirror`, {method: 'POST', body, headers: {'content-type': 'text/plain'}})
          const health = JSON.parse((await request(`${run.adminUrl}/health`)).body.toString())
          return health.journalFull
        },
        120_000,
        'the journal to fill',
      )
      const r = await doctor([], {
        ...noSinks,
        AUDIT_LOGS_DATA_DIR: path.join(dir, 'data'),
        AUDIT_LOGS_ADMIN_BIND: run.adminUrl.replace('http://', ''),
      })
      expect(r.exitCode).to.equal(6)
      expect(check(r, 'run').message).to.include(`the journal (pid ${run.child.pid})`)
      expect(check(r, 'run /health')).to.include({state: 'warn'})
      expect(check(r, 'run /health').message).to.match(/status (dropping|blocking) \(the journal is full\)/)
      expect(check(r, 'journal backlog').state).to.equal('fail')
      expect(check(r, 'log directory').state).to.equal('skip') // the file sink is off
    })
  })

  describe('MongoDB', () => {
    let mongo: TestMongo | undefined
    const env = () => ({AUDIT_LOGS_MONGO_URI: mongo!.uri, AUDIT_LOGS_MONGO_DB_NAME: mongo!.dbName, AUDIT_LOGS_STORES: 'mongo'})
    const db = () => mongo!.client.db(mongo!.dbName)
    before(async function () {
      skipUnless(this, !!mongoServerUri(), 'no MongoDB server', {expectedInCi: true})
      mongo = await freshMongo('doctor')
      // the passwords doctor logs in with, where the server has users (a real MongoDB)
      const setup = await runCli(['setup-db', '--store', 'mongo'], {env: {...env(), ...PASSWORDS}})
      expect(setup.exitCode, setup.stderr).to.equal(0)
    })
    after(() => mongo?.drop())

    it('the writer and reader users: tried as themselves where the server has users; skipped with its reason where it has none', async () => {
      const counts = async () => Promise.all(['request_logs', 'access_logs', 'event_logs'].map((c) => db().collection(c).countDocuments()))
      const before = await counts()
      const r = await doctor([], env())
      expect(await counts()).to.deep.equal(before)
      const writer = check(r, 'MongoDB writer user')
      const reader = check(r, 'MongoDB reader user')
      if (isFerretDb() || writer.state === 'skip') {
        // FerretDB without authentication (the test server here): usersInfo is not a command there
        for (const c of [writer, reader]) {
          expect(c.state).to.equal('skip')
          expect(c.message).to.match(
            /^FerretDB v[\d.]+ has no users \(CommandNotFound 59: .*usersInfo.*\): every connection may do everything/,
          )
        }
        expect(r.exitCode, r.stdout).to.equal(0)
        return
      }
      // a real MongoDB (not run here: this project's test server is FerretDB): setup-db made both users
      expect(writer.state, writer.message).to.equal('ok')
      expect(writer.message).to.match(/_writer may insert; find, update, delete refused on every collection/)
      expect(reader.message).to.match(/_reader may find; insert, update, delete refused on every collection/)
      const role = `${mongo!.dbName}_writer`
      const privileges = [{resource: {db: mongo!.dbName, collection: 'request_logs'}, actions: ['find']}]
      await db().command({grantPrivilegesToRole: role, privileges})
      try {
        const bad = check(await doctor([], env()), 'MongoDB writer user')
        expect(bad.state).to.equal('fail')
        expect(bad.message).to.include(`${role} may find on request_logs, beyond insert`)
      } finally {
        await db().command({revokePrivilegesFromRole: role, privileges})
      }
    })

    it('users that the server does not narrow (FerretDB with authentication: users, no roles): tried, each fails with what it may; nothing stored', async function () {
      skipUnless(this, ferretDbBuilt(), 'no FerretDB binary (test/support/ferretdb.sh builds it)', {expectedInCi: true})
      const admin = {user: 'admin', password: 'adm-' + randomBytes(6).toString('hex')}
      const server = await startFerretDb({auth: admin})
      const dbName = `doctor_auth_${randomBytes(3).toString('hex')}`
      const authEnv = {AUDIT_LOGS_MONGO_URI: server.uri, AUDIT_LOGS_MONGO_DB_NAME: dbName, AUDIT_LOGS_STORES: 'mongo'}
      const {MongoClient} = await import('mongodb')
      const client = new MongoClient(server.uri)
      try {
        const setup = await runCli(['setup-db', '--store', 'mongo'], {env: {...authEnv, ...PASSWORDS}})
        expect(setup.exitCode, setup.stderr).to.equal(0) // its users are skipped: FerretDB has no createRole
        let r = await doctor([], authEnv)
        expect(check(r, 'MongoDB writer user')).to.include({state: 'warn'})
        expect(check(r, 'MongoDB writer user').message).to.include(`no user ${dbName}_writer in ${dbName}`)
        await client.connect()
        const adb = client.db(dbName)
        await adb.collection('request_logs').insertOne({_id: 'kept' as never, method: 'GET'})
        await adb.command({createUser: `${dbName}_writer`, pwd: PASSWORDS.AUDIT_LOGS_WRITER_PASSWORD, roles: []})
        await adb.command({createUser: `${dbName}_reader`, pwd: PASSWORDS.AUDIT_LOGS_READER_PASSWORD, roles: []})
        r = await doctor([], authEnv)
        const writer = check(r, 'MongoDB writer user')
        expect(writer.state).to.equal('fail')
        expect(writer.message).to.match(
          new RegExp(
            `^${dbName}_writer may find, update, delete on request_logs, access_logs, .*, beyond insert \\(tried as ${dbName}_writer`,
          ),
        )
        expect(writer.fix).to.include('revokePrivilegesFromRole')
        const reader = check(r, 'MongoDB reader user')
        expect(reader.state).to.equal('fail')
        expect(reader.message).to.match(new RegExp(`^${dbName}_reader may insert, update, delete on .*, beyond find`))
        expect(r.exitCode).to.equal(6)
        // the probes left nothing: the one document, as it was
        expect(await adb.collection('request_logs').find({}).toArray()).to.deep.equal([{_id: 'kept', method: 'GET'}])
        for (const c of ['access_logs', 'event_logs', 'outbound_logs', 'app_logs'])
          expect(await adb.collection(c).countDocuments()).to.equal(0)
        // a wrong password: the login fails, and the password is shown nowhere
        const wrong = await doctor([], {...authEnv, AUDIT_LOGS_WRITER_PASSWORD: 'not-the-password-42'})
        expect(check(wrong, 'MongoDB writer user')).to.include({state: 'fail'})
        expect(check(wrong, 'MongoDB writer user').message).to.include(`cannot log in as ${dbName}_writer`)
        expect(check(wrong, 'MongoDB writer user').fix).to.equal(
          `set writerPassword (AUDIT_LOGS_WRITER_PASSWORD) to ${dbName}_writer's password`,
        )
        expect(wrong.stdout + wrong.stderr).not.to.include('not-the-password-42')
        expect(wrong.stdout + wrong.stderr).not.to.include(admin.password)
        // no password configured: cannot be checked, a warning
        const none = await doctor([], {...authEnv, AUDIT_LOGS_READER_PASSWORD: undefined})
        expect(check(none, 'MongoDB reader user')).to.include({state: 'warn'})
        expect(check(none, 'MongoDB reader user').message).to.include('no readerPassword (AUDIT_LOGS_READER_PASSWORD) is configured')
      } finally {
        await client.close().catch(() => {})
        await server.stop()
      }
    })

    it('collections and indexes as setup-db makes them: ok; an index dropped: fails, exit 6', async () => {
      let r = await doctor([], env())
      expect(r.exitCode, r.stdout).to.equal(0)
      expect(check(r, 'MongoDB').state).to.equal('ok')
      expect(check(r, 'MongoDB collections and indexes').state).to.equal('ok')
      expect(checks(r).some((c) => c.check === 'PostgreSQL')).to.equal(false) // stores = mongo
      const collection = db().collection('request_logs')
      const index = (await collection.indexes()).find((i) => i.name !== '_id_')!
      await collection.dropIndex(index.name!)
      r = await doctor([], env())
      expect(r.exitCode).to.equal(6)
      expect(check(r, 'MongoDB collections and indexes')).to.include({state: 'fail', fix: 'audit-logs setup-db --store mongo'})
      expect(check(r, 'MongoDB collections and indexes').message).to.include('request_logs')
      const fixed = await runCli(['setup-db', '--store', 'mongo'], {env: env()})
      expect(fixed.exitCode, fixed.stderr).to.equal(0)
      expect(check(await doctor([], env()), 'MongoDB collections and indexes').state).to.equal('ok')
    })

    it('a validator missing: a warning (skipped on FerretDB, which implements none)', async function () {
      let r = await doctor([], env())
      if (isFerretDb() || check(r, 'MongoDB validators').state === 'skip') {
        expect(check(r, 'MongoDB validators').message).to.match(/FerretDB .*implements no validators/)
        this.skip() // FerretDB implements no validators (nor collMod): there is none to remove
      }
      expect(check(r, 'MongoDB validators').state).to.equal('ok')
      await db().command({collMod: 'event_logs', validator: {}})
      r = await doctor([], env())
      expect(check(r, 'MongoDB validators')).to.include({state: 'warn'})
      expect(check(r, 'MongoDB validators').message).to.include('event_logs')
    })

    it('an unreachable MongoDB fails', async () => {
      const r = await doctor([], {AUDIT_LOGS_MONGO_URI: `mongodb://127.0.0.1:${await freePort()}/`, AUDIT_LOGS_STORES: 'both'})
      expect(r.exitCode).to.equal(6)
      expect(check(r, 'MongoDB').state).to.equal('fail')
      expect(check(r, 'PostgreSQL').state).to.equal('ok')
    })
  })
})
