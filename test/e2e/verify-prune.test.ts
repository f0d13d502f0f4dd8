import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {randomUUID} from 'node:crypto'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {type CliResult, runCli} from '../helpers/cli.js'
import {startRun, until} from '../helpers/run-server.js'
import {startUpstream} from '../helpers/upstream.js'
import {type TestDatabase, dropDatabase, dropRoles, freshDatabase, serverUrl} from '../helpers/db.js'
import pg from 'pg'
import {clientConfig, withDatabase} from '../../src/stores/postgres/connection.js'
import {generateRecords} from '../../src/generate/records.js'
import {writeRecords} from '../../src/stores/postgres/writer.js'

/**
 * Retention of the integrity chain: records older than their type's retention are imported through the real path
 * (import chains them as import@<instance> and signs each import's head), cleanup removes them and prunes the batch
 * rows that held their hashes, and verify stays clean; then a superuser deletes recent batches, forges where a chain
 * starts, or forges a retention cutoff, and verify (or cleanup) must not be fooled.
 */
describe('integrity_batches retention: cleanup prunes the chains, verify stays correct (subprocess, real PostgreSQL)', function () {
  this.timeout(300_000)
  let db: TestDatabase
  const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-prune-'))
  const logDir = path.join(dir, 'logs')
  const key = path.join(dir, 'integrity.pem')
  const DAY = 86_400_000
  const env = (extra: Record<string, string> = {}) => ({
    AUDIT_LOGS_DATABASE_URL: db.url,
    AUDIT_LOGS_INTEGRITY_KEY: key,
    AUDIT_LOGS_INSTANCE: 'p',
    AUDIT_LOGS_LOG_DIR: logDir,
    AUDIT_LOGS_REQUEST_RETENTION_DAYS: '90',
    AUDIT_LOGS_ACCESS_RETENTION_DAYS: '120',
    ...extra,
  })
  const q = async (text: string, values: unknown[] = []) => (await db.client.query(text, values)).rows
  const verify = (extra: Record<string, string> = {}, since = '200d'): Promise<CliResult> =>
    runCli(['verify', '--since', since, '--json', '--digests', path.join(logDir, 'digests.jsonl')], {env: env(extra), cwd: dir})
  const cleanup = (args: string[] = [], extra: Record<string, string> = {}) =>
    runCli(['cleanup', '--store', 'postgres', ...args], {env: env(extra), cwd: dir})
  /** Imports `n` records of `type` created `ageMs` ago, two to a batch (so two to a batch row of the chain). */
  const importOld = async (type: 'request' | 'access', n: number, ageMs: number, instance = 'p') => {
    const at = (i: number) => new Date(Date.now() - ageMs + i * 1000).toISOString()
    const lines = Array.from({length: n}, (_, i) =>
      type === 'request'
        ? {id: randomUUID(), created_at: at(i), method: 'GET', path: `/old/${i}`, status_code: 200}
        : {id: randomUUID(), created_at: at(i), method: 'GET', url: `/old/${i}`, status_code: 200, duration_ms: 1.5},
    )
    const sub = mkdtempSync(path.join(dir, 'import-'))
    const file = path.join(sub, type === 'request' ? 'requests.jsonl' : 'access.jsonl')
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n')
    const r = await runCli(['import', file, '--stores', 'postgres', '--batch-size', '2'], {
      env: env({AUDIT_LOGS_INSTANCE: instance}),
      cwd: dir,
    })
    expect(r.exitCode, r.stdout + r.stderr).to.equal(0)
    expect(r.stderr).not.to.include('NOT chained')
  }
  const seqs = async (instance = 'import@p') =>
    (await q(`SELECT seq FROM integrity_batches WHERE instance = $1 ORDER BY seq`, [instance])).map((r) => Number(r.seq))
  const chain = (report: {instances: Array<{instance: string}>}, instance = 'import@p') =>
    report.instances.find((i) => i.instance === instance) as any

  before(async () => {
    db = await freshDatabase({migrated: true})
    mkdirSync(logDir)
    const made = await runCli(['verify', 'keygen', '--out', key], {cwd: dir})
    expect(made.exitCode, made.stderr).to.equal(0)
    // the chain of import@p: 1, 2 requests of 100 days ago; 3 accesses of 100 days ago (kept 120 days); 4 requests of
    // 95 days ago; 5, 6 requests of an hour ago; 7 (the head) requests of half an hour ago. Each import signs its head.
    await importOld('request', 4, 100 * DAY)
    await importOld('access', 2, 100 * DAY)
    await importOld('request', 2, 95 * DAY)
    await importOld('request', 4, 3_600_000)
    await importOld('request', 2, 1_800_000)
    // import@q: two batches, both past retention: its head stays
    await importOld('request', 4, 100 * DAY, 'q')
  })
  after(() => db?.drop())

  it('the seeded chains verify clean before any cleanup', async () => {
    expect(await seqs()).to.deep.equal([1, 2, 3, 4, 5, 6, 7])
    expect(await seqs('import@q')).to.deep.equal([1, 2])
    const r = await verify()
    expect(r.exitCode, r.stdout + r.stderr).to.equal(0)
  })

  it('cleanup --dry-run counts the batch rows it would prune and changes nothing', async () => {
    const r = await cleanup(['--dry-run', '--json'])
    expect(r.exitCode, r.stderr).to.equal(0)
    const report = r.json()
    expect(report.integrity).to.include({dryRun: true, batches: 3, records: 6})
    expect(report.integrity.instances).to.deep.equal([
      {instance: 'import@p', fromSeq: 1, throughSeq: 2, batches: 2, records: 4},
      {instance: 'import@q', fromSeq: 1, throughSeq: 1, batches: 1, records: 2},
    ])
    expect(await seqs()).to.deep.equal([1, 2, 3, 4, 5, 6, 7])
    expect(await q('SELECT * FROM integrity_pruned')).to.deep.equal([])
    const text = await cleanup(['--dry-run'])
    expect(text.stdout).to.match(
      /integrity_batches: would prune 3 batch row\(s\) holding the hashes of 6 removed record\(s\): import@p 1\.\.2, import@q 1\.\.1/,
    )
    // a batch row written after the cleanup began (an import or a replay of old-dated records meanwhile) holds records
    // its deletes did not see: it stays, and so does what follows it in its chain
    await q(`UPDATE integrity_batches SET written_at = now() + interval '1 hour' WHERE instance = 'import@p' AND seq = 2`)
    try {
      const later = (await cleanup(['--dry-run', '--json'])).json()
      expect(later.integrity.instances).to.deep.equal([
        {instance: 'import@p', fromSeq: 1, throughSeq: 1, batches: 1, records: 2},
        {instance: 'import@q', fromSeq: 1, throughSeq: 1, batches: 1, records: 2},
      ])
    } finally {
      await q(`UPDATE integrity_batches SET written_at = now() WHERE instance = 'import@p' AND seq = 2`)
    }
  })

  it('cleanup removes the old records and prunes the chain prefix past retention, never the head; an access batch kept longer holds back the request batch after it', async () => {
    const r = await cleanup(['--json'])
    expect(r.exitCode, r.stderr).to.equal(0)
    const report = r.json()
    expect(report.totalRows).to.equal(10) // 4 + 2 requests of import@p, 4 of import@q; the accesses are kept
    expect(report.integrity).to.include({dryRun: false, batches: 3, records: 6})
    // batch 3 (accesses, 100 days old, kept 120 days) stays, and so does batch 4 after it although its requests are gone
    expect(await seqs()).to.deep.equal([3, 4, 5, 6, 7])
    expect(await seqs('import@q')).to.deep.equal([2])
    const pruned = await q(`SELECT instance, through_seq, total, newest FROM integrity_pruned ORDER BY instance`)
    expect(pruned.map((p) => [p.instance, Number(p.through_seq), Number(p.total), Object.keys(p.newest)])).to.deep.equal([
      ['import@p', 2, 4, ['request']],
      ['import@q', 1, 2, ['request']],
    ])
    // a second cleanup has nothing more to prune
    const again = await cleanup(['--json'])
    expect(again.json().integrity).to.include({batches: 0})
  })

  it('verify is clean after the prune: the pruned seqs are no gap, the pruned signed digests are checked, the first link holds', async () => {
    const r = await verify()
    expect(r.exitCode, r.stdout + r.stderr).to.equal(0)
    const report = r.json()
    const p = chain(report)
    expect(p.pruned).to.include({throughSeq: 2, records: 4})
    expect(p.firstSeq).to.equal(3)
    expect(p.gaps).to.deep.equal([])
    expect(p.badBatches).to.deep.equal([])
    expect(p.digests.prunedChecked).to.be.greaterThan(0) // the digest of the first import signed head 2, now pruned
    expect(p.removedByRetention).to.equal(2) // batch 4's requests: gone, their batch row kept
    expect(chain(report, 'import@q').pruned).to.include({throughSeq: 1})
    const text = await runCli(['verify', '--since', '200d', '--digests', path.join(logDir, 'digests.jsonl')], {env: env(), cwd: dir})
    expect(text.exitCode).to.equal(0)
    expect(text.stdout).to.match(/import@p: batches 3\.\.7 .*batches 1\.\.2 pruned by retention \(4 records\)/)
  })

  it('a batch of a type kept longer (accesses, 120 days) deleted as if pruned is caught by its signed digest, per log type', async () => {
    // batch 3 holds accesses of 100 days ago: past the request retention (90 days) but not the access one (120)
    const [b3] = await q(`SELECT hash, total, ids::text[] AS ids FROM integrity_batches WHERE instance = 'import@p' AND seq = 3`)
    const [saved] = await q(`SELECT * FROM integrity_pruned WHERE instance = 'import@p'`)
    await q(`CREATE TABLE saved_batch3 AS SELECT * FROM integrity_batches WHERE instance = 'import@p' AND seq = 3`)
    await q(`CREATE TABLE saved_access AS SELECT * FROM access_logs WHERE id = ANY($1::uuid[])`, [b3.ids])
    await q(`DELETE FROM access_logs WHERE id = ANY($1::uuid[])`, [b3.ids])
    await q(`DELETE FROM integrity_batches WHERE instance = 'import@p' AND seq = 3`)
    // the forger records it as pruned, claiming request records only (which their retention allows)
    await q(`UPDATE integrity_pruned SET through_seq = 3, hash = $1, total = $2 WHERE instance = 'import@p'`, [b3.hash, b3.total])
    try {
      const r = await verify()
      expect(r.exitCode, r.stdout).to.equal(8)
      const p = chain(r.json())
      expect(p.gaps).to.deep.equal([])
      expect(p.badBatches).to.deep.equal([])
      // the digest of the access import signed head 3 with its newest access record: not past any access cutoff
      expect(p.badDigests.map((d: {seq: number; why: string}) => [d.seq, d.why.replace(/\d{4}-[\d-]+T[\d:.]+Z/g, 'T')])).to.deep.include([
        3,
        'its head, batch 3, was pruned, but it signs access records up to T, newer than the access retention verify honours (cutoff none): batches were deleted that retention did not remove',
      ])
    } finally {
      await q(`UPDATE integrity_pruned SET through_seq = $1, hash = $2, total = $3 WHERE instance = 'import@p'`, [
        saved.through_seq,
        saved.hash,
        saved.total,
      ])
      await q(`INSERT INTO access_logs SELECT * FROM saved_access; INSERT INTO integrity_batches SELECT * FROM saved_batch3`)
      await q(`DROP TABLE saved_access, saved_batch3`)
    }
    expect((await verify()).exitCode).to.equal(0)
  })

  it('a chain continues after its prune: the next import takes the next seq, no fork', async () => {
    await importOld('request', 2, 60_000, 'q')
    expect(await seqs('import@q')).to.deep.equal([2, 3])
    const r = await verify()
    expect(r.exitCode, r.stdout + r.stderr).to.equal(0)
  })

  it('once the access retention passes too, cleanup prunes on to the head', async () => {
    const r = await cleanup(['--json'], {AUDIT_LOGS_ACCESS_RETENTION_DAYS: '90'})
    expect(r.exitCode, r.stderr).to.equal(0)
    expect(r.json().integrity.instances).to.deep.equal([
      {instance: 'import@p', fromSeq: 3, throughSeq: 4, batches: 2, records: 4},
      {instance: 'import@q', fromSeq: 2, throughSeq: 2, batches: 1, records: 2},
    ])
    expect(await seqs()).to.deep.equal([5, 6, 7])
    const v = await verify({AUDIT_LOGS_ACCESS_RETENTION_DAYS: '90'})
    expect(v.exitCode, v.stdout + v.stderr).to.equal(0)
    expect(chain(v.json()).pruned).to.include({throughSeq: 4, records: 8})
    // verified with a longer access retention than cleanup applied (the retention raised since): cleanup signed the
    // retention it applied with integrityKey, so its cutoff, and the prune by it, are honoured, with a note
    const longer = await verify()
    expect(longer.exitCode, longer.stdout).to.equal(0)
    expect(longer.json().warnings.join('\n')).to.include(
      'access retention cutoff(s) were applied under a retention of 90 days, shorter than the 120 configured now: honoured',
    )
    // unsigned (a row someone wrote, or a cleanup without the key), the cutoff is bounded by the 120 days: neither is honoured
    const signed = await q(`SELECT cutoff, statement, signature FROM integrity_retention WHERE log_type = 'access'`)
    await q(`UPDATE integrity_retention SET statement = NULL, signature = NULL WHERE log_type = 'access'`)
    try {
      const unsigned = await verify()
      expect(unsigned.exitCode).to.equal(8)
      expect(unsigned.json().badRetention.map((b: {logType: string}) => b.logType)).to.deep.equal(['access'])
      expect(unsigned.json().badPruning.map((b: {instance: string}) => b.instance)).to.deep.equal(['import@p'])
      expect(unsigned.json().badPruning[0].why).to.match(/no access retention cutoff is honoured/)
    } finally {
      for (const r of signed)
        await q(`UPDATE integrity_retention SET statement = $2, signature = $3 WHERE log_type = 'access' AND cutoff = $1`, [
          r.cutoff,
          r.statement,
          r.signature,
        ])
    }
  })

  // from here on the configuration is the one cleanup applied last (access kept 90 days)
  const env90 = {AUDIT_LOGS_ACCESS_RETENTION_DAYS: '90'}

  it('deleting the first remaining batch (recent, not past retention) is still a gap', async () => {
    await q(`CREATE TABLE saved_batch AS SELECT * FROM integrity_batches WHERE instance = 'import@p' AND seq = 5`)
    await q(`DELETE FROM integrity_batches WHERE instance = 'import@p' AND seq = 5`)
    try {
      const r = await verify(env90)
      expect(r.exitCode).to.equal(8)
      const p = chain(r.json())
      expect(p.gaps).to.deep.equal([{from: 5, to: 5}])
      expect(r.json().inserted.length).to.equal(2) // its records, in no batch now
      // and cleanup does not prune across it: the chain does not start where it was pruned
      const c = await cleanup(['--json'], env90)
      expect(c.json().integrity.batches).to.equal(0)
      expect(c.json().integrity.notes.join('\n')).to.match(/import@p: its chain starts at batch 6, not 5 where it was last pruned/)
    } finally {
      await q(`INSERT INTO integrity_batches SELECT * FROM saved_batch; DROP TABLE saved_batch`)
    }
    expect((await verify(env90)).exitCode).to.equal(0)
  })

  it('recent batches deleted with their records and recorded as pruned are caught by the signed digest of their head', async () => {
    const [b6] = await q(`SELECT hash, total FROM integrity_batches WHERE instance = 'import@p' AND seq = 6`)
    const [saved] = await q(`SELECT * FROM integrity_pruned WHERE instance = 'import@p'`)
    await q(`CREATE TABLE saved_batches AS SELECT * FROM integrity_batches WHERE instance = 'import@p' AND seq IN (5, 6)`)
    await q(`CREATE TABLE saved_rows AS SELECT r.* FROM request_logs r WHERE r.id IN (SELECT unnest(ids) FROM saved_batches)`)
    await q(`DELETE FROM request_logs WHERE id IN (SELECT id FROM saved_rows)`)
    await q(`DELETE FROM integrity_batches WHERE instance = 'import@p' AND seq IN (5, 6)`)
    // the forger claims old records, as a real prune of batches past retention would record
    await q(`UPDATE integrity_pruned SET through_seq = 6, hash = $1, total = $2 WHERE instance = 'import@p'`, [b6.hash, b6.total])
    try {
      const r = await verify(env90)
      expect(r.exitCode, r.stdout).to.equal(8)
      const p = chain(r.json())
      expect(p.gaps).to.deep.equal([])
      expect(
        p.badDigests.some(
          (d: {seq: number; why: string}) =>
            d.seq === 6 && /was pruned, but it signs request records up to .* newer than the request retention/.test(d.why),
        ),
      ).to.equal(true)
    } finally {
      await q(`UPDATE integrity_pruned SET through_seq = $1, hash = $2, total = $3 WHERE instance = 'import@p'`, [
        saved.through_seq,
        saved.hash,
        saved.total,
      ])
      await q(`INSERT INTO request_logs SELECT * FROM saved_rows; INSERT INTO integrity_batches SELECT * FROM saved_batches`)
      await q(`DROP TABLE saved_rows, saved_batches`)
    }
    expect((await verify(env90)).exitCode).to.equal(0)
  })

  it('recent batches recorded as pruned up to a batch no digest signs are caught by the next digest, which signs them with the rest', async () => {
    // batches 5 and 6 came from one import (its digest signs head 6): 5 alone deleted and recorded as pruned
    const [b5] = await q(`SELECT hash, total, ids::text[] AS ids FROM integrity_batches WHERE instance = 'import@p' AND seq = 5`)
    const [saved] = await q(`SELECT * FROM integrity_pruned WHERE instance = 'import@p'`)
    await q(`CREATE TABLE saved_batch5 AS SELECT * FROM integrity_batches WHERE instance = 'import@p' AND seq = 5`)
    await q(`CREATE TABLE saved_rows5 AS SELECT * FROM request_logs WHERE id = ANY($1::uuid[])`, [b5.ids])
    await q(`DELETE FROM request_logs WHERE id = ANY($1::uuid[])`, [b5.ids])
    await q(`DELETE FROM integrity_batches WHERE instance = 'import@p' AND seq = 5`)
    await q(`UPDATE integrity_pruned SET through_seq = 5, hash = $1, total = $2 WHERE instance = 'import@p'`, [b5.hash, b5.total])
    try {
      const r = await verify(env90)
      expect(r.exitCode, r.stdout).to.equal(8)
      const p = chain(r.json())
      expect(p.gaps).to.deep.equal([])
      expect(p.badBatches).to.deep.equal([])
      expect(p.badDigests.map((d: {seq: number; why: string}) => [d.seq, d.why])).to.deep.include([
        6,
        "batches 5..5 were recorded as pruned, but this digest, which signs them with the batches after them, holds no record older than its type's retention cutoff: batches were deleted that retention did not remove",
      ])
      // and a digest row the owner adds at the pruned head, unsigned and dated long before --since, excuses nothing
      const body = JSON.stringify({
        v: 1,
        instance: 'import@p',
        seq: 5,
        hash: b5.hash.toString('hex'),
        total: Number(b5.total),
        at: '1960-01-01T00:00:00.000Z',
      })
      await q(`INSERT INTO integrity_digests (instance, seq, body, signature) VALUES ('import@p', 5, $1, NULL)`, [body])
      const forged = await verify(env90)
      expect(forged.exitCode, forged.stdout).to.equal(8)
      expect(chain(forged.json()).badDigests.map((d: {seq: number; why: string}) => [d.seq, d.why])).to.deep.include.members([
        [5, 'unsigned'],
        [
          6,
          "batches 5..5 were recorded as pruned, but this digest, which signs them with the batches after them, holds no record older than its type's retention cutoff: batches were deleted that retention did not remove",
        ],
      ])
    } finally {
      await q(`DELETE FROM integrity_digests WHERE instance = 'import@p' AND seq = 5 AND signature IS NULL`)
      await q(`UPDATE integrity_pruned SET through_seq = $1, hash = $2, total = $3 WHERE instance = 'import@p'`, [
        saved.through_seq,
        saved.hash,
        saved.total,
      ])
      await q(`INSERT INTO request_logs SELECT * FROM saved_rows5; INSERT INTO integrity_batches SELECT * FROM saved_batch5`)
      await q(`DROP TABLE saved_rows5, saved_batch5`)
    }
    expect((await verify(env90)).exitCode).to.equal(0)
  })

  it('a forged pruned start (records newer than retention) is flagged and not honoured; a changed pruned hash breaks the first link', async () => {
    const [saved] = await q(`SELECT * FROM integrity_pruned WHERE instance = 'import@p'`)
    await q(
      `UPDATE integrity_pruned SET newest = jsonb_build_object('request', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')) WHERE instance = 'import@p'`,
    )
    try {
      const r = await verify(env90)
      expect(r.exitCode).to.equal(8)
      const report = r.json()
      expect(report.badPruning).to.have.length(1)
      expect(report.badPruning[0]).to.include({instance: 'import@p', throughSeq: 4})
      expect(report.badPruning[0].why).to.match(/request batches hold records up to .* not before the request cutoff honoured/)
      expect(chain(report).gaps).to.deep.equal([{from: 4, to: 4}]) // not honoured: the missing batch before the first is a gap again
      const text = await runCli(['verify', '--since', '200d', '--digests', path.join(logDir, 'digests.jsonl')], {env: env(env90), cwd: dir})
      expect(text.stdout).to.match(/BAD PRUNING import@p batches 1\.\.4: /)
    } finally {
      await q(`UPDATE integrity_pruned SET newest = $1 WHERE instance = 'import@p'`, [saved.newest])
    }
    await q(`UPDATE integrity_pruned SET hash = sha256(hash) WHERE instance = 'import@p'`)
    try {
      const r = await verify(env90)
      expect(r.exitCode).to.equal(8)
      const p = chain(r.json())
      expect(p.badBatches).to.deep.equal([{seq: 5, why: "its prev_hash is not batch 4's hash (as integrity_pruned recorded it)"}])
      expect(
        p.badDigests.some((d: {seq: number; why: string}) => d.seq === 4 && /integrity_pruned recorded another hash/.test(d.why)),
      ).to.equal(true)
    } finally {
      await q(`UPDATE integrity_pruned SET hash = $1 WHERE instance = 'import@p'`, [saved.hash])
    }
    expect((await verify(env90)).exitCode).to.equal(0)
  })

  it('a forged retention cutoff beyond the configured retention neither prunes recent batches nor passes verify', async () => {
    await q(`INSERT INTO integrity_retention (log_type, cutoff, how) VALUES ('request', now(), 'forged')`)
    try {
      const c = await cleanup(['--json'], env90)
      expect(c.exitCode, c.stderr).to.equal(0)
      expect(c.json().integrity.batches).to.equal(0)
      expect(await seqs()).to.deep.equal([5, 6, 7])
      const r = await verify(env90)
      expect(r.exitCode).to.equal(8)
      expect(r.json().badRetention.map((b: {logType: string}) => b.logType)).to.deep.equal(['request'])
    } finally {
      await q(`DELETE FROM integrity_retention WHERE how = 'forged'`)
    }
    expect((await verify(env90)).exitCode).to.equal(0)
  })

  it('run --maintenance prunes too, and says so in its log', async () => {
    await importOld('request', 4, 100 * DAY, 'm')
    expect(await seqs('import@m')).to.deep.equal([1, 2])
    const app = await startUpstream()
    const run = await startRun(['--upstream', app.url, '--workers', '1', '--maintenance'], {
      ...env(env90),
      AUDIT_LOGS_INSTANCE: 'maint',
      AUDIT_LOGS_MAINTENANCE_INTERVAL_MS: '4000',
    })
    try {
      await until(async () => (await seqs('import@m')).join() === '2' || undefined, 60_000, 'import@m pruned through 1')
      await until(() => /integrity batch row\(s\) pruned/.test(run.stderr()) || undefined, 30_000, 'the maintenance log line')
      expect(run.stderr()).to.match(
        /maintenance of the period from .* done in \d+ ms: .* row\(s\) removed, \d+ integrity batch row\(s\) pruned/,
      )
    } finally {
      await run.stop()
      await app.close()
    }
    // the maintenance thread signs the cutoffs it applies, as cleanup does
    const [last] = await q(`SELECT statement FROM integrity_retention WHERE log_type = 'request' ORDER BY written_at DESC LIMIT 1`)
    expect(JSON.parse(last.statement)).to.include({kind: 'retention', log_type: 'request', days: 90})
    const v = await verify(env90)
    expect(v.exitCode, v.stdout + v.stderr).to.equal(0)
    expect(chain(v.json(), 'import@m').pruned).to.include({throughSeq: 1})
    // a --since after everything import@m kept (its head holds records of 100 days ago): its signed digests in the
    // file are before the range, not a chain cut to nothing
    const recent = await verify(env90, '1h')
    expect(recent.exitCode, recent.stdout + recent.stderr).to.equal(0)
    expect(chain(recent.json(), 'import@m')).to.include({firstSeq: null, lastSeq: 2, batches: 0})
    expect(recent.json().warnings.join('\n')).not.to.include('import@m')
    // but a recent batch of it cut off (with its records) is still a cut tail: its signed digest is beyond the head
    await importOld('request', 2, 60_000, 'm')
    const [{ids}] = await q(`SELECT ids::text[] AS ids FROM integrity_batches WHERE instance = 'import@m' AND seq = 3`)
    await q(`DELETE FROM request_logs WHERE id = ANY($1::uuid[])`, [ids])
    await q(`DELETE FROM integrity_batches WHERE instance = 'import@m' AND seq = 3`)
    const cut = await verify(env90, '1h')
    expect(cut.exitCode).to.equal(8)
    const m = chain(cut.json(), 'import@m')
    expect(m.badDigests.map((d: {seq: number; why: string}) => [d.seq, d.why])).to.deep.include([
      3,
      'the chain ends at 2: batches up to the signed head 3 are gone',
    ])
  })

  /**
   * A database of its own, for setup-db's grants: `setup()` runs setup-db on it (again), `su` is the superuser's
   * client to it (connected by the test), `roleUrl` a role's URL with its password, `drop()` removes it all.
   */
  function ownDatabase(prefix: string) {
    const name = `${prefix}_${randomUUID().slice(0, 8)}`
    const passwords = {
      AUDIT_LOGS_OWNER_PASSWORD: 'o-' + randomUUID(),
      AUDIT_LOGS_WRITER_PASSWORD: 'w-' + randomUUID(),
      AUDIT_LOGS_READER_PASSWORD: 'r-' + randomUUID(),
    }
    const su = new pg.Client(clientConfig(withDatabase(serverUrl(), name)))
    return {
      name,
      su,
      setup: () => runCli(['setup-db', '--database-url', serverUrl(), '--db-name', name], {env: passwords, cwd: dir}),
      roleUrl(role: 'writer' | 'reader') {
        const url = new URL(withDatabase(serverUrl(), name))
        url.username = `${name}_${role}`
        url.password = role === 'writer' ? passwords.AUDIT_LOGS_WRITER_PASSWORD : passwords.AUDIT_LOGS_READER_PASSWORD
        return url.toString()
      },
      async drop() {
        await su.end().catch(() => {})
        await dropDatabase(name)
        await dropRoles(name)
      },
    }
  }

  it('setup-db grants the reader integrity_pruned (also to a database set up before it), and verify as the reader reads it', async () => {
    const {name, su, setup, roleUrl, drop} = ownDatabase('pr')
    try {
      const made = await setup()
      expect(made.exitCode, made.stderr).to.equal(0)
      await su.connect()
      const granted = async () =>
        (await su.query(`SELECT has_table_privilege($1, 'integrity_pruned', 'SELECT') AS ok`, [`${name}_reader`])).rows[0].ok
      expect(await granted()).to.equal(true)
      // a database whose setup-db came before 0007 (the grant missing): setup-db again grants it
      await su.query(`REVOKE SELECT ON integrity_pruned FROM "${name}_reader"`)
      expect(await granted()).to.equal(false)
      const asReader = () =>
        runCli(['verify', '--since', '1d', '--json'], {
          env: {AUDIT_LOGS_DATABASE_URL: roleUrl('reader'), AUDIT_LOGS_LOG_DIR: mkdtempSync(path.join(dir, 'empty-'))},
          cwd: dir,
        })
      const without = await asReader()
      expect(without.exitCode, without.stderr).to.equal(0)
      expect(without.json().warnings.join('\n')).to.match(/cannot read integrity_pruned \(run `audit-logs setup-db`, which grants it\)/)
      const again = await setup()
      expect(again.exitCode, again.stderr).to.equal(0)
      expect(await granted()).to.equal(true)
      const r = await asReader()
      expect(r.exitCode, r.stderr).to.equal(0)
      expect(r.json().warnings.join('\n')).not.to.include('integrity_pruned')
    } finally {
      await drop()
    }
  })

  it('setup-db takes back the TEMPORARY an earlier setup-db gave the writer (a batch is one statement now), and the writer still writes', async () => {
    const {name, su, setup, roleUrl, drop} = ownDatabase('pt')
    const w = new pg.Client(clientConfig(roleUrl('writer')))
    try {
      expect((await setup()).exitCode).to.equal(0)
      await su.connect()
      const temporary = async () =>
        (await su.query(`SELECT has_database_privilege($1, current_database(), 'TEMPORARY') AS ok`, [`${name}_writer`])).rows[0].ok
      expect(await temporary()).to.equal(false)
      await su.query(`GRANT TEMPORARY ON DATABASE "${name}" TO "${name}_writer"`) // what setup-db granted before
      const again = await setup()
      expect(again.exitCode, again.stderr).to.equal(0)
      expect(await temporary()).to.equal(false)
      const third = await setup()
      expect(third.stdout).to.match(/privileges.*unchanged|unchanged.*privileges/i)
      await w.connect()
      const [r] = [...generateRecords({rows: 3, days: 1, seed: 3})]
      expect((await writeRecords(w, 'request', [r])).inserted).to.equal(1)
    } finally {
      await w.end().catch(() => {})
      await drop()
    }
  })
})
