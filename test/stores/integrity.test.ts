import {createHash, generateKeyPairSync} from 'node:crypto'
import {expect} from 'chai'
import pg from 'pg'
import {v7 as uuidv7} from 'uuid'
import {generateRecords} from '../../src/generate/records.js'
import {clientConfig} from '../../src/stores/postgres/connection.js'
import {Chain, chainHash, keysHashOf, loadPrivateKey, recordsHashOf} from '../../src/stores/postgres/integrity.js'
import {TABLES, premake} from '../../src/stores/postgres/partitions.js'
import {grants} from '../../src/stores/postgres/sql/setup.js'
import {canonicalRow, recordAnomalies, rowHash} from '../../src/stores/postgres/sql/integrity.js'
import {verifyChains} from '../../src/stores/postgres/verify.js'
import {writeLines} from '../../src/stores/postgres/writer.js'
import {type TestDatabase, freshDatabase} from '../helpers/db.js'

/** Records that make canonical forms go wrong: unicode, nested JSON with keys in odd orders, big and odd numbers, empty and null fields. */
function hostile(): Array<Record<string, unknown>> {
  const base = {method: 'POST', path: '/x', scheme: 'https', host: 'h'}
  const at = (ms: number) => new Date(Date.now() - ms).toISOString()
  return [
    {
      ...base,
      id: uuidv7(),
      created_at: at(1),
      path: '/ünï/😀/\u0007',
      request_body: 'Zürich \u2028 \u{1F600} "quoted" \\ back',
      request_headers: {'x-b': '2', 'x-a': 'é'},
    },
    {...base, id: uuidv7(), created_at: '2026-12-01T10:00:00.123456+02:00', request_body: '', response_body: null, query: {}},
    {
      ...base,
      id: uuidv7(),
      created_at: at(3),
      extra: {z: {y: [1, 2.5, 1e21, -0, '__BIG__'], x: null}, a: 'b', big: 1.0000000000000002},
      duration_ms: 0.1 + 0.2,
      status_code: 200,
    },
    {
      ...base,
      id: uuidv7(),
      created_at: at(4),
      request_headers: {'set-cookie': ['a=1', 'b=2'], empty: ''},
      flags: ['slow', 'suspicious'],
      ip: '2001:db8::1',
    },
    {...base, id: uuidv7(), created_at: at(5), request_body: null, ip: '10.0.0.0/8', user_id: '', duration_ms: 1e-7, flags: []},
    {...base, id: uuidv7(), created_at: at(6), request_body: 'lone \ud800 surrogate and \u0000 nul'},
  ]
}

describe('integrity chain (real PostgreSQL)', () => {
  let db: TestDatabase
  before(async () => {
    db = await freshDatabase({migrated: true})
    await premake(db.client, {interval: 'month', ahead: 1})
  })
  after(() => db.drop())

  it('hashes each stored row to the same canonical text read back in another session, whatever its TimeZone, DateStyle and float digits', async () => {
    const chain = new Chain('unit-a')
    const records = hostile()
    // a number past a double's precision, as an app's JSON may hold it: jsonb keeps it exactly
    const lines = records.map((r) => JSON.stringify(r).replace('"__BIG__"', '123456789012345678901234567890.0001000'))
    const result = await writeLines(db.client, 'request', lines, chain)
    expect(result.inserted).to.equal(records.length)
    const batch = (await db.client.query(`SELECT ids::text[] AS ids, record_hashes FROM integrity_batches WHERE instance = 'unit-a'`))
      .rows[0]
    expect(batch.ids).to.have.length(records.length)

    const other = new pg.Client({...clientConfig(db.url)})
    await other.connect()
    try {
      await other.query(
        `SET TimeZone = 'America/St_Johns'; SET DateStyle = 'SQL, DMY'; SET extra_float_digits = -3; SET IntervalStyle = 'postgres_verbose'`,
      )
      const {rows} = await other.query(
        `SELECT r.id::text AS id, ${canonicalRow('request', 'r')} AS c FROM request_logs r WHERE r.id = ANY($1::uuid[])`,
        [batch.ids],
      )
      expect(rows).to.have.length(records.length)
      const byId = new Map(rows.map((r) => [r.id as string, r.c as string]))
      batch.ids.forEach((id: string, i: number) => {
        const text = byId.get(id)!
        // the hash Node computes over the text read back is the one PostgreSQL chained at insert
        const h = createHash('sha256').update(text, 'utf8').digest()
        expect(h.equals(batch.record_hashes.subarray(i * 32, i * 32 + 32)), `${id}: ${text}`).to.equal(true)
      })
      // the canonical text holds the time in UTC with microseconds, and the float's exact bits
      const second = byId.get(records[1].id as string)!
      expect(second).to.include('"2026-12-01T08:00:00.123456Z"')
      expect(byId.get(records[2].id as string)).to.include('123456789012345678901234567890.0001')
      expect(byId.get(records[2].id as string)).to.include(
        `"${Buffer.from(new Float64Array([0.1 + 0.2]).buffer)
          .reverse()
          .toString('hex')}"`,
      )
      // the bodies follow the jsonb array of the other columns, each as its length in bytes (- for NULL), ':' and its text as stored
      expect(byId.get(records[0].id as string)).to.match(/\]32:Zürich \u2028 😀 "quoted" \\ back-:$/)
      expect(byId.get(records[1].id as string)).to.match(/\]0:-:$/)
    } finally {
      await other.end()
    }
  })

  it("verify takes a record's hash in either canonical text (1, as records were chained before text 2, or 2), and no other row's", async () => {
    const lines = [...generateRecords({rows: 6, days: 1, seed: 7})].map((r) =>
      JSON.stringify({...r, request_body: '{"a":"b\\"c"}', response_body: '[1,2]'}),
    )
    const chain = new Chain('unit-forms')
    await writeLines(db.client, 'request', lines, chain)
    const batch = (await db.client.query(`SELECT seq, ids::text[] AS ids FROM integrity_batches WHERE instance = 'unit-forms'`)).rows[0]
    const anomalies = async () =>
      (await db.client.query(recordAnomalies('request', 'unit-forms', Number(batch.seq), Number(batch.seq)))).rows.map((r) => r.id)
    expect(await anomalies()).to.deep.equal([])
    // the same rows as chained before canonical text 2: their hashes of text 1 pass too
    const hashesOf = async (form: 1 | 2) =>
      Buffer.concat(
        (
          await db.client.query(
            `SELECT ${rowHash('request', 'r', form)} AS h FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, ord) JOIN request_logs r ON r.id = x.id ORDER BY x.ord`,
            [batch.ids],
          )
        ).rows.map((r) => r.h as Buffer),
      )
    const textOne = await hashesOf(1)
    expect(textOne.equals(await hashesOf(2))).to.equal(false)
    await db.client.query(`UPDATE integrity_batches SET record_hashes = $1 WHERE instance = 'unit-forms'`, [textOne])
    expect(await anomalies()).to.deep.equal([])
    // a body changed fails in either form
    await db.client.query(`UPDATE request_logs SET response_body = '[1,3]' WHERE id = $1`, [batch.ids[2]])
    expect(await anomalies()).to.deep.equal([batch.ids[2]])
    await db.client.query(`UPDATE integrity_batches SET record_hashes = $1 WHERE instance = 'unit-forms'`, [await hashesOf(2)])
    expect(await anomalies()).to.deep.equal([])
    // a body moved from one column to the other (the same bytes in text 1's order and text 2's framing): caught
    await db.client.query(`UPDATE request_logs SET request_body = NULL, response_body = request_body || response_body WHERE id = $1`, [
      batch.ids[3],
    ])
    expect(await anomalies()).to.deep.equal([batch.ids[3]])
    // gone again, so that the tests after verify the rest of this database as intact
    await db.client.query(`DELETE FROM request_logs WHERE id = ANY($1::uuid[])`, [batch.ids])
    await db.client.query(`DELETE FROM integrity_batches WHERE instance = 'unit-forms'`)
  })

  it('links batches, does not chain a replayed batch again, and continues the chain after a restart', async () => {
    const lines = [...generateRecords({rows: 40, days: 1, seed: 31})].map((r) => JSON.stringify(r))
    const chain = new Chain('unit-b')
    await writeLines(db.client, 'request', lines.slice(0, 20), chain)
    await writeLines(db.client, 'request', lines.slice(0, 20), chain) // a replay: nothing new, nothing chained
    await writeLines(db.client, 'request', lines.slice(0, 30), chain) // 20 there, 10 new: the batch is chained whole
    const restarted = new Chain('unit-b') // a new process: reads the head from the database
    await writeLines(db.client, 'request', lines, restarted)
    const {rows} = await db.client.query(
      `SELECT seq, count, total, prev_hash, hash, records_hash, record_hashes, log_type,
        to_char(min_created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS min,
        to_char(max_created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS max, ids::text[] AS ids,
        (SELECT array_agg(to_char(x.ca AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') ORDER BY x.ord)
         FROM unnest(created_ats) WITH ORDINALITY AS x(ca, ord)) AS ats
       FROM integrity_batches WHERE instance = 'unit-b' ORDER BY seq`,
    )
    expect(rows.map((r) => [Number(r.seq), r.count, Number(r.total)])).to.deep.equal([
      [1, 20, 20],
      [2, 30, 50],
      [3, 40, 90],
    ])
    let prev = Buffer.alloc(32)
    for (const r of rows) {
      expect(r.prev_hash.equals(prev)).to.equal(true)
      expect(recordsHashOf(r.record_hashes).equals(r.records_hash)).to.equal(true)
      const fields = {
        instance: 'unit-b',
        seq: Number(r.seq),
        logType: r.log_type,
        count: r.count,
        total: Number(r.total),
        min: r.min,
        max: r.max,
        prevHash: r.prev_hash,
        recordsHash: r.records_hash,
      }
      // v2: the records' ids and created_ats are in the hash (v1, without them, no longer matches)
      expect(chainHash({...fields, keysHash: keysHashOf(r.ids, r.ats)}).equals(r.hash)).to.equal(true)
      expect(chainHash(fields).equals(r.hash)).to.equal(false)
      expect(r.ids).to.have.length(r.count)
      prev = r.hash
    }
    const report = await verifyChains(db.client, {since: new Date(Date.now() - 3 * 86_400_000)})
    expect(report.inserted).to.deep.equal([])
    const b = report.instances.find((i) => i.instance === 'unit-b')!
    expect(b).to.include({firstSeq: 1, lastSeq: 3, records: 90})
    expect(b.changed).to.deep.equal([])
    expect(b.headUnproven).to.equal(true)
    expect(report.ok).to.equal(true)
  })

  it('two chains of one instance in two processes never fork: the second re-reads the head and follows', async () => {
    const lines = [...generateRecords({rows: 20, days: 1, seed: 32})].map((r) => JSON.stringify(r))
    const other = new pg.Client(clientConfig(db.url))
    await other.connect()
    try {
      const a = new Chain('unit-c')
      const b = new Chain('unit-c')
      await writeLines(db.client, 'request', lines.slice(0, 5), a)
      await writeLines(other, 'request', lines.slice(5, 10), b)
      await writeLines(db.client, 'request', lines.slice(10, 15), a) // a's head is stale: seq 2 is b's
      const {rows} = await db.client.query(`SELECT seq, total FROM integrity_batches WHERE instance = 'unit-c' ORDER BY seq`)
      expect(rows.map((r) => [Number(r.seq), Number(r.total)])).to.deep.equal([
        [1, 5],
        [2, 10],
        [3, 15],
      ])
    } finally {
      await other.end()
    }
  })

  it("works with the writer role's least privilege: INSERT on the records, the chain's head its only read", async () => {
    const suffix = db.name.slice(-10)
    const roles = {owner: `tamper_o_${suffix}`, writer: `tamper_w_${suffix}`, reader: `tamper_r_${suffix}`}
    for (const r of Object.values(roles)) await db.client.query(`CREATE ROLE "${r}"`)
    for (const g of grants(db.name, roles, TABLES)) await db.client.query(g)
    const writer = new pg.Client(clientConfig(db.url))
    await writer.connect()
    try {
      await writer.query(`SET ROLE "${roles.writer}"`)
      const lines = [...generateRecords({rows: 10, days: 1, seed: 33})].map((r) => JSON.stringify(r))
      const chain = new Chain('unit-role')
      expect((await writeLines(writer, 'request', lines, chain)).inserted).to.equal(10)
      await chain.digest(writer, generateKeyPairSync('ed25519').privateKey, undefined, {seq: 0})
      // and it still cannot read a record, nor change the chain
      for (const denied of ['SELECT * FROM request_logs', `UPDATE integrity_batches SET count = 0`, 'DELETE FROM integrity_batches'])
        try {
          await writer.query(denied)
          expect.fail(`allowed: ${denied}`)
        } catch (error) {
          expect((error as {code?: string}).code, denied).to.equal('42501')
        }
    } finally {
      await writer.end()
      await db.client.query(
        `REASSIGN OWNED BY ${Object.values(roles)
          .map((r) => `"${r}"`)
          .join(', ')} TO CURRENT_USER`,
      )
      await db.client.query(
        `DROP OWNED BY ${Object.values(roles)
          .map((r) => `"${r}"`)
          .join(', ')}`,
      )
      for (const r of Object.values(roles)) await db.client.query(`DROP ROLE "${r}"`)
    }
    expect(Number((await db.client.query(`SELECT count(*) AS n FROM integrity_digests WHERE instance = 'unit-role'`)).rows[0].n)).to.equal(
      1,
    )
  })

  it('accepts only an Ed25519 private key for integrityKey, and never shows the key in the error', () => {
    const {privateKey} = generateKeyPairSync('ed25519')
    const pem = privateKey.export({type: 'pkcs8', format: 'pem'}) as string
    expect(loadPrivateKey(pem).key.asymmetricKeyType).to.equal('ed25519')
    const rsa = generateKeyPairSync('rsa', {modulusLength: 1024}).privateKey.export({type: 'pkcs8', format: 'pem'}) as string
    expect(() => loadPrivateKey(rsa)).to.throw(/rsa key: an Ed25519 private key is accepted/)
    expect(() => loadPrivateKey('-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----')).to.throw(/not a PEM private key/)
    try {
      loadPrivateKey('/nonexistent/key.pem')
      expect.fail('no error')
    } catch (error) {
      expect((error as Error).message).to.match(/cannot read the key file it names \(ENOENT\)/)
    }
    // key material without its PEM lines is taken for a path, and never echoed
    const bare = 'MC4CAQAwBQYDK2VwBCIEIBLjaY7YvE5NIfsoaAUwzi9dWlIVYvVPhdxW4MIbJKfR'
    expect(() => loadPrivateKey(bare)).to.throw(/cannot read the key file it names/)
    try {
      loadPrivateKey(`"${bare}"`)
    } catch (error) {
      expect((error as Error).message).not.to.contain(bare)
    }
  })
})
