import {mkdtempSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {resolveConfig} from '../../src/config/resolve.js'
import {AuditLogsError, ExitCode} from '../../src/errors.js'
import {redactText, redactUrl, registerSecret, registerUrlPassword} from '../../src/util/redact.js'

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'audit-logs-config-'))

async function rejection(p: Promise<unknown>): Promise<AuditLogsError> {
  try {
    await p
  } catch (error) {
    return error as AuditLogsError
  }
  throw new Error('expected a rejection')
}

describe('resolveConfig', () => {
  it('uses defaults when nothing is set', async () => {
    const config = await resolveConfig({env: {}, cwd: tmp()})
    expect(config).to.include({
      dataDir: '.audit-logs',
      partitionInterval: 'month',
      premake: 3,
      requestRetentionDays: 90,
      accessRetentionDays: 120,
      cleanupBatchSize: 5000,
    })
    expect(config.databaseUrl).to.equal(undefined)
    expect(config.dbName).to.equal(undefined)
  })

  it('ranks flags over environment over config file over defaults', async () => {
    const dir = tmp()
    writeFileSync(
      path.join(dir, 'audit-logs.config.json'),
      JSON.stringify({premake: 5, dbName: 'from_file', requestRetentionDays: 30, accessRetentionDays: 60}),
    )
    const config = await resolveConfig({
      cwd: dir,
      env: {AUDIT_LOGS_PREMAKE: '7', AUDIT_LOGS_DB_NAME: 'from_env'},
      flags: {dbName: 'from_flag'},
    })
    expect(config.dbName).to.equal('from_flag')
    expect(config.premake).to.equal(7)
    expect(config.requestRetentionDays).to.equal(30)
    expect(config.accessRetentionDays).to.equal(60)
  })

  it('reads an ES module config file given with --config, keeping its functions aside', async () => {
    const dir = tmp()
    const file = path.join(dir, 'custom.mjs')
    writeFileSync(file, 'export default {partitionInterval: "week", userId: (req) => "u"}\n')
    const config = await resolveConfig({cwd: dir, env: {}, configFile: file})
    expect(config.partitionInterval).to.equal('week')
    expect(config.extras.userId).to.be.a('function')
  })

  it('reads .env in the working directory, below the real environment', async () => {
    const dir = tmp()
    writeFileSync(path.join(dir, '.env'), 'AUDIT_LOGS_CLEANUP_BATCH_SIZE=77\n')
    const before = process.env.AUDIT_LOGS_CLEANUP_BATCH_SIZE
    try {
      const config = await resolveConfig({cwd: dir})
      expect(config.cleanupBatchSize).to.equal(77)
    } finally {
      if (before === undefined) delete process.env.AUDIT_LOGS_CLEANUP_BATCH_SIZE
      else process.env.AUDIT_LOGS_CLEANUP_BATCH_SIZE = before
    }
  })

  it("builds the URL from the seeds' split settings when no URL is given", async () => {
    const config = await resolveConfig({
      cwd: tmp(),
      env: {AUDIT_LOGS_DB_HOST: 'db.internal', AUDIT_LOGS_DB_USER: 'audit', AUDIT_LOGS_DB_PASSWORD: 'p@ss', AUDIT_LOGS_DB_PORT: '6543'},
    })
    expect(config.databaseUrl).to.equal('postgres://audit:p%40ss@db.internal:6543/postgres')
  })

  it('names the key, the value, the source and what is accepted for a bad value', async () => {
    const error = await rejection(resolveConfig({cwd: tmp(), env: {AUDIT_LOGS_PARTITION_INTERVAL: 'year'}}))
    expect(error.exit).to.equal(ExitCode.usage)
    expect(error.message)
      .to.contain('partitionInterval')
      .and.contain('"year"')
      .and.contain('AUDIT_LOGS_PARTITION_INTERVAL')
      .and.contain('month, week, day')
    const negative = await rejection(resolveConfig({cwd: tmp(), env: {}, flags: {requestRetentionDays: -3}}))
    expect(negative.message).to.contain('requestRetentionDays').and.contain('-3').and.contain('at least 1')
  })

  it('takes an upstream with a path or an IPv6 literal; refuses one with a user, a query or a fragment (the proxy could only drop them)', async () => {
    for (const good of ['http://127.0.0.1:3000', 'https://app.internal:8443/v2/', 'http://[::1]:3000/base']) {
      expect((await resolveConfig({cwd: tmp(), env: {}, flags: {upstream: good}})).upstream).to.equal(good)
    }
    for (const bad of ['http://user:pw@app:3000', 'http://app:3000/?x=1', 'http://app:3000/#top', 'ftp://app']) {
      const error = await rejection(resolveConfig({cwd: tmp(), env: {}, flags: {upstream: bad}}))
      expect(error.exit).to.equal(ExitCode.usage)
      expect(error.message).to.contain('upstream').and.contain('without user, query or fragment')
    }
  })

  it('refuses a database name that is not a plain identifier', async () => {
    for (const bad of ['a"b', "x'; drop table request_logs; --", 'has space', '']) {
      const error = await rejection(resolveConfig({cwd: tmp(), env: {}, flags: {dbName: bad || ' '}}))
      expect(error.message).to.contain('dbName')
    }
  })

  it('never shows the password of a bad URL', async () => {
    const error = await rejection(resolveConfig({cwd: tmp(), env: {AUDIT_LOGS_DATABASE_URL: 'mysql://root:sup3rsecret@db/x'}}))
    expect(error.message).to.contain('databaseUrl').and.not.contain('sup3rsecret')
  })

  it('parses every URL setting once: one that does not parse is refused with its setting named and its password hidden', async () => {
    for (const [key, flags, env, name] of [
      ['databaseUrl', {databaseUrl: 'postgres://a:p#ss/word@h/db'}, {}, 'command-line flag --database-url'],
      ['adminUrl', {}, {AUDIT_LOGS_ADMIN_URL: 'postgres://a:p#ss/word@h/db'}, 'environment AUDIT_LOGS_ADMIN_URL'],
      ['databaseUrl', {}, {AUDIT_LOGS_DATABASE_URL: 'a:p#ss/word@h/db'}, 'environment AUDIT_LOGS_DATABASE_URL'],
      ['upstream', {upstream: 'http://127.0.0.1:99999'}, {}, 'command-line flag --upstream'],
    ] as const) {
      const error = await rejection(resolveConfig({cwd: tmp(), env, flags}))
      expect(error.exit).to.equal(ExitCode.usage)
      expect(error.message).to.contain(`${key} = `).and.contain(`(from ${name})`).and.not.contain('p#ss').and.not.contain('ss/word')
      if (key !== 'upstream') expect(error.message).to.contain('percent-encode')
    }
  })

  it('never shows a role password', async () => {
    const error = await rejection(resolveConfig({cwd: tmp(), env: {}, flags: {writerPassword: 42}}))
    expect(error.message).to.contain('writerPassword = ****').and.not.contain('42')
  })

  it('refuses unknown keys in the config file, listing the accepted ones', async () => {
    const dir = tmp()
    writeFileSync(path.join(dir, 'audit-logs.config.json'), JSON.stringify({premak: 5}))
    const error = await rejection(resolveConfig({cwd: dir, env: {}}))
    expect(error.message).to.contain('"premak"').and.contain('premake')
  })
})

describe('redaction', () => {
  it('replaces URL passwords', () => {
    expect(redactUrl('postgres://u:secret@h:5432/db')).to.equal('postgres://u:****@h:5432/db')
    expect(redactText('failed for postgresql://a:b%40c@h/db and password=hunter2')).to.equal(
      'failed for postgresql://a:****@h/db and password=****',
    )
  })

  it('hides the whole of a password that breaks the URL (an unencoded #, / or @), with or without a scheme', () => {
    expect(redactUrl('postgres://audit:p#ss/word@h:5432/db')).to.equal('postgres://audit:****@h:5432/db')
    expect(redactUrl('postgres://audit:1#ss/word@h:5432/db')).to.equal('postgres://audit:****@h:5432/db')
    expect(redactUrl('audit:p#ss/word@h:5432/db')).to.equal('audit:****@h:5432/db')
    expect(redactUrl('postgres://u:pass@word@h/db')).to.equal('postgres://u:****@h/db')
    expect(redactUrl('postgres://u:at@sign#and/slash@h/db')).to.equal('postgres://u:****@h/db') // parses, into host "sign"
    expect(redactUrl('postgres://u@h:5432/db')).to.equal('postgres://u@h:5432/db')
    expect(redactUrl('http://127.0.0.1:3000/app')).to.equal('http://127.0.0.1:3000/app')
    registerUrlPassword('postgres://u:at@sign#and/slash@h/db')
    expect(redactText('failed for postgres://u:at@sign#and/slash@h/db')).to.equal('failed for postgres://u:****@h/db')
  })

  it('scrubs registered secrets from any text', () => {
    registerSecret('tok-123456')
    expect(redactText('the token tok-123456 leaked')).to.equal('the token **** leaked')
  })
})
