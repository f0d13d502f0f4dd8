import {mkdtempSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {gzipSync} from 'node:zlib'
import {expect} from 'chai'
import {generateRecords} from '../../src/generate/records.js'
import {repair} from '../../src/stores/postgres/partitions.js'
import {writeRecords} from '../../src/stores/postgres/writer.js'
import {runCli} from '../helpers/cli.js'
import {type TestDatabase, count, freshDatabase} from '../helpers/db.js'

/** RFC 4180, enough for the test: quoted fields, doubled quotes, CRLF. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let field = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++
      else if (c === '"') quoted = false
      else field += c
    } else if (c === '"') quoted = true
    else if (c === ',') row.push(field), (field = '')
    else if (c === '\r' && text[i + 1] === '\n') row.push(field), rows.push(row), (row = []), (field = ''), i++
    else field += c
  }
  return rows
}

describe('query and show (subprocess, real PostgreSQL and JSONL files)', function () {
  this.timeout(60_000)
  let db: TestDatabase
  let env: Record<string, string>
  let logDir: string
  const records = [...generateRecords({rows: 2000, days: 10, seed: 31})]
  records[3].response_body = 'a "quoted", comma\r\nand a new line'

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
    for (const args of [['--path', "/'; drop table request_logs; --"], ['--user', "x' or '1'='1"], ['--search', "%' or 1=1 --"]]) {
      const r = await runCli(['query', ...args, '--json'], {env})
      expect(r.exitCode, r.stderr).to.equal(0)
      expect(r.json().records).to.deep.equal([])
    }
    expect(await count(db.client, 'request_logs')).to.equal(2000)
  })
})
