import {mkdtempSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import pg from 'pg'
import {clientConfig, withDatabase} from '../../src/stores/postgres/connection.js'
import {type CliResult, runCli} from '../helpers/cli.js'
import {dropDatabase, dropRoles, serverUrl} from '../helpers/db.js'

const uniq = () => Math.random().toString(36).slice(2, 8)
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'audit-logs-config-e2e-'))
/** Nothing configured but what the test gives: a working directory of its own (no .env, no config file). */
const isolated = (dir = tmp()) => ({cwd: dir, env: {AUDIT_LOGS_DATA_DIR: path.join(dir, 'data')}})

describe('configuration (subprocess)', function () {
  this.timeout(120_000)

  describe('a .env file in the working directory', () => {
    const dbName = `e2e_dotenv_${uniq()}`
    after(async () => {
      await dropDatabase(dbName)
      await dropRoles(dbName)
    })

    it('setup-db takes AUDIT_LOGS_ADMIN_URL and the role passwords from it', async () => {
      const {cwd, env} = isolated()
      const writerPassword = `dotenv-writer-${uniq()}`
      writeFileSync(path.join(cwd, '.env'), `AUDIT_LOGS_ADMIN_URL='${serverUrl()}'\nAUDIT_LOGS_WRITER_PASSWORD='${writerPassword}'\n`)
      // the configured server is one that does not answer: only the .env's admin URL can make this work
      const r = await runCli(['setup-db', '--db-name', dbName, '--premake', '0', '--json'], {
        cwd,
        env: {...env, AUDIT_LOGS_DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none'},
      })
      expect(r.exitCode, r.stderr).to.equal(0)
      const result = r.json()
      expect(result.changed).to.equal(true)
      // the writer's password came from .env: only the other two were generated and printed
      expect(result.credentials.map((c: {role: string}) => c.role)).to.deep.equal([`${dbName}_owner`, `${dbName}_reader`])
      expect(r.stdout + r.stderr).to.not.contain(writerPassword)
      const url = new URL(withDatabase(serverUrl(), dbName))
      url.username = `${dbName}_writer`
      url.password = encodeURIComponent(writerPassword)
      const writer = new pg.Client(clientConfig(url.toString()))
      await writer.connect()
      await writer.end()
    })

    it('run takes AUDIT_LOGS_HANDOFF_MAX_BYTES from it, through the configuration: a bad value is refused and named', async () => {
      const {cwd, env} = isolated()
      writeFileSync(path.join(cwd, '.env'), 'AUDIT_LOGS_HANDOFF_MAX_BYTES=lots\n')
      // overlapping addresses: should the value be ignored, run stops there (exit 2 too) before starting anything
      const r = await runCli(['run', '--upstream', 'http://127.0.0.1:3000', '--bind', '127.0.0.1:9', '--admin-bind', '127.0.0.1:9'], {
        cwd,
        env,
      })
      expect(r.exitCode, r.stderr).to.equal(2)
      expect(r.stderr)
        .to.contain('handoffMaxBytes')
        .and.contain('AUDIT_LOGS_HANDOFF_MAX_BYTES')
        .and.contain('"lots"')
        .and.contain('a whole number')
    })
  })

  describe('a URL setting that does not parse: exit 2, the setting named, the password never shown', () => {
    // '#' and '/' unencoded in the password end the URL's host early
    const password = 'p#ss/word'
    const bad = `postgres://audit:${password}@127.0.0.1:5432/audit_logs`
    const noScheme = `audit:${password}@127.0.0.1:5432/audit_logs`
    const debug = {DEBUG: 'audit-logs:*'}
    const hidden = (r: CliResult) => {
      for (const part of [password, 'p#ss', 'ss/word', 'p%23ss']) expect(r.stdout + r.stderr).to.not.contain(part)
    }

    for (const [what, url] of [
      ['an unencoded # and / in the password', bad],
      ['no scheme', noScheme],
    ]) {
      it(`AUDIT_LOGS_DATABASE_URL with ${what}, with DEBUG=audit-logs:*`, async () => {
        const {cwd, env} = isolated()
        const r = await runCli(['partitions', 'list'], {cwd, env: {...env, ...debug, AUDIT_LOGS_DATABASE_URL: url}})
        expect(r.exitCode, r.stderr).to.equal(2)
        expect(r.stderr)
          .to.contain('databaseUrl')
          .and.contain('AUDIT_LOGS_DATABASE_URL')
          .and.contain('percent-encode')
          .and.contain('audit:****@127.0.0.1:5432/audit_logs')
        expect(r.stderr).to.not.contain('Invalid URL')
        hidden(r)
      })

      it(`--database-url with ${what}, in --json`, async () => {
        const {cwd, env} = isolated()
        const r = await runCli(['cleanup', '--dry-run', '--json', '--database-url', url], {cwd, env: {...env, ...debug}})
        expect(r.exitCode, r.stdout + r.stderr).to.equal(2)
        const doc = r.json()
        expect(doc.error.exit).to.equal(2)
        expect(doc.error.message).to.contain('--database-url').and.contain('percent-encode')
        hidden(r)
      })

      it(`setup-db --admin-url with ${what}`, async () => {
        const {cwd, env} = isolated()
        const r = await runCli(['setup-db', '--db-name', `never_${uniq()}`, '--admin-url', url], {cwd, env: {...env, ...debug}})
        expect(r.exitCode, r.stderr).to.equal(2)
        expect(r.stderr).to.contain('adminUrl').and.contain('--admin-url').and.contain('percent-encode')
        hidden(r)
      })
    }

    it('AUDIT_LOGS_ADMIN_URL in .env with such a password', async () => {
      const {cwd, env} = isolated()
      writeFileSync(path.join(cwd, '.env'), `AUDIT_LOGS_ADMIN_URL='${bad}'\n`)
      // a configured server that does not answer: should the .env's value be ignored, setup-db fails there, without starting an embedded one
      const r = await runCli(['setup-db', '--db-name', `never_${uniq()}`], {
        cwd,
        env: {...env, ...debug, AUDIT_LOGS_DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none'},
      })
      expect(r.exitCode, r.stderr).to.equal(2)
      expect(r.stderr).to.contain('AUDIT_LOGS_ADMIN_URL').and.contain('percent-encode')
      hidden(r)
    })

    it('run --upstream with a password, or a port out of range', async () => {
      const {cwd, env} = isolated()
      const withPassword = await runCli(['run', '--upstream', `http://app:${password}@127.0.0.1:3000`], {cwd, env: {...env, ...debug}})
      expect(withPassword.exitCode, withPassword.stderr).to.equal(2)
      expect(withPassword.stderr).to.contain('--upstream').and.contain('without user')
      hidden(withPassword)
      const badPort = await runCli(
        ['run', '--upstream', 'http://127.0.0.1:99999', '--bind', '127.0.0.1:0', '--admin-bind', '127.0.0.1:0'],
        {cwd, env},
      )
      expect(badPort.exitCode, badPort.stderr).to.equal(2)
      expect(badPort.stderr).to.contain('upstream').and.contain('--upstream').and.not.contain('Invalid URL')
    })
  })

  it('setup-db --admin-url that does not answer: the hint names --admin-url, not --database-url', async () => {
    const {cwd, env} = isolated()
    const r = await runCli(
      ['setup-db', '--db-name', `never_${uniq()}`, '--admin-url', 'postgres://admin:s3cr3t-pass@127.0.0.1:1/postgres'],
      {cwd, env},
    )
    expect(r.exitCode, r.stderr).to.equal(3)
    expect(r.stderr).to.contain('Cannot connect to PostgreSQL at postgres://admin:****@127.0.0.1:1/postgres').and.contain('--admin-url')
    expect(r.stderr).to.not.contain('--database-url').and.not.contain('s3cr3t-pass')
  })
})
