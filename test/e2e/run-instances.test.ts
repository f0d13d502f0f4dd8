import http from 'node:http'
import {expect} from 'chai'
import {appAndDatabase} from '../helpers/app-and-database.js'
import {periodsDone} from '../helpers/maintenance.js'
import {type RunningServer, request, sendLoops, startRun, until} from '../helpers/run-server.js'

const INTERVAL_MS = 4000
const NAMES = ['inst-a', 'inst-b', 'inst-c']
/** Requests answered in all (bounded: the host's cores are shared). */
const TOTAL = 1500

describe('audit-logs run: three instances in front of one app, on one database, one killed and restarted (subprocess, real PostgreSQL)', function () {
  this.timeout(240_000)
  const runs: RunningServer[] = []
  // registered before appAndDatabase's: the runs stop before the app closes and the database is dropped
  after(async () => {
    for (const r of runs) await r.stop().catch(() => {})
  })
  const ctx = appAndDatabase()

  it("records every request answered 2xx once, the killed instance's last answers too, and does each period of maintenance once", async () => {
    const args = ['--upstream', ctx.app.url, '--workers', '1', '--maintenance']
    const env = (name: string) => ({
      AUDIT_LOGS_DATABASE_URL: ctx.db.url,
      AUDIT_LOGS_INSTANCE: name,
      AUDIT_LOGS_MAINTENANCE_INTERVAL_MS: String(INTERVAL_MS),
    })
    // each its own directory (journal, logs), its own ports
    for (const name of NAMES) runs.push(await startRun(args, env(name)))
    expect(new Set(runs.map((r) => r.dir)).size).to.equal(3)

    // a unique path per request; the loops spread them over the three instances
    const answered = new Map<string, {status: number; by: RunningServer; at: number}>()
    let failed = 0
    const agent = new http.Agent({keepAlive: true, maxSockets: 8})
    const load = sendLoops(6, async (loop, i) => {
      if (answered.size + failed >= TOTAL) return new Promise((r) => setTimeout(r, 20))
      const marker = `/api/inst-${loop}-${i}`
      const to = runs[(loop + i) % 3]
      try {
        const {status} = await request(`${to.url}${marker}`, {agent})
        answered.set(marker, {status, by: to, at: Date.now()})
      } catch {
        failed++ // the instance being killed, or not listening again yet
      }
    })

    // mid-traffic, one instance dies at once (primary and workers), and comes back on the same directories and address
    await until(() => answered.size >= TOTAL / 3, 120_000, 'a third of the traffic')
    const victim = runs[1]
    process.kill(-victim.child.pid!, 'SIGKILL')
    await victim.child
    await until(() => answered.size >= TOTAL / 2, 120_000, 'more traffic while one instance is down')
    runs[1] = await startRun(args, env(NAMES[1]), {dir: victim.dir, bind: victim.url.replace('http://', '')})
    await until(() => answered.size + failed >= TOTAL, 180_000, 'the rest of the traffic')
    await load.stop()
    agent.destroy()

    const ok = [...answered].filter(([, a]) => a.status >= 200 && a.status < 300)
    // (a third of the requests of the downtime find the dead instance: refused, not answered)
    expect(ok.length).to.be.greaterThan(TOTAL / 2)
    // every request answered 2xx is in PostgreSQL, once, the killed instance's last ones too: a response's last
    // bytes wait until its records are in the journal (recordBeforeAnswer); nothing is there twice
    const must = ok.map(([marker]) => marker)
    const stored = await until(
      async () => {
        const {rows} = await ctx.db.client.query(
          `SELECT path, count(*)::int AS n, min(instance) AS instance FROM request_logs WHERE path LIKE '/api/inst-%' GROUP BY path`,
        )
        const byPath = new Map(rows.map((r) => [r.path as string, r as {n: number; instance: string}]))
        return must.every((m) => byPath.has(m)) ? byPath : undefined
      },
      120_000,
      'every answered request in PostgreSQL',
    )
    const twice = [...stored].filter(([, r]) => r.n !== 1).map(([p, r]) => `${p} ×${r.n}`)
    expect(twice, 'requests recorded more than once').to.deep.equal([])
    // all three instances recorded, the restarted one too (after its restart: new requests reached it)
    expect(new Set([...stored.values()].map((r) => r.instance))).to.deep.equal(new Set(NAMES))
    expect(runs[1].stderr()).to.contain('listening on')

    // maintenance: no period done twice, though three instances (and one restarted) competed for each
    const periods = await until(
      async () => {
        const p = await periodsDone(ctx.db, INTERVAL_MS)
        return p.length >= 2 ? p : undefined
      },
      60_000,
      'two periods of maintenance',
    )
    for (const p of periods) expect(p.n, `period ${p.period.toISOString()} done by ${p.instances.join(', ')}`).to.equal(1)

    for (const r of runs.splice(0)) expect((await r.stop()).exitCode).to.equal(0)
  })
})
