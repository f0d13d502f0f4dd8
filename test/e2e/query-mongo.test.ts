import {type ChildProcess, spawn} from 'node:child_process'
import {mkdtempSync, readFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {gunzipSync} from 'node:zlib'
import {expect} from 'chai'
import {generateRecords} from '../../src/generate/records.js'
import {type Doc, toDocument} from '../../src/stores/mongo/documents.js'
import {repair} from '../../src/stores/postgres/partitions.js'
import {writeRecords} from '../../src/stores/postgres/writer.js'
import {freePort} from '../../src/util/process.js'
import {BIN, ROOT, runCli} from '../helpers/cli.js'
import {type TestDatabase, freshDatabase} from '../helpers/db.js'
import {type TestMongo, freshMongo, mongoServerUri} from '../helpers/mongo.js'
import {skipUnless} from '../helpers/skip.js'

/** The ids of an export, whatever its format. */
function exportedIds(format: string, text: string): string[] {
  if (format === 'ndjson')
    return text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).id)
  if (format === 'json') return JSON.parse(text).map((r: {id: string}) => r.id)
  if (format === 'har') return JSON.parse(text).log.entries.map((e: {_id: string}) => e._id)
  return text
    .trim()
    .split('\r\n')
    .slice(1)
    .map((l) => l.split(',')[0])
}

describe('query, show, export, stats and tail --source mongo (subprocess, real PostgreSQL and MongoDB-compatible server)', function () {
  this.timeout(180_000)
  let db: TestDatabase
  let mongo: TestMongo
  let env: Record<string, string>
  const records = [...generateRecords({rows: 600, days: 10, seed: 41})]
  // a record only MongoDB holds (from the last tests on): which store a command read from
  const [onlyInMongo] = [...generateRecords({rows: 1, days: 1, seed: 42})]
  Object.assign(onlyInMongo, {user_id: 'only-in-mongo', created_at: new Date(Date.now() - 60_000).toISOString()})
  const requests = () => mongo.client.db(mongo.dbName).collection<Doc>('request_logs')

  before(async function () {
    skipUnless(this, !!mongoServerUri(), 'no MongoDB server', {expectedInCi: true})
    db = await freshDatabase({migrated: true})
    await writeRecords(db.client, 'request', records)
    await repair(db.client, 'month')
    mongo = await freshMongo('cli')
    await requests().insertMany(records.map((r) => toDocument('request', r)))
    env = {AUDIT_LOGS_DATABASE_URL: db.url, AUDIT_LOGS_MONGO_URI: mongo.uri, AUDIT_LOGS_MONGO_DB_NAME: mongo.dbName}
  })
  after(async () => {
    await db?.drop()
    await mongo?.drop()
  })

  it('query --json: the records PostgreSQL gives, in its order', async () => {
    const args = ['query', '--status', '>=300', '--path', '/api/**', '--limit', '1000', '--json']
    const fromDb = await runCli(args, {env})
    const fromMongo = await runCli([...args, '--source', 'mongo'], {env})
    expect(fromMongo.exitCode, fromMongo.stderr).to.equal(0)
    const ids = fromMongo.json().records.map((r: {id: string}) => r.id)
    expect(ids).to.deep.equal(fromDb.json().records.map((r: {id: string}) => r.id))
    expect(ids.length).to.be.greaterThan(20)
    expect(fromMongo.json().records[0].created_at).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  })

  it('show ID: the same record as PostgreSQL; an unknown id is an error', async () => {
    const id = String(records[9].id)
    const a = (await runCli(['show', id, '--json'], {env})).json()
    const b = await runCli(['show', id, '--json', '--source', 'mongo'], {env})
    expect(b.exitCode, b.stderr).to.equal(0)
    expect(b.json()).to.deep.equal(a)
    const unknown = await runCli(['show', '01a20cc4-2be0-720d-89d3-7a27694234dc', '--source', 'mongo'], {env})
    expect(unknown.exitCode).to.equal(2)
    expect(unknown.stderr).to.contain('No record with id')
  })

  it('export --format csv, ndjson, json, har (and --gzip): the records PostgreSQL exports, newest first', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-export-mongo-'))
    for (const format of ['csv', 'ndjson', 'json', 'har']) {
      for (const gzip of format === 'ndjson' ? [false, true] : [false]) {
        const name = (from: string) => path.join(dir, `${from}.${format}${gzip ? '.gz' : ''}`)
        const args = ['export', '--status', '4xx', '--format', format, ...(gzip ? ['--gzip'] : [])]
        const fromDb = await runCli([...args, '--out', name('pg')], {env})
        const fromMongo = await runCli([...args, '--source', 'mongo', '--out', name('mongo')], {env})
        expect(fromDb.exitCode, fromDb.stderr).to.equal(0)
        expect(fromMongo.exitCode, fromMongo.stderr).to.equal(0)
        const read = (file: string) => (gzip ? gunzipSync(readFileSync(file)) : readFileSync(file)).toString()
        const ids = exportedIds(format, read(name('mongo')))
        expect(ids, `${format}${gzip ? ' gzip' : ''}`).to.deep.equal(exportedIds(format, read(name('pg'))))
        expect(ids.length).to.be.greaterThan(20)
        expect(fromMongo.stderr).to.contain(`Exported ${ids.length} record(s)`)
      }
    }
  })

  it('stats --json: the figures PostgreSQL gives, top lists and histogram included', async () => {
    const since = new Date(Date.now() - 3 * 86_400_000).toISOString()
    for (const filter of [
      ['--status', '>=200'],
      ['--path', '/api/**', '--method', 'GET,POST'],
      ['--since', since, '--bucket', 'hour', '--top', '3'],
    ]) {
      const args = ['stats', ...filter, '--json']
      const fromDb = await runCli(args, {env})
      const fromMongo = await runCli([...args, '--source', 'mongo'], {env})
      expect(fromMongo.exitCode, fromMongo.stderr).to.equal(0)
      expect(fromMongo.json(), filter.join(' ')).to.deep.equal(fromDb.json())
      expect(fromDb.json().total).to.be.greaterThan(50)
    }
  })

  it('tail: records inserted after it starts, the filter applied (FerretDB: by polling)', async () => {
    const child: ChildProcess = spawn(
      process.execPath,
      [BIN, 'tail', '--source', 'mongo', '--status', '5xx', '--format', 'ndjson', '--interval', '200'],
      {cwd: ROOT, env: {...process.env, ...env, OCLIF_SKIP_NEW_VERSION_CHECK: '1'}, stdio: ['ignore', 'pipe', 'pipe']},
    )
    let out = ''
    let err = ''
    child.stdout!.on('data', (d) => (out += d))
    child.stderr!.on('data', (d) => (err += d))
    const exited = new Promise((r) => child.once('exit', r))
    try {
      await new Promise((r) => setTimeout(r, 3000)) // started and reading
      const [ok, failed] = [...generateRecords({rows: 2, days: 0, seed: 43})]
      Object.assign(ok, {status_code: 200, created_at: new Date().toISOString()})
      Object.assign(failed, {status_code: 504, created_at: new Date().toISOString()})
      await requests().insertMany([toDocument('request', ok), toDocument('request', failed)])
      const deadline = Date.now() + 20_000
      while (!out.includes(String(failed.id)) && Date.now() < deadline && child.exitCode === null)
        await new Promise((r) => setTimeout(r, 100))
      expect(out, err).to.contain(String(failed.id))
      expect(out).to.not.contain(String(ok.id))
      expect(JSON.parse(out.trim().split('\n').at(-1)!)).to.include({id: failed.id, status_code: 504})
    } finally {
      child.kill('SIGINT')
      await exited
    }
  })

  it('without --source: MongoDB when it is the only store; with both, PostgreSQL, or MongoDB (said on stderr) when PostgreSQL is down', async () => {
    await requests().insertOne(toDocument('request', onlyInMongo))
    const args = ['query', '--user', 'only-in-mongo', '--json']
    const mongoOnly = await runCli(args, {env: {...env, AUDIT_LOGS_STORES: 'mongo'}})
    expect(mongoOnly.exitCode, mongoOnly.stderr).to.equal(0)
    expect(mongoOnly.json().records.map((r: {id: string}) => r.id)).to.deep.equal([onlyInMongo.id])
    const both = await runCli(args, {env: {...env, AUDIT_LOGS_STORES: 'both'}})
    expect(both.json().records).to.deep.equal([])
    expect(both.stderr).to.not.contain('MongoDB')
    const down = `postgres://postgres:secret-pw@127.0.0.1:${await freePort()}/audit_logs`
    const fallback = await runCli(args, {env: {...env, AUDIT_LOGS_STORES: 'both', AUDIT_LOGS_DATABASE_URL: down}})
    expect(fallback.exitCode, fallback.stderr).to.equal(0)
    expect(fallback.json().records.map((r: {id: string}) => r.id)).to.deep.equal([onlyInMongo.id])
    expect(fallback.stderr).to.contain('Cannot connect to PostgreSQL').and.contain('reading from MongoDB instead')
    expect(fallback.stderr).to.not.contain('secret-pw')
    // asked for by name, PostgreSQL down is an error, not a silent switch
    const insisted = await runCli([...args, '--source', 'postgres'], {
      env: {...env, AUDIT_LOGS_STORES: 'both', AUDIT_LOGS_DATABASE_URL: down},
    })
    expect(insisted.exitCode).to.equal(3)
  })

  it('--source mongo without a connection string: a usage error that names the setting', async () => {
    const r = await runCli(['query', '--source', 'mongo'], {env: {AUDIT_LOGS_DATABASE_URL: db.url, AUDIT_LOGS_MONGO_URI: undefined}})
    expect(r.exitCode).to.equal(2)
    expect(r.stderr).to.contain('AUDIT_LOGS_MONGO_URI').and.contain('--mongo-uri')
  })
})
