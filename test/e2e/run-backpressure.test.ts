import {readFileSync, readdirSync} from 'node:fs'
import {expect} from 'chai'
import pg from 'pg'
import {clientConfig} from '../../src/stores/postgres/connection.js'
import {type TestDatabase, freshDatabase} from '../helpers/db.js'
import {type Reply, type RunningServer, childPids, request, sendLoops, startRun, until} from '../helpers/run-server.js'
import {type Upstream, startUpstream} from '../helpers/upstream.js'
import {skipUnless} from '../helpers/skip.js'

const BODY = 'x'.repeat(7000) // a record of about 7.5 kB: a 1 MiB journal is full after about 140 requests

/** PostgreSQL held up for as long as the test says: a transaction holds an exclusive lock on request_logs (the sink's insert waits on it). */
async function holdTable(url: string) {
  const client = new pg.Client(clientConfig(url))
  await client.connect()
  await client.query('BEGIN')
  await client.query('LOCK TABLE request_logs IN ACCESS EXCLUSIVE MODE')
  return {
    async release() {
      await client.query('ROLLBACK')
      await client.end()
    },
  }
}

const health = async (run: RunningServer) => JSON.parse((await request(`${run.adminUrl}/health`)).body.toString())
const metric = async (run: RunningServer, name: string) =>
  Number(new RegExp(`^${name} (\\d+)`, 'm').exec((await request(`${run.adminUrl}/metrics`)).body.toString())?.[1] ?? NaN)

/** Sends POSTs tagged n=0,1,2… from `parallel` loops until stop(); keeps every reply by tag (a failed connection is a reply of status 0). */
function load(url: string, parallel = 20) {
  const replies = new Map<number, Reply | {status: 0}>()
  let next = 0
  const loops = sendLoops(parallel, async () => {
    const n = next++
    replies.set(
      n,
      await request(`${url}/echo?n=${n}`, {method: 'POST', body: BODY, headers: {'content-type': 'text/plain'}}).catch(() => ({
        status: 0 as const,
      })),
    )
  })
  return {
    replies,
    stop: async () => {
      await loops.stop()
      return replies
    },
  }
}

/** The nice values of a process's threads, from /proc. */
const nices = (pid: number) =>
  readdirSync(`/proc/${pid}/task`).map((tid) => Number(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')[16]))

const tagged = (replies: Map<number, {status: number}>, status: number) =>
  [...replies].filter(([, r]) => r.status === status).map(([n]) => n)

describe('audit-logs run: a full journal (whenFull)', function () {
  this.timeout(180_000)
  let app: Upstream
  let db: TestDatabase
  before(async () => {
    app = await startUpstream()
    db = await freshDatabase({migrated: true})
  })
  after(async () => {
    await app.close()
    await db.drop()
  })
  beforeEach(() => db.client.query('TRUNCATE request_logs, access_logs'))

  it('block (the default): with PostgreSQL held up past a tiny journal, new requests wait, then are served or refused with 503; every served request is recorded once the sink returns, nothing is dropped', async () => {
    const run = await startRun(['--upstream', app.url, '--no-files'], {
      AUDIT_LOGS_DATABASE_URL: db.url,
      AUDIT_LOGS_JOURNAL_MAX_BYTES: '1048576',
      AUDIT_LOGS_BLOCK_TIMEOUT_MS: '2000',
    })
    const held = await holdTable(db.url)
    let traffic: ReturnType<typeof load> | undefined
    try {
      traffic = load(run.url)
      // the journal fills; the admin listener answers throughout and says why
      const blocked = await until(
        async () => {
          const h = await health(run)
          return h.status === 'blocking' ? h : undefined
        },
        60_000,
        '/health to report blocking',
      )
      expect(blocked.journalFull).to.equal(true)
      expect(blocked.journal).to.include({maxBytes: 1_048_576, whenFull: 'block'})
      expect(blocked.sinks.postgres.fillingJournal).to.equal(true)
      expect(await metric(run, 'audit_logs_journal_full')).to.equal(1)
      // how far behind in time the held store is: its oldest waiting record keeps ageing while it is held
      const aged = await until(
        async () => {
          const h = await health(run)
          return h.sinks.postgres.lagSeconds >= 2 ? h : undefined
        },
        30_000,
        "/health to say the held sink's oldest record has waited 2 s",
      )
      expect(aged.sinks.postgres.lagSeconds).to.be.a('number')
      const lagSeconds = Number(
        /^audit_logs_sink_lag_seconds\{sink="postgres"\} (\S+)/m.exec((await request(`${run.adminUrl}/metrics`)).body.toString())?.[1],
      )
      expect(lagSeconds).to.be.at.least(2)
      expect(run.stderr()).to.contain('ALERT: the journal holds').and.contain('New requests WAIT').and.contain('postgres')
      // requests that wait longer than blockTimeoutMs are refused with a clear status, never hung
      await until(() => tagged(traffic!.replies, 503).length > 0, 30_000, 'a request refused after waiting')
      const refusal = [...traffic.replies.values()].find((r) => r.status === 503) as Reply
      expect(refusal.headers['retry-after']).to.equal('1')
      expect(refusal.body.toString()).to.contain('journal is full')
      // the sink returns: requests are served again
      await held.release()
      await until(async () => (await health(run)).status === 'ok', 60_000, 'the journal to drain')
      const servedBefore = tagged(traffic.replies, 200).length
      await until(() => tagged(traffic!.replies, 200).length > servedBefore + 50, 30_000, 'requests served again')
      const replies = await traffic.stop()
      traffic = undefined
      expect(tagged(replies, 0), 'connections that failed').to.deep.equal([])
      const served = tagged(replies, 200)
      const refused = tagged(replies, 503)
      expect(served.length + refused.length).to.equal(replies.size)
      // every served request's record, once; none of a refused one (it never reached the app)
      const recorded = await until(
        async () => {
          const {rows} = await db.client.query(`SELECT (query->>'n')::int AS n FROM request_logs`)
          return rows.length >= served.length ? rows.map((r) => r.n as number) : undefined
        },
        60_000,
        'every served request in PostgreSQL',
      )
      expect(recorded.sort((a, b) => a - b)).to.deep.equal(served.sort((a, b) => a - b))
      expect(await metric(run, 'audit_logs_records_dropped_total')).to.equal(0)
      expect(await metric(run, 'audit_logs_requests_waited_total')).to.be.greaterThan(0)
      await run.stop()
      expect(run.stderr()).to.match(
        new RegExp(
          `stopped: ${served.length} requests, ${2 * served.length} records captured, 0 dropped; .*${refused.length} requests refused \\(503\\)`,
        ),
      )
    } finally {
      await traffic?.stop()
      await held.release().catch(() => {})
      await run.stop()
    }
  })

  it('block: a shutdown while requests wait for room refuses them at once (503) and stops within its time limit, the sink still held up', async () => {
    const run = await startRun(['--upstream', app.url, '--no-files'], {
      AUDIT_LOGS_DATABASE_URL: db.url,
      AUDIT_LOGS_JOURNAL_MAX_BYTES: '1048576',
      AUDIT_LOGS_BLOCK_TIMEOUT_MS: '120000',
      AUDIT_LOGS_SHUTDOWN_TIMEOUT_MS: '3000',
    })
    const held = await holdTable(db.url)
    const traffic = load(run.url, 10)
    try {
      await until(async () => (await metric(run, 'audit_logs_requests_waiting')) >= 5, 60_000, 'requests waiting at the gate')
      const t0 = Date.now()
      const stopped = await run.stop()
      expect(stopped.exitCode, run.stderr()).to.equal(0)
      expect(Date.now() - t0, 'shutdown time').to.be.below(20_000)
      const replies = await traffic.stop()
      const closing = [...replies.values()].filter((r) => r.status === 503 && (r as Reply).body.toString().includes('shutting down'))
      expect(closing.length, 'requests refused by the shutdown').to.be.at.least(5)
      expect(run.stderr()).to.contain('not caught up at shutdown')
    } finally {
      await traffic.stop()
      await held.release()
      await run.stop()
    }
  })

  it('while the sinks catch up (catchUpLagBytes behind), the proxy workers yield the CPU to them (nice 15), and get it back once the sinks have caught up (as root)', async function () {
    skipUnless(this, process.getuid?.() === 0, 'root: giving the workers their priority back needs CAP_SYS_NICE')
    const run = await startRun(['--upstream', app.url, '--no-files'], {
      AUDIT_LOGS_DATABASE_URL: db.url,
      AUDIT_LOGS_CATCH_UP_LAG_BYTES: '65536',
    })
    const held = await holdTable(db.url)
    try {
      const [worker] = childPids(run.child.pid!)
      expect(nices(worker).every((n) => n === 0)).to.equal(true)
      for (let i = 0; i < 12; i++)
        expect(
          (await request(`${run.url}/echo?n=${i}`, {method: 'POST', body: BODY, headers: {'content-type': 'text/plain'}})).status,
        ).to.equal(200)
      await until(async () => (await health(run)).catchingUp === true, 15_000, 'the sinks to catch up')
      expect(nices(worker), "the worker's threads while the sinks catch up").to.satisfy((n: number[]) => n.every((x) => x === 15))
      await held.release()
      await until(async () => (await health(run)).catchingUp === false, 30_000, 'the sinks to have caught up')
      expect(nices(worker), "the worker's threads afterwards").to.satisfy((n: number[]) => n.every((x) => x === 0))
      await until(
        async () => Number((await db.client.query('SELECT count(*) AS n FROM request_logs')).rows[0].n) === 12,
        15_000,
        'the 12 records',
      )
    } finally {
      await held.release().catch(() => {})
      await run.stop()
    }
  })

  it('drop: past the bound, records are dropped and counted exactly (every request is served, and either in the store or counted)', async () => {
    const run = await startRun(['--upstream', app.url, '--no-files'], {
      AUDIT_LOGS_DATABASE_URL: db.url,
      AUDIT_LOGS_JOURNAL_MAX_BYTES: '1048576',
      AUDIT_LOGS_WHEN_FULL: 'drop',
    })
    const held = await holdTable(db.url)
    const traffic = load(run.url, 10)
    try {
      await until(async () => (await metric(run, 'audit_logs_records_dropped_total')) > 0, 60_000, 'dropped records to be counted')
      expect((await health(run)).status).to.equal('dropping')
      expect(run.stderr()).to.contain('New records are DROPPED')
      const replies = await traffic.stop()
      expect([...replies.values()].every((r) => r.status === 200)).to.equal(true)
      await held.release()
      const stopped = await run.stop()
      expect(stopped.exitCode).to.equal(0)
      const summary = /stopped: (\d+) requests, (\d+) records captured, (\d+) dropped/.exec(run.stderr())!
      const [requests, captured, dropped] = summary.slice(1).map(Number)
      expect(requests).to.equal(replies.size)
      expect(captured + dropped).to.equal(2 * replies.size)
      const rows = Number(
        (await db.client.query('SELECT (SELECT count(*) FROM request_logs) + (SELECT count(*) FROM access_logs) AS n')).rows[0].n,
      )
      expect(rows).to.equal(captured)
    } finally {
      await traffic.stop()
      await held.release().catch(() => {})
      await run.stop()
    }
  })
})
