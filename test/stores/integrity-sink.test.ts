import {generateKeyPairSync} from 'node:crypto'
import {copyFileSync, mkdtempSync, readFileSync, readdirSync, statSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {generateRecords} from '../../src/generate/records.js'
import {postgresSink} from '../../src/pipeline/sinks.js'
import {Chain, type IntegrityOptions} from '../../src/stores/postgres/integrity.js'
import {migrate} from '../../src/stores/postgres/migrations.js'
import {TABLES, premake} from '../../src/stores/postgres/partitions.js'
import {grants} from '../../src/stores/postgres/sql/setup.js'
import {verifyChains} from '../../src/stores/postgres/verify.js'
import {writeLines} from '../../src/stores/postgres/writer.js'
import {type TestDatabase, count, freshDatabase} from '../helpers/db.js'

const {privateKey, publicKey} = generateKeyPairSync('ed25519')
const keyPem = privateKey.export({type: 'pkcs8', format: 'pem'}).toString()
const lines = (n: number, seed: number) => [...generateRecords({rows: n, days: 1, seed})].map((r) => Buffer.from(JSON.stringify(r)))

/** A database migrated up to 0005 only: what an upgrade without `setup-db` leaves (0006 brings the integrity tables). */
async function before0006(): Promise<TestDatabase> {
  const db = await freshDatabase()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-mig-'))
  const source = path.resolve('migrations')
  for (const f of readdirSync(source)) if (/^000[1-5]_/.test(f)) copyFileSync(path.join(source, f), path.join(dir, f))
  await migrate(db.client, {dir})
  await premake(db.client, {interval: 'month', ahead: 1})
  return db
}

/**
 * The PostgreSQL sink and the integrity chain's prerequisites: the records are written whatever becomes of the
 * chain (its tables missing, the writer not granted them, its digest file unwritable), and the log says why.
 */
describe('integrity chain in the PostgreSQL sink: records first (real PostgreSQL)', function () {
  this.timeout(60_000)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-isink-'))
  const options = (instance: string, extra: Partial<IntegrityOptions> = {}): IntegrityOptions => ({
    instance,
    keyPem,
    digestIntervalMs: 3_600_000,
    digestFile: path.join(dir, `${instance}.jsonl`),
    ...extra,
  })

  it('a database migrated only up to 0005: the records are written unchained, the log says once that the chain is off and why', async () => {
    const db = await before0006()
    const logs: string[] = []
    const sink = postgresSink(db.url, 0, 2, options('no-tables'), (m) => logs.push(m))
    try {
      await sink.write(lines(20, 41))
      await sink.write(lines(10, 42))
      expect(await count(db.client, 'request_logs')).to.equal(30)
      const off = logs.filter((l) => /integrity chain of instance "no-tables" is OFF/.test(l))
      expect(off, logs.join('\n')).to.have.length(1)
      expect(off[0]).to.include('the table integrity_batches does not exist (migration 0006 is not applied)')
      expect(off[0]).to.include('`audit-logs setup-db`')
      expect(sink.integrity?.()).to.deep.include({chained: false, digestErrors: 0})
    } finally {
      await sink.close()
      await db.drop()
    }
  })

  it('the writer role without the integrity grants (migrate instead of setup-db): records written unchained, the missing grant named', async () => {
    const db = await freshDatabase({migrated: true})
    await premake(db.client, {interval: 'month', ahead: 1})
    const suffix = db.name.slice(-10)
    const roles = {owner: `isink_o_${suffix}`, writer: `isink_w_${suffix}`, reader: `isink_r_${suffix}`}
    const logs: string[] = []
    let sink: ReturnType<typeof postgresSink> | undefined
    try {
      for (const r of Object.values(roles)) await db.client.query(`CREATE ROLE "${r}"`)
      await db.client.query(`ALTER ROLE "${roles.writer}" LOGIN PASSWORD 'w-pass-1'`)
      for (const g of grants(db.name, roles, TABLES)) await db.client.query(g)
      await db.client.query(`REVOKE ALL ON integrity_batches, integrity_digests FROM "${roles.writer}"`)
      const url = new URL(db.url)
      url.username = roles.writer
      url.password = 'w-pass-1'
      sink = postgresSink(url.toString(), 0, 2, options('no-grants'), (m) => logs.push(m))
      await sink.write(lines(12, 43))
      expect(await count(db.client, 'request_logs')).to.equal(12)
      expect(await count(db.client, 'integrity_batches')).to.equal(0)
      const off = logs.filter((l) => /is OFF/.test(l))
      expect(off, logs.join('\n')).to.have.length(1)
      expect(off[0]).to.include('the writer role has no INSERT on integrity_batches')
      expect(off[0]).to.include('the writer role has no INSERT on integrity_digests')
    } finally {
      await sink?.close()
      await db.client
        .query(
          `DROP OWNED BY ${Object.values(roles)
            .map((r) => `"${r}"`)
            .join(', ')}`,
        )
        .catch(() => {})
      for (const r of Object.values(roles)) await db.client.query(`DROP ROLE IF EXISTS "${r}"`).catch(() => {})
      await db.drop()
    }
  })

  it('integrity tables gone while running: the failed batch names the integrity table, the next one is written unchained', async () => {
    const db = await freshDatabase({migrated: true})
    await premake(db.client, {interval: 'month', ahead: 1})
    const logs: string[] = []
    const sink = postgresSink(db.url, 0, 1, options('dropped'), (m) => logs.push(m))
    try {
      await sink.write(lines(5, 44))
      expect(await count(db.client, 'integrity_batches')).to.be.greaterThan(0)
      expect(sink.integrity?.()).to.deep.include({chained: true})
      await db.client.query('DROP TABLE integrity_batches, integrity_digests, integrity_retention')
      const failed = await sink.write(lines(5, 45)).then(
        () => undefined,
        (error: Error) => error,
      )
      expect(failed?.message).to.match(/^PostgreSQL has no integrity_batches table/)
      expect(failed?.message).to.include('audit-logs setup-db')
      await sink.write(lines(5, 45)) // the shipper's retry: after the reconnect the chain is off, the records go in
      expect(await count(db.client, 'request_logs')).to.equal(10)
      expect(logs.some((l) => /is OFF: the table integrity_batches does not exist/.test(l))).to.equal(true)
    } finally {
      await sink.close()
      await db.drop()
    }
  })

  it('a digest that fails (unwritable digests.jsonl) never fails the batch: counted, logged once; the file is 0640', async () => {
    const db = await freshDatabase({migrated: true})
    await premake(db.client, {interval: 'month', ahead: 1})
    const logs: string[] = []
    const bad = postgresSink(db.url, 0, 1, options('bad-file', {digestIntervalMs: 0, digestFile: '/dev/null/digests.jsonl'}), (m) =>
      logs.push(m),
    )
    const good = postgresSink(db.url, 0, 1, options('good-file', {digestIntervalMs: 0}), () => {})
    try {
      await bad.write(lines(5, 46))
      await bad.write(lines(5, 47))
      expect(await count(db.client, 'request_logs')).to.equal(10)
      expect(bad.integrity?.()).to.deep.include({chained: true})
      expect(bad.integrity?.()?.digestErrors).to.be.at.least(2) // each write's digest (the interval is 0), and the timer's
      const failed = logs.filter((l) => /integrity digest of instance "bad-file" failed/.test(l))
      expect(failed, logs.join('\n')).to.have.length(1)

      await good.write(lines(5, 48))
      const file = path.join(dir, 'good-file.jsonl')
      expect(statSync(file).mode & 0o777).to.equal(0o640)
    } finally {
      await bad.close()
      await good.close()
      await db.drop()
    }
  })

  it('a head in the database beyond what the instance last signed is adopted with a warning, recorded in the next digest (adoptedFrom) and reported by verify', async () => {
    const db = await freshDatabase({migrated: true})
    await premake(db.client, {interval: 'month', ahead: 1})
    const file = path.join(dir, 'adopt.jsonl')
    try {
      const first = new Chain('adopt', file)
      await writeLines(db.client, 'request', lines(5, 49), first)
      await first.digest(db.client, privateKey, file, {seq: 0})
      // someone else appends a well-formed batch at head + 1 (as an owner who computes the hashes would)
      await writeLines(db.client, 'request', lines(5, 50), new Chain('adopt'))
      const warnings: string[] = []
      const restarted = new Chain('adopt', file, (m) => warnings.push(m))
      await writeLines(db.client, 'request', lines(5, 51), restarted)
      expect(warnings, warnings.join('\n')).to.have.length(1)
      expect(warnings[0]).to.include('goes on to batch 2, beyond the last head it signed (1')
      await restarted.digest(db.client, privateKey, file, {seq: 0})
      const last = JSON.parse(readFileSync(file, 'utf8').trim().split('\n').at(-1)!) as {body: string}
      expect(JSON.parse(last.body).adoptedFrom).to.include({seq: 2, lastSigned: 1})
      const report = await verifyChains(db.client, {since: new Date(Date.now() - 3 * 86_400_000), publicKey, digestFile: file})
      const adopt = report.instances.find((i) => i.instance === 'adopt')!
      expect(adopt.adopted).to.deep.equal([{from: 2, to: 2}])
      expect(report.warnings.some((w) => /adopt: batches 2\.\.2 were found in the database/.test(w))).to.equal(true)
    } finally {
      await db.drop()
    }
  })
})
