import http from 'node:http'
import {expect} from 'chai'
import {appAndDatabase} from '../helpers/app-and-database.js'
import {jsonlLines} from '../helpers/jsonl.js'
import {type RunningServer, request, startRun, until} from '../helpers/run-server.js'

const RATE = 400 // requests a second, half of them POSTs of 2 kB: well within what this product keeps on two shared cores
const SECONDS = 20
const LAG_LIMIT_S = 5
const BODY = JSON.stringify({order: 'x'.repeat(2000)})

/**
 * A soak CI can afford: a sustained load at a bounded rate on loopback, for tens of seconds, with
 * both sinks. The sinks keep pace (their lag, sampled every second, stays under 5 s of traffic), and
 * at the end every request is recorded exactly once in PostgreSQL and in the files, none dropped.
 */
describe('audit-logs run: a sustained load at a bounded rate (soak, files + PostgreSQL)', function () {
  this.timeout(180_000)
  let run: RunningServer | undefined
  after(() => run?.stop())
  const ctx = appAndDatabase()

  it(`${RATE} req/s for ${SECONDS} s: sink lag stays under ${LAG_LIMIT_S} s, every request recorded exactly once in every sink, nothing dropped`, async () => {
    run = await startRun(['--upstream', ctx.app.url], {AUDIT_LOGS_DATABASE_URL: ctx.db.url})
    const agent = new http.Agent({keepAlive: true, maxSockets: 32})
    const metric = (text: string, name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\d+)`, 'm').exec(text)?.[1] ?? 0)
    const lagSamples: number[] = [] // requests not yet in both sinks, sampled every second
    let sent = 0
    let answered = 0
    let failed = 0
    const sampler = setInterval(async () => {
      const text = (await request(`${run!.adminUrl}/metrics`)).body.toString()
      const stored =
        Math.min(
          metric(text, 'audit_logs_records_written_total{sink="postgres"}'),
          metric(text, 'audit_logs_records_written_total{sink="files"}'),
        ) / 2
      lagSamples.push(metric(text, 'audit_logs_requests_total') - stored)
    }, 1000)
    try {
      // open loop: requests leave on schedule, whether or not earlier ones were answered
      const t0 = Date.now()
      const pending: Array<Promise<void>> = []
      while (Date.now() - t0 < SECONDS * 1000) {
        const due = Math.floor(((Date.now() - t0) * RATE) / 1000)
        for (; sent < due; sent++) {
          const n = sent
          const post = n % 2 === 1
          pending.push(
            request(
              `${run.url}/${post ? 'echo' : 'json'}?n=${n}`,
              post ? {method: 'POST', body: BODY, headers: {'content-type': 'application/json'}, agent} : {agent},
            ).then(
              (r) => void (r.status === 200 ? answered++ : failed++),
              () => void failed++,
            ),
          )
        }
        await new Promise((r) => setTimeout(r, 10))
      }
      await Promise.all(pending)
    } finally {
      clearInterval(sampler)
      agent.destroy()
    }
    expect(failed).to.equal(0)
    expect(answered).to.equal(sent)
    expect(sent).to.be.at.least(RATE * SECONDS * 0.95)
    const maxLag = Math.max(...lagSamples)
    expect(maxLag / RATE, `max lag ${maxLag} requests (samples ${lagSamples.join(' ')})`).to.be.below(LAG_LIMIT_S)

    // exactly once, everywhere
    await until(
      async () => Number((await ctx.db.client.query('SELECT count(*) AS n FROM access_logs')).rows[0].n) >= sent,
      60_000,
      'every record in PostgreSQL',
    )
    const rows = (
      await ctx.db.client.query(
        `SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids, count(DISTINCT query->>'n')::int AS tags FROM request_logs`,
      )
    ).rows[0]
    expect(rows).to.deep.equal({n: sent, ids: sent, tags: sent})
    expect(Number((await ctx.db.client.query('SELECT count(*) AS n FROM access_logs')).rows[0].n)).to.equal(sent)
    const lines = await until(
      () => {
        const all = jsonlLines(run!.logDir, 'requests')
        return all.length >= sent ? all : undefined
      },
      60_000,
      'every record in the files',
    )
    const tags = new Set(lines.map((l) => JSON.parse(l).query.n))
    expect({lines: lines.length, tags: tags.size}).to.deep.equal({lines: sent, tags: sent})
    const metrics = (await request(`${run.adminUrl}/metrics`)).body.toString()
    expect(metric(metrics, 'audit_logs_records_dropped_total')).to.equal(0)
    expect(metric(metrics, 'audit_logs_requests_refused_total')).to.equal(0)
  })
})
