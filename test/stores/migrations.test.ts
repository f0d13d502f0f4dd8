import {cpSync, mkdtempSync, writeFileSync, appendFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import pg from 'pg'
import {clientConfig} from '../../src/stores/postgres/connection.js'
import {MIGRATIONS_DIR, loadMigrations, migrate, migrationStatus} from '../../src/stores/postgres/migrations.js'
import {TABLES} from '../../src/stores/postgres/partitions.js'
import {type TestDatabase, freshDatabase} from '../helpers/db.js'

describe('migrations (real PostgreSQL)', () => {
  let db: TestDatabase
  let dir: string
  beforeEach(async () => {
    db = await freshDatabase()
    dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-migrations-'))
    cpSync(MIGRATIONS_DIR, dir, {recursive: true})
  })
  afterEach(() => db.drop())

  it('applies pending migrations once, records checksums, and then has nothing to do', async () => {
    const files = loadMigrations(dir).map((m) => m.file)
    expect(files.slice(0, 2)).to.deep.equal(['0001_initial.sql', '0002_bounded_index_keys.sql'])
    expect((await migrationStatus(db.client, dir)).map((m) => m.state)).to.deep.equal(files.map(() => 'pending'))
    const first = await migrate(db.client, {dir})
    expect(first.applied.map((m) => m.file)).to.deep.equal(files)
    const second = await migrate(db.client, {dir})
    expect(second.applied).to.deep.equal([])
    const {rows} = await db.client.query('SELECT version, checksum FROM audit_logs_migrations')
    expect(rows).to.have.length(files.length)
    expect(rows.map((r) => r.checksum).sort()).to.deep.equal(first.applied.map((m) => m.checksum).sort())
  })

  it('creates the tables as DESIGN.md describes: partitioned by range on created_at, key (id, created_at)', async () => {
    await migrate(db.client, {dir})
    const {rows} = await db.client.query(`
      SELECT c.relname, p.partstrat, pg_get_partkeydef(c.oid) AS key,
        (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') AS pk
      FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid ORDER BY 1`)
    expect(rows.map((r) => [r.relname, r.key, r.pk])).to.deep.equal(
      [...TABLES].sort().map((t) => [t, 'RANGE (created_at)', 'PRIMARY KEY (id, created_at)']),
    )
    const idx = await db.client.query(`SELECT indexname FROM pg_indexes WHERE tablename = 'request_logs' ORDER BY 1`)
    expect(idx.rows.map((r) => r.indexname)).to.include.members([
      'request_logs_created_at_idx',
      'request_logs_status_idx',
      'request_logs_user_idx',
      'request_logs_path_idx',
      'request_logs_ip_idx',
    ])
  })

  it('applies a new migration file after the applied ones, in one transaction', async () => {
    await migrate(db.client, {dir})
    writeFileSync(
      path.join(dir, '0098_extra.sql'),
      '-- Up\nCREATE TABLE extra_a (x int);\nCREATE TABLE extra_b (x int);\n-- Down\nDROP TABLE extra_b; DROP TABLE extra_a;\n',
    )
    writeFileSync(path.join(dir, '0099_broken.sql'), '-- Up\nCREATE TABLE extra_c (x int);\nSELECT no_such_function();\n')
    let error: Error | undefined
    try {
      await migrate(db.client, {dir})
    } catch (e) {
      error = e as Error
    }
    expect(error?.message).to.contain('0099_broken.sql')
    // all or nothing: 0098 was rolled back with the failing 0099
    const {rows} = await db.client.query(`SELECT to_regclass('extra_a') AS a, to_regclass('extra_c') AS c`)
    expect(rows[0]).to.deep.equal({a: null, c: null})
    expect((await migrationStatus(db.client, dir)).filter((m) => m.state === 'pending')).to.have.length(2)
  })

  it('refuses an applied migration whose file changed', async () => {
    await migrate(db.client, {dir})
    appendFileSync(path.join(dir, '0001_initial.sql'), '\n-- a harmless-looking edit\n')
    for (const run of [() => migrate(db.client, {dir}), () => migrationStatus(db.client, dir)]) {
      let error: Error | undefined
      try {
        await run()
      } catch (e) {
        error = e as Error
      }
      expect(error?.message).to.match(/0001_initial\.sql was changed after it was applied/)
    }
  })

  it('is safe when two migrate runs race', async () => {
    const other = new pg.Client(clientConfig(db.url))
    await other.connect()
    try {
      const [a, b] = await Promise.all([migrate(db.client, {dir}), migrate(other, {dir})])
      const all = loadMigrations(dir).length
      expect(a.applied.length + b.applied.length).to.equal(all)
      const {rows} = await db.client.query('SELECT count(*)::int AS n FROM audit_logs_migrations')
      expect(rows[0].n).to.equal(all)
    } finally {
      await other.end()
    }
  })
})
