import {randomUUID} from 'node:crypto'
import {mkdtempSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import type {Document} from 'mongodb'
import {type CliResult, runCli} from '../helpers/cli.js'
import {type TestMongo, freshMongo, mongoServerUri} from '../helpers/mongo.js'
import {skipUnless} from '../helpers/skip.js'

type Doc = Document & {_id: string}

/**
 * The MongoDB chains' retention (stores/mongo/prune.ts): cleanup removes the documents past retention, then each chain's
 * oldest batches whose documents are all gone, recording where the chain now starts (integrity_pruned); verify checks
 * the chain from there, and a start recorded beyond what retention removed is flagged. Records come from `import`
 * (chained as import@p, two to a batch), old ones dated 100 days back.
 */
describe('MongoDB integrity_batches retention: cleanup prunes the chains, verify stays correct (subprocess, real MongoDB-compatible server)', function () {
  this.timeout(180_000)
  let m: TestMongo
  const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-mongo-prune-'))
  const logDir = path.join(dir, 'logs')
  const key = path.join(dir, 'integrity.pem')
  const DAY = 86_400_000
  const env = (extra: Record<string, string> = {}) => ({
    AUDIT_LOGS_STORES: 'mongo',
    AUDIT_LOGS_MONGO_URI: m.uri,
    AUDIT_LOGS_MONGO_DB_NAME: m.dbName,
    AUDIT_LOGS_INTEGRITY_KEY: key,
    AUDIT_LOGS_INSTANCE: 'p',
    AUDIT_LOGS_LOG_DIR: logDir,
    AUDIT_LOGS_REQUEST_RETENTION_DAYS: '90',
    ...extra,
  })
  const verify = (extra: Record<string, string> = {}): Promise<CliResult> =>
    runCli(['verify', '--source', 'mongo', '--since', '200d', '--json', '--digests', path.join(logDir, 'digests.jsonl')], {
      env: env(extra),
      cwd: dir,
    })
  const col = (name: string) => m.client.db(m.dbName).collection<Doc>(name)
  const seqs = async () => (await col('integrity_batches').find({instance: 'import@p'}).sort({seq: 1}).toArray()).map((b) => b.seq)
  const chain = (r: CliResult) => r.json().instances.find((i: {instance: string}) => i.instance === 'import@p')
  /** Imports `n` request records created `ageMs` ago, two to a batch. */
  const importOld = async (n: number, ageMs: number) => {
    const at = (i: number) => new Date(Date.now() - ageMs + i * 1000).toISOString()
    const lines = Array.from({length: n}, (_, i) => ({
      id: randomUUID(),
      created_at: at(i),
      method: 'GET',
      path: `/old/${i}`,
      status_code: 200,
    }))
    const file = path.join(mkdtempSync(path.join(dir, 'import-')), 'requests.jsonl')
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n')
    const r = await runCli(['import', file, '--stores', 'mongo', '--batch-size', '2'], {env: env(), cwd: dir})
    expect(r.exitCode, r.stdout + r.stderr).to.equal(0)
  }

  before(async function () {
    skipUnless(this, !!mongoServerUri(), 'no MongoDB server', {expectedInCi: true})
    m = await freshMongo('vmp')
    const setup = await runCli(['setup-db', '--store', 'mongo'], {env: env(), cwd: dir})
    expect(setup.exitCode, setup.stdout + setup.stderr).to.equal(0)
    expect(setup.stdout).to.contain('integrity_pruned')
    expect((await runCli(['verify', 'keygen', '--out', key], {cwd: dir})).exitCode).to.equal(0)
    await importOld(4, 100 * DAY) // batches 1 and 2
    await importOld(2, 2 * DAY) // batch 3
    await importOld(2, 60_000) // batch 4, the head
    expect(await seqs()).to.deep.equal([1, 2, 3, 4])
  })
  after(async () => {
    await m?.drop()
  })

  it('cleanup --dry-run counts the batches it would prune and changes nothing', async () => {
    const r = await runCli(['cleanup', '--store', 'mongo', '--log-type', 'request', '--dry-run', '--json'], {env: env(), cwd: dir})
    expect(r.exitCode, r.stderr).to.equal(0)
    expect(r.json().mongo.integrity.instances).to.deep.equal([{instance: 'import@p', fromSeq: 1, throughSeq: 2, batches: 2, records: 4}])
    expect(await seqs()).to.deep.equal([1, 2, 3, 4])
    expect(await col('integrity_pruned').countDocuments()).to.equal(0)
  })

  it('cleanup removes the old documents, then the batches that chained them (never the head); verify is clean from the recorded start', async () => {
    const r = await runCli(['cleanup', '--store', 'mongo', '--log-type', 'request'], {env: env(), cwd: dir})
    expect(r.exitCode, r.stderr).to.equal(0)
    expect(r.stdout).to.match(
      /integrity_batches \(MongoDB vmp_\w+\): pruned 2 batch row\(s\) holding the hashes of 4 removed record\(s\): import@p 1\.\.2/,
    )
    expect(await seqs()).to.deep.equal([3, 4])
    const [start] = await col('integrity_pruned').find({}).toArray()
    expect(start).to.include({_id: 'import@p', through_seq: 2, total: 4})
    const v = await verify()
    expect(v.exitCode, v.stdout + v.stderr).to.equal(0)
    expect(chain(v).pruned).to.include({throughSeq: 2, records: 4})
    expect(chain(v).gaps).to.deep.equal([])
  })

  it('a batch a prune cut short left behind (the start recorded, the batch not yet deleted) is not read, and the next prune removes it', async () => {
    await col('integrity_batches').insertOne({_id: 'import@p:1', instance: 'import@p', seq: 1, log_type: 'request', ids: [], count: 0})
    const v = await verify()
    expect(v.exitCode, v.stdout + v.stderr).to.equal(0)
    // a retention of 1 day: batch 3's documents (2 days old) go, and so does the batch, moving the start to 3
    const one = {AUDIT_LOGS_REQUEST_RETENTION_DAYS: '1'}
    const r = await runCli(['cleanup', '--store', 'mongo', '--log-type', 'request'], {env: env(one), cwd: dir})
    expect(r.exitCode, r.stderr).to.equal(0)
    expect(r.stdout).to.match(/pruned 1 batch row\(s\) holding the hashes of 2 removed record\(s\): import@p 3\.\.3/)
    expect(await seqs()).to.deep.equal([4])
    expect((await verify(one)).exitCode).to.equal(0)
    // verified with the 90 days configured again (the retention raised): the 1-day cutoff was signed, so it holds for
    // the batches it names, and so does the start it pruned to
    const raised = await verify()
    expect(raised.exitCode, raised.stdout).to.equal(0)
    expect(raised.json().warnings.join('\n')).to.contain('applied under a retention of 1 days, shorter than the 90 configured now')
    expect(chain(raised).pruned).to.include({throughSeq: 3, records: 6})
  })

  it('recent batches deleted with their documents and recorded as pruned are flagged (bad pruning), not honoured', async () => {
    await importOld(2, 60_000) // batch 5, the head: batch 4 is recent and not past any retention
    const saved = await col('integrity_pruned').findOne({_id: 'import@p'})
    const batch4 = await col('integrity_batches').findOne({instance: 'import@p', seq: 4})
    const docs = await col('request_logs')
      .find({_id: {$in: batch4!.ids}})
      .toArray()
    await col('request_logs').deleteMany({_id: {$in: batch4!.ids}})
    await col('integrity_batches').deleteMany({instance: 'import@p', seq: {$lte: 4}})
    await col('integrity_pruned').updateOne(
      {_id: 'import@p'},
      {$set: {through_seq: 4, hash: batch4!.hash, total: batch4!.total, newest: {request: batch4!.max_created_at.toISOString()}}},
    )
    try {
      const v = await verify()
      expect(v.exitCode, v.stdout).to.equal(8)
      expect(v.json().badPruning.map((b: {instance: string}) => b.instance)).to.deep.equal(['import@p'])
      expect(v.json().badPruning[0].why).to.match(/not before the request cutoff honoured/)
    } finally {
      await col('integrity_pruned').replaceOne({_id: 'import@p'}, saved!)
      await col('integrity_batches').insertOne(batch4!)
      await col('request_logs').insertMany(docs)
    }
    expect((await verify()).exitCode).to.equal(0)
  })

  it('a database set up before the pruning (no integrity_pruned): cleanup says so and prunes nothing; setup-db makes it', async () => {
    const saved = await col('integrity_pruned').find({}).toArray()
    await col('integrity_pruned').drop()
    const r = await runCli(['cleanup', '--store', 'mongo', '--log-type', 'request'], {env: env(), cwd: dir})
    expect(r.exitCode, r.stderr).to.equal(0)
    expect(r.stderr).to.contain('not pruned: integrity_pruned does not exist (run `audit-logs setup-db --store mongo`, which makes it)')
    const setup = await runCli(['setup-db', '--store', 'mongo'], {env: env(), cwd: dir})
    expect(setup.exitCode, setup.stderr).to.equal(0)
    await col('integrity_pruned').insertMany(saved)
    expect((await verify()).exitCode).to.equal(0)
  })
})
