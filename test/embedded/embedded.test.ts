import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {execa} from 'execa'
import pg from 'pg'
import {acquireEmbedded} from '../../src/embedded/server.js'
import {clientConfig} from '../../src/stores/postgres/connection.js'
import {TABLES} from '../../src/stores/postgres/partitions.js'
import {ROOT, runCli} from '../helpers/cli.js'
import {skipUnless} from '../helpers/skip.js'

const pidFile = (dir: string) => path.join(dir, 'pgdata', 'postmaster.pid')
const serverPid = (dir: string) => Number(readFileSync(pidFile(dir), 'utf8').split('\n')[0])
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function until(check: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('the embedded default (no database URL configured)', function () {
  this.timeout(120_000)
  let dir: string
  const env = () => ({AUDIT_LOGS_DATA_DIR: dir})

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-embedded-'))
  })
  afterEach(async () => {
    if (existsSync(pidFile(dir))) await (await acquireEmbedded(dir)).release()
    rmSync(dir, {recursive: true, force: true})
  })

  it('the first command initialises the server, later ones reuse its data; none leaves it running', async () => {
    const first = await runCli(['setup-db', '--json'], {env: env()})
    expect(first.exitCode, first.stderr).to.equal(0)
    expect(first.json().database).to.equal('audit_logs')
    expect(existsSync(path.join(dir, 'pgdata', 'PG_VERSION'))).to.equal(true)
    expect(existsSync(pidFile(dir))).to.equal(false)
    const second = await runCli(['setup-db', '--json'], {env: env()})
    expect(second.json().changed).to.equal(false)
    const list = await runCli(['partitions', 'list', '--json'], {env: env()})
    expect(list.exitCode, list.stderr).to.equal(0)
  })

  it('setup-db --db-name X and AUDIT_LOGS_DB_NAME=X meet in the same database', async () => {
    expect((await runCli(['setup-db', '--db-name', 'other_audit', '--premake', '1'], {env: env()})).exitCode).to.equal(0)
    const list = await runCli(['partitions', 'list', '--json'], {env: {...env(), AUDIT_LOGS_DB_NAME: 'other_audit'}})
    expect(list.exitCode, list.stderr).to.equal(0)
    expect(list.json().partitions).to.have.length(3 * TABLES.length)
    const missing = await runCli(['partitions', 'list'], {env: env()})
    expect(missing.exitCode).to.equal(3) // audit_logs was never set up here
  })

  it('reuses a server another audit-logs process runs, and leaves it running for that process', async () => {
    const holder = await acquireEmbedded(dir)
    expect(holder.started).to.equal(true)
    const pid = serverPid(dir)
    try {
      const result = await runCli(['setup-db', '--json'], {env: env()})
      expect(result.exitCode, result.stderr).to.equal(0)
      expect(serverPid(dir)).to.equal(pid) // not started twice
      const client = new pg.Client(clientConfig(holder.adminUrl))
      await client.connect() // still up for the holder
      await client.end()
    } finally {
      await holder.release()
    }
    await until(() => !alive(pid)) // the last claimant stopped it
  })

  it('recovers from a stale postmaster.pid left by a killed server', async () => {
    expect((await runCli(['setup-db'], {env: env()})).exitCode).to.equal(0)
    writeFileSync(pidFile(dir), `999999\n${path.join(dir, 'pgdata')}\n1700000000\n5432\n\n127.0.0.1\n  5432001  0\nready\n`)
    const result = await runCli(['partitions', 'list', '--json'], {env: env()})
    expect(result.exitCode, result.stderr).to.equal(0)
  })

  it('a password file lost or damaged (a crash, a hand) gets a new password; the data stays', async () => {
    expect((await runCli(['setup-db', '--db-name', 'kept_audit', '--premake', '1'], {env: env()})).exitCode).to.equal(0)
    const secret = path.join(dir, 'embedded.json')
    const before = JSON.parse(readFileSync(secret, 'utf8')).password
    for (const damage of [() => writeFileSync(secret, ''), () => rmSync(secret), () => writeFileSync(secret, '{"port": 5')]) {
      damage()
      const list = await runCli(['partitions', 'list', '--json'], {env: {...env(), AUDIT_LOGS_DB_NAME: 'kept_audit'}})
      expect(list.exitCode, list.stderr).to.equal(0)
      expect(list.json().partitions).to.have.length(3 * TABLES.length) // the database set up before is still there
    }
    const after = JSON.parse(readFileSync(secret, 'utf8')).password
    expect(after).to.be.a('string').and.not.equal(before)
    expect(existsSync(`${secret}.tmp`)).to.equal(false)
  })

  it('adopts the server orphaned by a kill -9 of its owner, then stops it', async () => {
    const holder = execa(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/helpers/hold-embedded.ts')], {
      env: env(),
      cwd: ROOT,
      reject: false,
    })
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()))
    const pid = serverPid(dir)
    holder.kill('SIGKILL')
    await holder
    expect(alive(pid)).to.equal(true) // the orphan survives its owner
    const result = await runCli(['setup-db', '--json'], {env: env()})
    expect(result.exitCode, result.stderr).to.equal(0)
    await until(() => !alive(pid))
  })

  it('stops with a clear message when the server user cannot enter the data directory', async function () {
    skipUnless(this, process.getuid?.() === 0, 'root: only root runs the server as another OS user')
    const closed = path.join(dir, 'closed')
    mkdirSync(closed, {mode: 0o700})
    const result = await runCli(['partitions', 'list'], {env: {AUDIT_LOGS_DATA_DIR: path.join(closed, 'data')}})
    expect(result.exitCode).to.equal(5)
    expect(result.stderr).to.contain('cannot enter').and.contain('AUDIT_LOGS_DATA_DIR')
    expect(existsSync(path.join(closed, 'data'))).to.equal(false) // the data directory it made, still empty, is gone
  })
})
