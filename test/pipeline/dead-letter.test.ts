import {mkdtempSync, readFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {v7 as uuidv7} from 'uuid'
import {generateRecords} from '../../src/generate/records.js'
import {JournalWriter} from '../../src/pipeline/journal.js'
import {Shipper, deadLetterFile} from '../../src/pipeline/shipper.js'
import {postgresSink} from '../../src/pipeline/sinks.js'
import {withDatabase} from '../../src/stores/postgres/connection.js'
import {premake} from '../../src/stores/postgres/partitions.js'
import {type TestDatabase, count, freshDatabase, serverUrl} from '../helpers/db.js'

const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), `audit-logs-${p}-`))

describe('records the database refuses (real PostgreSQL)', function () {
  this.timeout(60_000)
  let db: TestDatabase
  before(async () => {
    db = await freshDatabase({migrated: true})
    await premake(db.client, {interval: 'month', ahead: 1})
  })
  after(() => db.drop())

  it('are kept in the dead-letter file with the reason; every other record of their batches is written, and shipping goes on', async () => {
    const dir = tmp('dead-letter')
    const w = new JournalWriter(dir, `dl-${process.pid}`)
    const requests = [...generateRecords({rows: 400, days: 2, seed: 31})].map((r) => JSON.stringify({log_type: 'request', ...r}))
    const access = [...generateRecords({rows: 200, days: 2, seed: 32, logType: 'access'})].map((r) =>
      JSON.stringify({log_type: 'access', ...r}),
    )
    const now = new Date().toISOString()
    const refused = [
      '{"log_type":"request","id":"' + uuidv7() + '","created_at":"' + now + '","method":"GET","pa', // a damaged line: not JSON
      JSON.stringify({log_type: 'request', id: uuidv7(), created_at: now, method: 'GET', path: '/ip', ip: 'not-an-ip'}),
      JSON.stringify({log_type: 'access', id: uuidv7(), created_at: now, url: '/no-method'}), // method is NOT NULL
    ]
    // what PostgreSQL used to refuse and now stores: a URL longer than a btree entry, a lone surrogate
    const stored = [
      JSON.stringify({log_type: 'access', id: uuidv7(), created_at: now, method: 'GET', url: '/q?' + 'k=v&'.repeat(3000)}),
      JSON.stringify({log_type: 'request', id: uuidv7(), created_at: now, method: 'GET', path: '/u', user_id: 'u\ud800'}),
    ]
    const lines = [
      ...requests.slice(0, 150),
      refused[0],
      ...access.slice(0, 100),
      stored[0],
      refused[1],
      ...requests.slice(150),
      stored[1],
      ...access.slice(100),
      refused[2],
    ]
    for (const line of lines) w.append(line)
    w.close()

    const logs: string[] = []
    const shipper = new Shipper(dir, postgresSink(db.url), {batchLines: 256, log: (m) => logs.push(m)})
    shipper.start()
    expect(await shipper.drain(30_000)).to.equal(true)
    await shipper.stop()

    expect(await count(db.client, 'request_logs')).to.equal(401)
    expect(await count(db.client, 'access_logs')).to.equal(201)
    expect(shipper.stats).to.include({written: lines.length - 3, rejected: 3})
    const kept = readFileSync(deadLetterFile(dir, 'postgres'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(kept.map((k) => k.record_text ?? JSON.stringify(k.record))).to.have.members(refused)
    for (const k of kept)
      expect(k)
        .to.include({sink: 'postgres'})
        .and.to.have.property('error')
        .that.matches(/^PostgreSQL (22|23)\w{3}: /)
    expect(kept.find((k) => k.record?.ip)?.error).to.contain('inet')
    expect(logs.filter((m) => m.startsWith('ALERT: sink postgres refused'))).to.not.have.length(0)

    // the checkpoint passed them: a restarted shipper sends nothing again
    const again = new Shipper(dir, postgresSink(db.url))
    again.start()
    expect(await again.drain(10_000)).to.equal(true)
    await again.stop()
    expect(again.stats).to.include({written: 0, rejected: 0})
    expect(readFileSync(deadLetterFile(dir, 'postgres'), 'utf8').trim().split('\n')).to.have.length(3)
  })

  it('a line that is not UTF-8 fails inside COPY and is isolated the same way; the connection stays usable', async () => {
    const sink = postgresSink(db.url)
    const good = [...generateRecords({rows: 3, days: 1, seed: 34})].map((r) => Buffer.from(JSON.stringify({log_type: 'request', ...r})))
    const bad = Buffer.concat([Buffer.from('{"log_type":"request","path":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')])
    const before = await count(db.client, 'request_logs')
    const outcome = await sink.write([good[0], bad, good[1], good[2]])
    await sink.close()
    expect(outcome && outcome.rejected.map((r) => r.line)).to.deep.equal([bad])
    expect(outcome && outcome.rejected[0].error).to.match(/^PostgreSQL 22021: /)
    expect(await count(db.client, 'request_logs')).to.equal(before + 3)
  })

  it('a database the sink cannot use (not a record it refuses) is retried, never dead-lettered', async () => {
    const dir = tmp('dead-letter-retry')
    const w = new JournalWriter(dir, `dr-${process.pid}`)
    for (const r of generateRecords({rows: 10, days: 1, seed: 33})) w.append(JSON.stringify({log_type: 'request', ...r}))
    w.close()
    const shipper = new Shipper(dir, postgresSink(withDatabase(serverUrl(), 'no_such_database')), {log: () => {}})
    shipper.start()
    const end = Date.now() + 3000
    while (shipper.stats.retried < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
    await shipper.stop()
    expect(shipper.stats.retried).to.be.greaterThan(0)
    expect(shipper.stats).to.include({written: 0, rejected: 0})
  })
})
