import {existsSync, mkdtempSync, readFileSync, statSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {appAndDatabase} from '../helpers/app-and-database.js'
import {type CliResult, runCli} from '../helpers/cli.js'
import {type RunningServer, request, startRun, until} from '../helpers/run-server.js'
import {freshDatabase} from '../helpers/db.js'
import {ZERO_HASH, chainHash, recordsHashOf} from '../../src/stores/postgres/integrity.js'
import {insertBatch, rowHash, utcText} from '../../src/stores/postgres/sql/integrity.js'

/**
 * Tamper evidence end to end: `run` chains what it writes and signs the head, then a superuser changes
 * history each way and `verify` must name what changed (exit 8), and be clean again once it is undone.
 */
describe('audit-logs verify: integrity chains against a superuser (subprocess, real PostgreSQL)', function () {
  this.timeout(180_000)
  let run: RunningServer | undefined
  after(() => run?.stop())
  const ctx = appAndDatabase()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-verify-'))
  const key = path.join(dir, 'integrity.pem')
  const env = () => ({
    AUDIT_LOGS_DATABASE_URL: ctx.db.url,
    AUDIT_LOGS_INTEGRITY_KEY: key,
    AUDIT_LOGS_INSTANCE: 'e2e-a',
    AUDIT_LOGS_INTEGRITY_DIGEST_INTERVAL_MS: '1000',
    // verify bounds each recorded retention cutoff by this (the cleanup test keeps 30 days of events)
    AUDIT_LOGS_EVENT_RETENTION_DAYS: '30',
  })
  let logDir = ''
  const verify = (args: string[] = [], extra: Record<string, string> = {}): Promise<CliResult> =>
    runCli(
      [
        'verify',
        ...(args.includes('--since') ? [] : ['--since', '1d']),
        '--json',
        '--digests',
        path.join(logDir, 'digests.jsonl'),
        ...args,
      ],
      {
        env: {...env(), ...extra},
        cwd: dir,
      },
    )
  const q = async (text: string, values: unknown[] = []) => (await ctx.db.client.query(text, values)).rows
  const traffic = async (n: number, tag: string) => {
    const before = Number((await q('SELECT count(*) AS n FROM request_logs'))[0].n)
    for (let i = 0; i < n; i++) await request(`${run!.url}/json?tag=${tag}&i=${i}`)
    await until(
      async () => Number((await q('SELECT count(*) AS n FROM request_logs'))[0].n) >= before + n || undefined,
      60_000,
      `${n} records`,
    )
  }

  it('keygen writes an Ed25519 pair (the private key 0600), and refuses to overwrite it', async () => {
    const made = await runCli(['verify', 'keygen', '--out', key], {cwd: dir})
    expect(made.exitCode, made.stderr).to.equal(0)
    expect(statSync(key).mode & 0o777).to.equal(0o600)
    expect(readFileSync(key, 'utf8')).to.match(/^-----BEGIN PRIVATE KEY-----/)
    expect(readFileSync(path.join(dir, 'integrity.pub.pem'), 'utf8')).to.match(/^-----BEGIN PUBLIC KEY-----/)
    expect(made.stdout).not.to.include('BEGIN')
    const again = await runCli(['verify', 'keygen', '--out', key], {cwd: dir})
    expect(again.exitCode).to.equal(2)
    expect(again.stderr).to.match(/exists: a key is never overwritten/)
    // into a directory that does not exist yet (the README's /etc/audit-logs/integrity.pem): made, private to its owner
    const elsewhere = path.join(dir, 'etc', 'audit-logs', 'integrity.pem')
    const made2 = await runCli(['verify', 'keygen', '--out', elsewhere], {cwd: dir})
    expect(made2.exitCode, made2.stderr).to.equal(0)
    expect(statSync(path.dirname(elsewhere)).mode & 0o777).to.equal(0o700)
    expect(statSync(elsewhere).mode & 0o777).to.equal(0o600)
  })

  it('run refuses a key that is not Ed25519, naming what is accepted', async () => {
    const bad = await startRun(
      ['--upstream', ctx.app.url, '--workers', '1'],
      {...env(), AUDIT_LOGS_INTEGRITY_KEY: '/nonexistent/k.pem'},
      {expectFailure: true},
    )
    const r = await bad.child
    expect(r.exitCode).to.equal(2)
    // the setting is a secret: even its value (here a path) is masked in the message
    expect(bad.stderr(), bad.stderr()).to.match(/integrityKey: cannot read the key file it names \(ENOENT\)/)
    expect(bad.stderr()).not.to.include('/nonexistent/k.pem')
  })

  it('run chains and signs what it writes; verify is clean (exit 0) and proves the head', async () => {
    run = await startRun(['--upstream', ctx.app.url, '--workers', '1'], env())
    logDir = run.logDir
    await traffic(20, 'a')
    await run.stop()
    run = undefined
    expect(existsSync(path.join(logDir, 'digests.jsonl'))).to.equal(true)
    expect(statSync(path.join(logDir, 'digests.jsonl')).mode & 0o777).to.equal(0o640) // doctor warns of o+r files there
    const r = await verify()
    expect(r.exitCode, r.stdout + r.stderr).to.equal(0)
    const report = r.json()
    expect(report.ok).to.equal(true)
    const a = report.instances.find((i: {instance: string}) => i.instance === 'e2e-a')
    expect(a.records).to.equal(40) // 20 request + 20 access records
    expect(a.digests.lastSignedSeq).to.equal(a.lastSeq) // the last digest, at stop, signs the head
    expect(a.headUnproven).to.equal(false)
    // the same check with the public key alone (what an auditor holds)
    const pub = await verify(['--public-key', path.join(dir, 'integrity.pub.pem')], {AUDIT_LOGS_INTEGRITY_KEY: ''})
    expect(pub.exitCode, pub.stderr).to.equal(0)
  })

  it("import of the run's JSONL into a fresh database is chained as its own instance and signed: verify is clean", async () => {
    const fresh = await freshDatabase({migrated: true})
    const idir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-verify-import-'))
    try {
      const ienv = {...env(), AUDIT_LOGS_DATABASE_URL: fresh.url}
      const imp = await runCli(['import', logDir, '--stores', 'postgres'], {env: ienv, cwd: idir})
      expect(imp.exitCode, imp.stdout + imp.stderr).to.equal(0)
      expect(imp.stderr).not.to.include('NOT chained')
      const r = await runCli(['verify', '--since', '1d', '--json'], {env: ienv, cwd: idir})
      expect(r.exitCode, r.stdout + r.stderr).to.equal(0)
      const report = r.json()
      expect(report.inserted).to.deep.equal([])
      expect(report.instances.map((i: {instance: string}) => i.instance)).to.deep.equal(['import@e2e-a'])
      expect(report.instances[0].records).to.equal(40)
      expect(report.instances[0].digests.lastSignedSeq).to.equal(report.instances[0].lastSeq)
    } finally {
      await fresh.drop()
    }
  })

  it('an UPDATE of a record is reported as changed, with its id and table', async () => {
    const [row] = await q(`SELECT id::text, path FROM request_logs ORDER BY created_at LIMIT 1 OFFSET 3`)
    await q(`UPDATE request_logs SET user_id = 'mallory' WHERE id = $1`, [row.id])
    const r = await verify()
    expect(r.exitCode).to.equal(8)
    const a = r.json().instances[0]
    expect(a.changed.map((c: {id: string; table: string}) => [c.id, c.table])).to.deep.equal([[row.id, 'request_logs']])
    await q(`UPDATE request_logs SET user_id = NULL WHERE id = $1`, [row.id])
    expect((await verify()).exitCode).to.equal(0)
  })

  it('a DELETE of a record is reported as deleted', async () => {
    const [row] = await q(`SELECT id::text FROM access_logs ORDER BY created_at LIMIT 1 OFFSET 5`)
    await q(`CREATE TABLE saved_access AS SELECT * FROM access_logs WHERE id = $1`, [row.id])
    await q(`DELETE FROM access_logs WHERE id = $1`, [row.id])
    const r = await verify()
    expect(r.exitCode).to.equal(8)
    expect(r.json().instances[0].deleted.map((c: {id: string; table: string}) => [c.id, c.table])).to.deep.equal([[row.id, 'access_logs']])
    expect(r.stdout).to.include(row.id)
    await q(`INSERT INTO access_logs SELECT * FROM saved_access; DROP TABLE saved_access`)
    expect((await verify()).exitCode).to.equal(0)
  })

  it('an INSERT of a forged record is reported as inserted', async () => {
    const forged = '0190a0a0-0000-7000-8000-000000000001'
    await q(
      `INSERT INTO request_logs SELECT $1::uuid, now() - interval '1 hour', method, scheme, host, '/forged', query, request_headers,
        request_body, request_body_size, request_body_truncated, status_code, response_headers, response_body, response_body_size,
        response_body_truncated, duration_ms, ip, user_id, user_agent, session_id, trace_id, request_id, flags, error, extra, instance
       FROM request_logs LIMIT 1`,
      [forged],
    )
    const r = await verify()
    expect(r.exitCode).to.equal(8)
    expect(r.json().inserted.map((x: {id: string; table: string}) => [x.id, x.table])).to.deep.equal([[forged, 'request_logs']])
    await q(`DELETE FROM request_logs WHERE id = $1`, [forged])
    expect((await verify()).exitCode).to.equal(0)
  })

  it('an instance the owner invented (forged records, batch rows with correct hashes, no digest) fails as unsigned batches', async () => {
    const ids = ['0190a0a0-0000-7000-8000-0000000000f1', '0190a0a0-0000-7000-8000-0000000000f2']
    for (const id of ids)
      await q(
        `INSERT INTO request_logs SELECT $1::uuid, now() - interval '2 hours', method, scheme, host, '/forged', query, request_headers,
          request_body, request_body_size, request_body_truncated, status_code, response_headers, response_body, response_body_size,
          response_body_truncated, duration_ms, ip, user_id, user_agent, session_id, trace_id, request_id, flags, error, extra, instance
         FROM request_logs LIMIT 1`,
        [id],
      )
    // the hashes as the writer computes them: each row's by PostgreSQL, the chain's in Node
    const rows = await q(
      `SELECT r.id::text AS id, ${utcText('r.created_at')} AS at, ${rowHash('request', 'r')} AS h FROM request_logs r WHERE r.id = ANY($1::uuid[]) ORDER BY r.id`,
      [ids],
    )
    const recordHashes = Buffer.concat(rows.map((r) => r.h as Buffer))
    const ats = rows.map((r) => r.at as string).sort()
    const link = {
      instance: 'forged-1',
      seq: 1,
      logType: 'request',
      count: 2,
      total: 2,
      min: ats[0],
      max: ats[1],
      prevHash: ZERO_HASH,
      recordsHash: recordsHashOf(recordHashes),
    }
    const batch = insertBatch({
      ...link,
      logType: 'request',
      ids: rows.map((r) => r.id as string),
      ats: rows.map((r) => r.at as string),
      recordHashes,
      hash: chainHash(link),
    })
    await q(batch.text, batch.values as unknown[])
    const r = await verify()
    expect(r.exitCode, r.stdout + r.stderr).to.equal(8)
    const forged = r.json().instances.find((i: {instance: string}) => i.instance === 'forged-1')
    expect(forged.badBatches).to.deep.equal([]) // its hashes hold: only the missing signature gives it away
    expect(forged.unsigned).to.include({from: 1, to: 1})
    expect(forged.unsigned.why).to.match(/^unsigned batches: no valid signed digest/)
    const text = await runCli(['verify', '--since', '1d', '--digests', path.join(logDir, 'digests.jsonl')], {env: env(), cwd: dir})
    expect(text.exitCode).to.equal(8)
    expect(text.stdout).to.match(/forged-1: batches 1\.\.1/)
    expect(text.stdout).to.match(/UNSIGNED +batch 1: unsigned batches/)
    // without any key digests cannot be expected: a warning, as before
    const keyless = await verify([], {AUDIT_LOGS_INTEGRITY_KEY: ''})
    expect(keyless.exitCode, keyless.stdout).to.equal(0)
    expect(keyless.json().warnings.join('\n')).to.match(/no public key/)
    // and no instance's batches are said to be "signed at the next digest": nothing here can tell
    expect(keyless.json().warnings.join('\n')).not.to.match(/after the last signed digest/)
    await q(`DELETE FROM integrity_batches WHERE instance = 'forged-1'`)
    await q(`DELETE FROM request_logs WHERE id = ANY($1::uuid[])`, [ids])
    expect((await verify()).exitCode).to.equal(0)
  })

  it('a DELETE of a batch row is reported as a gap (and its records as in no batch)', async () => {
    const [{seq}] = await q(`SELECT seq FROM integrity_batches WHERE instance = 'e2e-a' ORDER BY seq OFFSET 1 LIMIT 1`)
    await q(`CREATE TABLE saved_batch AS SELECT * FROM integrity_batches WHERE instance = 'e2e-a' AND seq = $1`, [seq])
    await q(`DELETE FROM integrity_batches WHERE instance = 'e2e-a' AND seq = $1`, [seq])
    const r = await verify()
    expect(r.exitCode).to.equal(8)
    const report = r.json()
    expect(report.instances[0].gaps).to.deep.equal([{from: Number(seq), to: Number(seq)}])
    expect(report.inserted.length).to.be.greaterThan(0)
    const text = await runCli(['verify', '--since', '1d', '--digests', path.join(logDir, 'digests.jsonl')], {env: env(), cwd: dir})
    expect(text.exitCode).to.equal(8)
    expect(text.stdout).to.match(new RegExp(`GAP +batch ${seq} missing`))
    expect(text.stdout).to.match(/TAMPERED/)
    await q(`INSERT INTO integrity_batches SELECT * FROM saved_batch; DROP TABLE saved_batch`)
    expect((await verify()).exitCode).to.equal(0)
  })

  it('cutting the tail of the chain leaves a signed digest the chain no longer reaches', async () => {
    await q(
      `CREATE TABLE saved_tail AS SELECT * FROM integrity_batches WHERE instance = 'e2e-a' AND seq = (SELECT max(seq) FROM integrity_batches WHERE instance = 'e2e-a')`,
    )
    const [{seq, ids, log_type}] = await q(`SELECT seq, ids::text[] AS ids, log_type FROM saved_tail`)
    const table = log_type === 'request' ? 'request_logs' : 'access_logs'
    await q(`CREATE TABLE saved_tail_rows AS SELECT * FROM ${table} WHERE id = ANY($1::uuid[])`, [ids])
    await q(`DELETE FROM ${table} WHERE id = ANY($1::uuid[])`, [ids])
    await q(`DELETE FROM integrity_batches WHERE instance = 'e2e-a' AND seq = $1`, [seq])
    const r = await verify()
    expect(r.exitCode).to.equal(8)
    const bad = r.json().instances[0].badDigests
    expect(bad.some((d: {seq: number; why: string}) => d.seq === Number(seq) && /the chain ends at/.test(d.why))).to.equal(true)
    await q(
      `INSERT INTO ${table} SELECT * FROM saved_tail_rows; INSERT INTO integrity_batches SELECT * FROM saved_tail; DROP TABLE saved_tail, saved_tail_rows`,
    )
    expect((await verify()).exitCode).to.equal(0)
  })

  it('a digest whose body was changed is reported as a bad signature', async () => {
    const [d] = await q(`SELECT seq, body FROM integrity_digests WHERE instance = 'e2e-a' ORDER BY seq DESC LIMIT 1`)
    const body = JSON.parse(d.body)
    await q(`UPDATE integrity_digests SET body = $1 WHERE instance = 'e2e-a' AND seq = $2`, [
      JSON.stringify({...body, total: body.total + 1}),
      d.seq,
    ])
    const r = await verify()
    expect(r.exitCode).to.equal(8)
    const bad = r.json().instances[0].badDigests
    expect(bad).to.deep.include({
      seq: Number(d.seq),
      source: 'database',
      why: 'bad signature (its body or signature was changed, or another key signed it)',
    })
    await q(`UPDATE integrity_digests SET body = $1 WHERE instance = 'e2e-a' AND seq = $2`, [d.body, d.seq])
    expect((await verify()).exitCode).to.equal(0)
  })

  it('a batch row whose hash was rewritten is reported, and the signed digest disagrees with it', async () => {
    // an owner who rewrites a record and recomputes the chain changes the head's hash: the signed digest no longer matches it
    const [b] = await q(`SELECT seq, hash FROM integrity_batches WHERE instance = 'e2e-a' ORDER BY seq DESC LIMIT 1`)
    await q(`UPDATE integrity_batches SET hash = sha256(hash) WHERE instance = 'e2e-a' AND seq = $1`, [b.seq])
    const r = await verify()
    expect(r.exitCode).to.equal(8)
    const a = r.json().instances[0]
    expect(a.badBatches.map((x: {seq: number}) => x.seq)).to.include(Number(b.seq))
    expect(a.badDigests.some((x: {why: string}) => /the chain was rewritten/.test(x.why))).to.equal(true)
    await q(`UPDATE integrity_batches SET hash = $2 WHERE instance = 'e2e-a' AND seq = $1`, [b.seq, b.hash])
    expect((await verify()).exitCode).to.equal(0)
  })

  it("a record re-dated in its batch row, inside the batch's [min, max] (to pass its deletion off as retention), makes the batch's hash wrong", async () => {
    const [b] = await q(
      `SELECT seq, created_ats::text AS saved FROM integrity_batches
       WHERE instance = 'e2e-a' AND min_created_at < max_created_at ORDER BY seq LIMIT 1`,
    )
    expect(b, 'a batch whose records span some time').to.not.equal(undefined)
    // its newest records dated as its oldest: min and max (hashed since v1) stay as they were
    await q(
      `UPDATE integrity_batches SET created_ats = array_replace(created_ats, max_created_at, min_created_at) WHERE instance = 'e2e-a' AND seq = $1`,
      [b.seq],
    )
    const r = await verify()
    expect(r.exitCode).to.equal(8)
    const bad = r.json().instances[0].badBatches.find((x: {seq: number}) => x.seq === Number(b.seq))
    expect(bad?.why).to.match(/its hash is not the hash of its fields/)
    await q(`UPDATE integrity_batches SET created_ats = $2::timestamptz[] WHERE instance = 'e2e-a' AND seq = $1`, [b.seq, b.saved])
    expect((await verify()).exitCode).to.equal(0)
  })

  it('cleanup dropping an old partition is recorded as retention: verify stays clean', async () => {
    // an old event, written through the chain into a partition of its own
    const old = new Date(Date.now() - 100 * 86_400_000)
    const from = new Date(Date.UTC(old.getUTCFullYear(), old.getUTCMonth(), 1))
    const to = new Date(Date.UTC(old.getUTCFullYear(), old.getUTCMonth() + 1, 1))
    await q(`CREATE TABLE event_logs_old PARTITION OF event_logs FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`)
    const ev = await runCli(['event', '--action', 'CREATE', '--actor', '7', '--created-at', old.toISOString(), '--log-dir', logDir], {
      env: env(),
      cwd: dir,
    })
    expect(ev.exitCode, ev.stderr).to.equal(0)
    expect(Number((await q(`SELECT count(*) AS n FROM event_logs_old`))[0].n)).to.equal(1)
    const before = await verify(['--since', '200d'])
    expect(before.exitCode, before.stdout).to.equal(0)

    const clean = await runCli(['cleanup', '--days', '30', '--log-type', 'event', '--store', 'postgres'], {env: env(), cwd: dir})
    expect(clean.exitCode, clean.stderr).to.equal(0)
    expect(clean.stdout).to.match(/dropped/)
    expect((await q(`SELECT to_regclass('event_logs_old') AS t`))[0].t).to.equal(null)
    expect(await q(`SELECT log_type FROM integrity_retention`)).to.deep.equal([{log_type: 'event'}])
    const after = await verify(['--since', '200d'])
    expect(after.exitCode, after.stdout).to.equal(0)
    expect(after.json().instances[0].removedByRetention).to.equal(1)
  })

  it('a retention raised since: the cutoff cleanup signed is honoured by the retention it applied; altered, it is flagged', async () => {
    // the cleanup above applied the configured 30 days of events, and signed its cutoff with integrityKey
    const [row] = await q(`SELECT statement, signature FROM integrity_retention WHERE log_type = 'event'`)
    expect(JSON.parse(row.statement)).to.include({kind: 'retention', store: 'postgres', log_type: 'event', days: 30})
    const raised = await verify(['--since', '200d'], {AUDIT_LOGS_EVENT_RETENTION_DAYS: '365'})
    expect(raised.exitCode, raised.stdout).to.equal(0)
    expect(raised.json().instances[0].removedByRetention).to.equal(1)
    expect(raised.json().warnings.join('\n')).to.include(
      '1 event retention cutoff(s) were applied under a retention of 30 days, shorter than the 365 configured now: honoured',
    )
    // the statement made to say a shorter retention: its signature no longer checks, and the cutoff is bounded by 365 days
    await q(`UPDATE integrity_retention SET statement = replace(statement, '"days":30', '"days":20') WHERE log_type = 'event'`)
    const altered = await verify(['--since', '200d'], {AUDIT_LOGS_EVENT_RETENTION_DAYS: '365'})
    expect(altered.exitCode, altered.stdout).to.equal(8)
    expect(altered.json().badRetention[0].why).to.match(/365 days .*; its signed statement does not check with the key/)
    await q(`UPDATE integrity_retention SET statement = $1 WHERE log_type = 'event'`, [row.statement])
    expect((await verify(['--since', '200d'], {AUDIT_LOGS_EVENT_RETENTION_DAYS: '365'})).exitCode).to.equal(0)
    // an old event chained after that cleanup (a late import, say), then deleted: the signed 30 days do not cover it
    const old = new Date(Date.now() - 100 * 86_400_000).toISOString()
    const late = await runCli(['event', '--action', 'LATE', '--actor', '8', '--created-at', old, '--log-dir', logDir], {
      env: env(),
      cwd: dir,
    })
    expect(late.exitCode, late.stderr).to.equal(0)
    const [{id}] = await q(`SELECT id::text FROM event_logs WHERE action = 'LATE'`)
    await q(`CREATE TABLE saved_late AS SELECT * FROM event_logs WHERE id = $1`, [id])
    await q(`DELETE FROM event_logs WHERE id = $1`, [id])
    try {
      const hidden = await verify(['--since', '200d'], {AUDIT_LOGS_EVENT_RETENTION_DAYS: '365'})
      expect(hidden.exitCode, hidden.stdout).to.equal(8)
      expect(hidden.json().instances[0].deleted.map((d: {id: string}) => d.id)).to.deep.equal([id])
      // under the retention configured when it was deleted, it was past retention: removed on purpose
      const then = await verify(['--since', '200d'])
      expect(then.exitCode, then.stdout).to.equal(0)
      expect(then.json().instances[0].removedByRetention).to.equal(2)
    } finally {
      await q(`INSERT INTO event_logs SELECT * FROM saved_late; DROP TABLE saved_late`)
    }
    expect((await verify(['--since', '200d'])).exitCode).to.equal(0)
  })

  it('a forged retention row (cutoff now) does not hide deletions: it is flagged, the deleted records reported', async () => {
    const [row] = await q(`SELECT id::text FROM request_logs ORDER BY created_at LIMIT 1 OFFSET 2`)
    await q(`CREATE TABLE saved_req AS SELECT * FROM request_logs WHERE id = $1`, [row.id])
    await q(`DELETE FROM request_logs WHERE id = $1`, [row.id])
    await q(`INSERT INTO integrity_retention (log_type, cutoff, how) VALUES ('request', now(), 'forged')`)
    const r = await verify(['--since', '200d'])
    expect(r.exitCode, r.stdout).to.equal(8)
    const report = r.json()
    expect(report.badRetention.map((b: {logType: string}) => b.logType)).to.deep.equal(['request'])
    expect(report.badRetention[0].why).to.match(/newer than request records are kept \(90 days/)
    const a = report.instances.find((i: {instance: string}) => i.instance === 'e2e-a')
    expect(a.deleted.map((d: {id: string}) => d.id)).to.deep.equal([row.id])
    await q(`DELETE FROM integrity_retention WHERE how = 'forged'`)
    await q(`INSERT INTO request_logs SELECT * FROM saved_req; DROP TABLE saved_req`)
    expect((await verify(['--since', '200d'])).exitCode).to.equal(0)
  })

  it('a restarted run continues the chain (no fork) and verify stays clean', async () => {
    const [{n: before}] = await q(`SELECT max(seq) AS n FROM integrity_batches WHERE instance = 'e2e-a'`)
    run = await startRun(['--upstream', ctx.app.url, '--workers', '1'], env(), {dir: path.dirname(logDir)})
    await traffic(10, 'b')
    await run.stop()
    run = undefined
    const rows = await q(`SELECT seq, prev_hash, hash FROM integrity_batches WHERE instance = 'e2e-a' ORDER BY seq`)
    rows.forEach((r, i) => {
      expect(Number(r.seq)).to.equal(i + 1)
      if (i > 0) expect(r.prev_hash.equals(rows[i - 1].hash)).to.equal(true)
    })
    expect(rows.length).to.be.greaterThan(Number(before))
    const r = await verify()
    expect(r.exitCode, r.stdout + r.stderr).to.equal(0)
    const a = r.json().instances[0]
    expect(a.digests.lastSignedSeq).to.equal(a.lastSeq)
  })

  it("a run's first batch is signed at once: a verify while it runs, well within the digest interval, is clean", async () => {
    // a new instance (no digest yet: verify fails such a chain as unsigned) and the default interval of 5 minutes
    const first = {AUDIT_LOGS_INSTANCE: 'e2e-first', AUDIT_LOGS_INTEGRITY_DIGEST_INTERVAL_MS: '300000'}
    run = await startRun(['--upstream', ctx.app.url, '--workers', '1'], {...env(), ...first}, {dir: path.dirname(logDir)})
    await traffic(5, 'first')
    await until(
      async () => (await q(`SELECT 1 FROM integrity_digests WHERE instance = 'e2e-first'`)).length > 0 || undefined,
      30_000,
      'the digest of the first batch',
    )
    const r = await verify([], first)
    expect(r.exitCode, r.stdout + r.stderr).to.equal(0)
    const f = r.json().instances.find((i: {instance: string}) => i.instance === 'e2e-first')
    expect(f.digests.lastSignedSeq).to.be.at.least(1)
    expect(f.unsigned).to.equal(null)
    await run.stop()
    run = undefined
  })

  it('event, the first to write in a new log directory (its digest), makes it 0750 as run does, and digests.jsonl 0640', async () => {
    const fresh = path.join(dir, 'fresh-logs')
    const ev = await runCli(['event', '--action', 'FIRST', '--actor', '1', '--log-dir', fresh], {
      env: {...env(), AUDIT_LOGS_INSTANCE: 'e2e-fresh-dir'},
      cwd: dir,
    })
    expect(ev.exitCode, ev.stderr).to.equal(0)
    expect(statSync(fresh).mode & 0o777).to.equal(0o750)
    expect(statSync(path.join(fresh, 'digests.jsonl')).mode & 0o777).to.equal(0o640)
  })
})
