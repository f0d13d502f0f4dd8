import {expect} from 'chai'
import {parseMigration} from '../../src/stores/postgres/migrations.js'
import {parseFilter} from '../../src/filters/parse.js'
import * as partitions from '../../src/stores/postgres/sql/partitions.js'
import * as reader from '../../src/stores/postgres/sql/reader.js'
import * as stats from '../../src/stores/postgres/sql/stats.js'
import * as retention from '../../src/stores/postgres/sql/retention.js'
import * as session from '../../src/stores/postgres/sql/session.js'
import * as setup from '../../src/stores/postgres/sql/setup.js'
import * as writer from '../../src/stores/postgres/sql/writer.js'
import {jsonbSafe} from '../../src/stores/postgres/writer.js'
import {quoteIdent} from '../../src/stores/postgres/sql/quote.js'

describe('SQL builders', () => {
  it('quote identifiers so a quote cannot end them', () => {
    expect(quoteIdent('a"b')).to.equal('"a""b"')
    expect(session.setLocalRole('owner"; RESET ROLE; --').text).to.equal('SET LOCAL ROLE "owner""; RESET ROLE; --"')
    expect(setup.createDatabase('x"; DROP TABLE t; --', 'owner').text).to.contain('"x""; DROP TABLE t; --"')
  })

  it('pass values as parameters, never in the text', () => {
    const cutoff = new Date('2026-01-01T00:00:00Z')
    const q = retention.deleteBatch('request_logs_p20251201', cutoff, 5000)
    expect(q.text).to.contain('$1').and.contain('$2').and.not.contain('2026-01-01')
    expect(q.values).to.deep.equal([cutoff, 5000])
    expect(setup.roleExists("r' OR '1'='1").values).to.deep.equal(["r' OR '1'='1"])
  })

  it('read records with the filter in values only, newest first unless asked', () => {
    const hostile = "x' OR '1'='1"
    const f = parseFilter({user: hostile, path: '/api/**', status: '5xx'})
    const q = reader.selectRecords(f, ['id', 'ip', 'user_id'], 20)
    expect(q.text)
      .to.match(/ORDER BY "request_logs"\.created_at DESC, "request_logs"\.id DESC LIMIT \$\d+$/)
      .and.contain('host(ip) AS ip')
      .and.contain('id::text AS id')
    expect(q.text).to.not.contain(hostile)
    expect(q.values).to.include(hostile).and.include(20)
    expect(reader.selectRecords(f, ['id'], 5, 'oldest').text).to.contain('ORDER BY "request_logs".created_at ASC, "request_logs".id ASC')
    expect(reader.selectJson(f, ['id'], 5).text).to.match(/^SELECT row_to_json\(r\)::text AS j FROM \(SELECT /)
    expect(reader.selectById('access', ['id'], hostile)).to.deep.equal({
      text: 'SELECT id::text AS id FROM "access_logs" WHERE id = $1::uuid',
      values: [hostile],
    })
  })

  it('read the page after a cursor with the cursor in values only, in a form the created_at index serves', () => {
    const after = {created_at: '2026-11-24T11:59:59.123Z', id: '01a20cc4-2be0-720d-89d3-7a27694234dc'}
    const q = reader.selectRecords(parseFilter({status: '5xx'}), ['id'], 7, 'newest', after)
    expect(q.text).to.contain(
      'AND created_at <= $3 AND (created_at < $3 OR id < $4::uuid) ORDER BY "request_logs".created_at DESC, "request_logs".id DESC LIMIT $5',
    )
    expect(q.values).to.deep.equal([500, 599, new Date(after.created_at), after.id, 7])
    expect(reader.selectRecords(parseFilter({}), ['id'], 7, 'oldest', after).text).to.contain(
      'WHERE TRUE AND created_at >= $1 AND (created_at > $1 OR id > $2::uuid) ORDER BY "request_logs".created_at ASC, "request_logs".id ASC LIMIT $3',
    )
  })
  it('COPY an export with the filter values in a temporary table, never in the COPY text', () => {
    const hostile = "x'); DROP TABLE request_logs; --"
    const {setup: steps, copy} = reader.copyExport(parseFilter({user: hostile}), ['id', 'user_id', 'status_code'], 'csv')
    expect(copy).to.contain('(SELECT p1 FROM audit_export_params)').and.contain('FORMAT csv, HEADER')
    expect(copy).to.not.contain(hostile)
    expect(steps.at(-1)).to.deep.equal({text: 'INSERT INTO audit_export_params VALUES ($1)', values: [hostile]})
    // CSV injection: text columns that start like a formula get a quote; numbers never do
    expect(copy)
      .to.contain(`CASE WHEN "user_id"::text ~ '^[-=+@\\t\\r]' THEN '''' || "user_id"::text`)
      .and.contain('"status_code"::text AS "status_code"')
    expect(reader.copyExport(parseFilter({}), ['id'], 'ndjson').copy).to.not.contain('FORMAT csv')
  })

  it('compute stats from our own expressions; only the filter and limits are values', () => {
    const f = parseFilter({logType: 'access', user: "u'1"})
    expect(stats.statsTotals(f).text).to.contain('FROM "access_logs"').and.contain('0 AS slow')
    const top = stats.statsTop(f, 'path', 7)
    expect(top.text).to.contain("split_part(url, '?', 1) AS k")
    expect(top.text).to.not.contain("u'1")
    expect(top.values).to.deep.equal(["u'1", 7])
    expect(stats.statsHistogram(parseFilter({}), 'hour')).to.deep.include({values: ['hour']})
    expect(stats.statsHistogram(parseFilter({}), 'minute')).to.deep.include({values: ['minute']})
    // outbound records have no flags
    expect(stats.statsTotals(parseFilter({logType: 'outbound'})).text)
      .to.contain('FROM "outbound_logs"')
      .and.contain('0 AS slow')
      .and.contain('0 AS suspicious')
  })

  it('list the slowest and the most failing paths by our own expressions; only the filter and the limit are values', () => {
    const hostile = "/x'; DROP TABLE access_logs; --"
    const f = parseFilter({logType: 'access', path: hostile, status: '>=200'})
    const slow = stats.statsSlowPaths(f, 5)
    expect(slow.text)
      .to.contain("SELECT split_part(url, '?', 1) AS k, count(duration_ms) AS n")
      .and.contain('round(round(sum(duration_ms)::numeric, 3) / count(duration_ms), 1) AS avg, max(duration_ms) AS max')
      .and.contain('FROM "access_logs"')
      .and.contain("AND split_part(url, '?', 1) IS NOT NULL AND duration_ms IS NOT NULL")
      .and.match(/GROUP BY 1 ORDER BY 3 DESC, split_part\(url, '\?', 1\) COLLATE "C" LIMIT \$4$/)
    expect(slow.text).to.not.contain('DROP')
    expect(slow.values).to.have.length(4).and.include(200).and.include(5)
    const failing = stats.statsFailingPaths(parseFilter({user: "u'1"}), 7)
    expect(failing.text)
      .to.contain('SELECT path AS k, count(*) AS n, count(*) FILTER (WHERE status_code >= 500) AS errors')
      .and.contain('FROM "request_logs"')
      .and.match(/GROUP BY 1 HAVING count\(\*\) FILTER \(WHERE status_code >= 500\) > 0 ORDER BY 3 DESC, path COLLATE "C" LIMIT \$2$/)
    expect(failing.text).to.not.contain("u'1")
    expect(failing.values).to.deep.equal(["u'1", 7])
    expect(stats.statsSlowPaths(parseFilter({logType: 'outbound'}), 3).text)
      .to.contain('SELECT path AS k')
      .and.contain('FROM "outbound_logs"')
  })

  it('never put a plain password in CREATE ROLE (a SCRAM verifier is sent)', () => {
    expect(setup.createRole('w', 'SCRAM-SHA-256$4096:abc$def:ghi').text).to.equal(
      `CREATE ROLE "w" LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc$def:ghi'`,
    )
  })

  it('attach partitions with bounds as ISO literals', () => {
    const q = partitions.attachPartition(
      'request_logs',
      'request_logs_p20261101',
      new Date('2026-11-01T00:00:00Z'),
      new Date('2026-12-01T00:00:00Z'),
    )
    expect(q.text).to.equal(
      `ALTER TABLE "request_logs" ATTACH PARTITION "request_logs_p20261101" FOR VALUES FROM ('2026-11-01T00:00:00.000Z') TO ('2026-12-01T00:00:00.000Z')`,
    )
  })

  it('write a batch as one JSON array in values, never in the text, with and without the chain', () => {
    const records = Buffer.from(JSON.stringify([{id: "'); DROP TABLE request_logs; --"}]))
    for (const q of [writer.insertFromArray('request_logs', records), writer.insertFromArrayChained('request', records)]) {
      expect(q.values).to.deep.equal([records])
      expect(q.text).to.contain('json_populate_recordset(NULL::"request_logs", $1::json)').and.not.contain('DROP')
    }
  })

  it('turn \\u0000 escapes into U+FFFD without touching an escaped backslash', () => {
    expect(jsonbSafe(JSON.stringify({a: 'x\u0000y'}))).to.equal('{"a":"x\\ufffdy"}')
    const literal = JSON.stringify({a: '\\u0000'}) // a backslash followed by the text u0000
    expect(jsonbSafe(literal)).to.equal(literal)
  })

  it('turn escapes of lone surrogates into U+FFFD and keep escaped pairs and real characters', () => {
    expect(jsonbSafe(JSON.stringify({a: 'x\ud800y', b: '\udc00', c: 'end\udbff'}))).to.equal(
      '{"a":"x\\ufffdy","b":"\\ufffd","c":"end\\ufffd"}',
    )
    expect(jsonbSafe(JSON.stringify({a: '😀 \udc00\ud800'}))).to.equal('{"a":"😀 \\ufffd\\ufffd"}') // low then high: no pair
    expect(jsonbSafe('{"a":"\\ud83d\\ude00"}')).to.equal('{"a":"\\ud83d\\ude00"}')
    const literal = JSON.stringify({a: '\\ud800'})
    expect(jsonbSafe(literal)).to.equal(literal)
  })
})

describe('migration files', () => {
  it('give their Up section (not the Down one) and a checksum', () => {
    const m = parseMigration('0002_add_x.sql', '-- comment\n-- Up\nCREATE TABLE x ();\n-- Down\nDROP TABLE x;\n')
    expect(m).to.include({version: 2, name: 'add_x', up: 'CREATE TABLE x ();'})
    expect(m.checksum).to.match(/^[0-9a-f]{64}$/)
  })

  it('refuse a bad name or a missing Up section', () => {
    expect(() => parseMigration('2_x.sql', '-- Up\nSELECT 1;')).to.throw(/NNNN_name\.sql/)
    expect(() => parseMigration('0002_x.sql', 'SELECT 1;')).to.throw(/-- Up/)
  })
})
