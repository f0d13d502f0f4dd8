import {expect} from 'chai'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {v7 as uuidv7} from 'uuid'
import {parseFilter} from '../../src/filters/parse.js'
import {generateRecords} from '../../src/generate/records.js'
import {exportRecords} from '../../src/render/export.js'
import {PostgresSource} from '../../src/stores/postgres/source.js'
import {ACCESS_COLUMNS, REQUEST_COLUMNS} from '../../src/stores/source.js'
import {premake} from '../../src/stores/postgres/partitions.js'
import {writeRecords} from '../../src/stores/postgres/writer.js'
import {quoteIdent} from '../../src/stores/postgres/sql/quote.js'
import {type TestDatabase, freshDatabase} from '../helpers/db.js'

// Values that exercise COPY's text escapes and JSON's: every one must come out as row_to_json renders it.
const NASTY = [
  'tab\there',
  'line\nbreak\r\n',
  'back\\slash \\N \\t',
  'quote " and \' ',
  'ctl \u0001\u0008\u000b\u000c\u001f\u007f',
  'ünïcødé 日本 😀',
  '',
  '\\',
  'ends with backslash\\',
]

describe('NDJSON export from COPY text (real PostgreSQL)', () => {
  let db: TestDatabase
  let dir: string
  before(async () => {
    db = await freshDatabase({migrated: true})
    await premake(db.client, {interval: 'month', ahead: 1})
    dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-ndjson-'))
    const base = [...generateRecords({rows: 300, days: 2, seed: 5})]
    const nasty = NASTY.map((s, i) => ({
      ...base[i],
      id: uuidv7(),
      path: `/p/${s}`,
      host: s,
      user_id: s || null,
      request_body: s,
      response_body: i % 2 ? null : `{"v":${JSON.stringify(s)}}`,
      request_headers: {'x-nasty': s, [s || 'empty']: 'key'},
      query: {q: [s, s]},
      extra: i % 3 ? null : {nested: {s, n: 1.5e300, t: true, a: []}},
      flags: i % 2 ? ['slow', `suspicious:${s}`] : [],
      duration_ms: i === 0 ? 0.000123 : 123456.789,
      request_body_truncated: i % 2 === 0,
      ip: i % 2 ? '2001:db8::1' : '10.0.0.1',
    }))
    await writeRecords(db.client, 'request', [...base, ...nasty])
    await writeRecords(db.client, 'access', [...generateRecords({rows: 50, days: 2, seed: 6, logType: 'access'})])
  })
  after(async () => {
    rmSync(dir, {recursive: true, force: true})
    await db.drop()
  })

  for (const [logType, columns] of [
    ['request', REQUEST_COLUMNS],
    ['access', ACCESS_COLUMNS],
  ] as const) {
    it(`${logType} rows: byte for byte what row_to_json gives`, async () => {
      const out = path.join(dir, `${logType}.ndjson`)
      const result = await exportRecords({
        source: new PostgresSource(db.client),
        filter: parseFilter({logType}),
        format: 'ndjson',
        out,
        gzip: false,
        version: 'test',
      })
      const cols = columns.map((c) => (c === 'ip' ? 'host(ip) AS ip' : quoteIdent(c))).join(', ')
      const table = logType === 'request' ? 'request_logs' : 'access_logs'
      const {rows} = await db.client.query(
        `SELECT row_to_json(r)::text AS j FROM (SELECT ${cols} FROM ${table} ORDER BY created_at DESC, id DESC) r`,
      )
      const ours = readFileSync(out, 'utf8').split('\n')
      expect(ours.pop()).to.equal('')
      expect(result.rows).to.equal(rows.length)
      // same order up to ties on created_at: compare as sorted lines
      expect([...ours].sort()).to.deep.equal(rows.map((r) => r.j as string).sort())
      for (const line of ours) JSON.parse(line)
      if (logType === 'request') {
        expect(ours).to.have.length(300 + NASTY.length)
        for (const s of NASTY)
          expect(
            ours.some((l) => JSON.parse(l).request_body === s),
            JSON.stringify(s),
          ).to.equal(true)
      }
    })
  }
})
