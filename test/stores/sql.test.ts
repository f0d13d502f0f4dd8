import {expect} from 'chai'
import {parseMigration} from '../../src/stores/postgres/migrations.js'
import * as partitions from '../../src/stores/postgres/sql/partitions.js'
import * as retention from '../../src/stores/postgres/sql/retention.js'
import * as setup from '../../src/stores/postgres/sql/setup.js'
import * as writer from '../../src/stores/postgres/sql/writer.js'
import {jsonbSafe} from '../../src/stores/postgres/writer.js'
import {quoteIdent} from '../../src/util/parse.js'

describe('SQL builders', () => {
  it('quote identifiers so a quote cannot end them', () => {
    expect(quoteIdent('a"b')).to.equal('"a""b"')
    expect(setup.createDatabase('x"; DROP TABLE t; --', 'owner').text).to.contain('"x""; DROP TABLE t; --"')
  })

  it('pass values as parameters, never in the text', () => {
    const cutoff = new Date('2026-01-01T00:00:00Z')
    const q = retention.deleteBatch('request_logs_p20251201', cutoff, 5000)
    expect(q.text).to.contain('$1').and.contain('$2').and.not.contain('2026-01-01')
    expect(q.values).to.deep.equal([cutoff, 5000])
    expect(setup.roleExists("r' OR '1'='1").values).to.deep.equal(["r' OR '1'='1"])
  })

  it('never put a plain password in CREATE ROLE (a SCRAM verifier is sent)', () => {
    expect(setup.createRole('w', 'SCRAM-SHA-256$4096:abc$def:ghi').text).to.equal(`CREATE ROLE "w" LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc$def:ghi'`)
  })

  it('attach partitions with bounds as ISO literals', () => {
    const q = partitions.attachPartition('request_logs', 'request_logs_p20261101', new Date('2026-11-01T00:00:00Z'), new Date('2026-12-01T00:00:00Z'))
    expect(q.text).to.equal(`ALTER TABLE "request_logs" ATTACH PARTITION "request_logs_p20261101" FOR VALUES FROM ('2026-11-01T00:00:00.000Z') TO ('2026-12-01T00:00:00.000Z')`)
  })

  it('COPY JSON lines with quote and delimiter bytes JSON never contains', () => {
    expect(writer.copyStaging()).to.contain("DELIMITER E'\\x02'").and.contain("QUOTE E'\\x01'")
    expect(JSON.stringify({a: '\x01\x02\n'})).to.not.match(/[\x01\x02\n]/)
  })

  it('turn \\u0000 escapes into U+FFFD without touching an escaped backslash', () => {
    expect(jsonbSafe(JSON.stringify({a: 'x\u0000y'}))).to.equal('{"a":"x\\ufffdy"}')
    const literal = JSON.stringify({a: '\\u0000'}) // a backslash followed by the text u0000
    expect(jsonbSafe(literal)).to.equal(literal)
  })

  it('turn escapes of lone surrogates into U+FFFD and keep escaped pairs and real characters', () => {
    expect(jsonbSafe(JSON.stringify({a: 'x\ud800y', b: '\udc00', c: 'end\udbff'}))).to.equal('{"a":"x\\ufffdy","b":"\\ufffd","c":"end\\ufffd"}')
    expect(jsonbSafe(JSON.stringify({a: '😀 \udc00\ud800'}))).to.equal('{"a":"😀 \\ufffd\\ufffd"}') // low then high: no pair
    expect(jsonbSafe('{"a":"\\ud83d\\ude00"}')).to.equal('{"a":"\\ud83d\\ude00"}')
    const literal = JSON.stringify({a: '\\ud800'})
    expect(jsonbSafe(literal)).to.equal(literal)
  })
})

describe('migration files', () => {
  it('split into Up and Down with a checksum', () => {
    const m = parseMigration('0002_add_x.sql', '-- comment\n-- Up\nCREATE TABLE x ();\n-- Down\nDROP TABLE x;\n')
    expect(m).to.include({version: 2, name: 'add_x', up: 'CREATE TABLE x ();', down: 'DROP TABLE x;'})
    expect(m.checksum).to.match(/^[0-9a-f]{64}$/)
  })

  it('refuse a bad name or a missing Up section', () => {
    expect(() => parseMigration('2_x.sql', '-- Up\nSELECT 1;')).to.throw(/NNNN_name\.sql/)
    expect(() => parseMigration('0002_x.sql', 'SELECT 1;')).to.throw(/-- Up/)
  })
})
