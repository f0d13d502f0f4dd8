// Benchmark for the capture server (issue 3): wrk, 50 connections, on 127.0.0.1.
//   GET small JSON, and POST 2 KiB JSON → 4 KiB JSON, against a trivial Node upstream:
//   direct to the app; through `run --no-capture`; through `run` capturing to files and PostgreSQL.
// Reports req/s, p50/p99 latency, peak RSS of the run processes, records written vs requests sent, and the
// CPU time per request of each part (proxy workers, primary, PostgreSQL, app, the rest), the sinks' catch-up included.
// Then, at a fixed rate that every set-up sustains (an open-loop client, --rate, default 3000 req/s), the latency a
// request sees when the proxy is busy but not saturated (under wrk's saturating load, p50 only follows throughput).
// Run: node bench/run.js capture [--duration 10] [--workers 1] [--rate 3000] [--integrity on|off]
// --integrity off runs `run` without the PostgreSQL integrity chain (AUDIT_LOGS_INTEGRITY=false; on, the default, chains
// every batch): the difference of the two runs' CPU time per request is the chain's cost per record.
import {spawn} from 'node:child_process'
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import {resolveConfig} from '../src/config/resolve.js'
import {freePort} from '../src/util/process.js'
import {premake} from '../src/stores/postgres/partitions.js'
import {openBenchDatabase} from './bench-db.js'
import {ORDER_2K as POST_BODY} from './bodies.mjs'
import {
  type RateResult,
  type WrkResult,
  atRate,
  cpuPerRequest,
  cpuSnapshot,
  postmasterPid,
  runArgs,
  sleep,
  treeMemory,
  wrk,
} from './measure.js'

const {values} = parseArgs({
  args: process.argv.slice(2),
  options: {
    duration: {type: 'string', default: '10'},
    workers: {type: 'string', default: '1'},
    connections: {type: 'string', default: '50'},
    rate: {type: 'string', default: '3000'},
    integrity: {type: 'string', default: 'on'},
  },
})
if (!['on', 'off'].includes(values.integrity!)) throw new Error(`--integrity ${values.integrity}: on or off is accepted`)
const INTEGRITY = values.integrity === 'on'
/** wrk's settings, the same in every run and in the report's first line. */
const WRK = [`-t${Math.min(2, Number(values.connections))}`, `-c${values.connections}`, `-d${values.duration}s`]
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const tmp = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-bench-capture-'))
chmodSync(tmp, 0o755) // the embedded server's OS user must enter it
const POST_LUA = path.join(tmp, 'post.lua')
writeFileSync(POST_LUA, `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = '${POST_BODY}'\n`)

/** wrk's load at the settings above; a POST sends the 2 KiB body. */
const load = (url: string, post: boolean): Promise<WrkResult> => wrk(WRK, url, post ? POST_LUA : undefined)
/** `--rate` requests a second for `--duration` seconds, open loop (see measure.ts). */
const rateLoad = (url: string, post: boolean): Promise<RateResult> =>
  atRate(url, {
    rate: Number(values.rate),
    seconds: Number(values.duration),
    connections: Number(values.connections),
    body: post ? POST_BODY : undefined,
  })

async function main() {
  const appPort = await freePort()
  const app = spawn(process.execPath, [path.join(ROOT, 'bench/upstream.mjs')], {
    env: {...process.env, PORT: String(appPort)},
    stdio: 'ignore',
  })
  // the embedded server as `run` starts it: at the background priority (config default)
  const {
    url: dbUrl,
    db,
    close,
  } = await openBenchDatabase('bench_capture', {
    dir: path.join(tmp, 'pg'),
    nice: (await resolveConfig({cwd: tmp, env: {AUDIT_LOGS_BACKGROUND_NICE: process.env.AUDIT_LOGS_BACKGROUND_NICE}})).backgroundNice,
  })
  await premake(db, {interval: 'month', ahead: 1})
  // this server's processes only: a test's embedded server on the same machine is not ours to count
  const postmaster = postmasterPid(String((await db.query('SHOW data_directory')).rows[0].data_directory))
  await sleep(500)
  const lines: string[] = []
  const say = (l: string) => {
    console.log(l)
    lines.push(l)
  }
  say(
    `wrk ${WRK.join(' ')}, workers ${values.workers}, integrity chain ${values.integrity}, ${os.cpus().length} cores, node ${process.version}`,
  )
  try {
    // capture twice: answers held until their records are journaled (recordBeforeAnswer, the default) and not
    const scenarios: Array<{name: string; args?: string[]; env?: Record<string, string>}> = [
      {name: 'direct to the app'},
      {name: 'run --no-capture', args: ['--no-capture']},
      {name: 'run, capture to files + PostgreSQL', args: []},
      {
        name: 'run, capture to files + PostgreSQL, recordBeforeAnswer false',
        args: [],
        env: {AUDIT_LOGS_RECORD_BEFORE_ANSWER: 'false'},
      },
    ]
    for (const sc of scenarios) {
      let url = `http://127.0.0.1:${appPort}`
      let child: ReturnType<typeof spawn> | undefined
      let adminPort = 0
      let err = ''
      if (sc.args) {
        const port = await freePort()
        adminPort = await freePort()
        const dir = mkdtempSync(path.join(tmp, 'run-'))
        child = spawn(
          path.join(ROOT, 'bin/run.js'),
          [...runArgs({upstream: url, port, adminPort, workers: values.workers!, logDir: path.join(dir, 'logs')}), ...sc.args],
          {
            env: {
              ...process.env,
              AUDIT_LOGS_DATABASE_URL: dbUrl,
              AUDIT_LOGS_DATA_DIR: path.join(dir, 'data'),
              AUDIT_LOGS_INTEGRITY: INTEGRITY ? 'true' : 'false',
              OCLIF_SKIP_NEW_VERSION_CHECK: '1',
              ...sc.env,
            },
            cwd: dir, // not the user's directory: its audit-logs.config.mjs or .env (a dbName) would redirect the records
            stdio: ['ignore', 'ignore', 'pipe'],
          },
        )
        child.stderr!.on('data', (c) => (err += c))
        while (!err.includes('listening on')) {
          if (child.exitCode !== null) throw new Error(err)
          await sleep(50)
        }
        url = `http://127.0.0.1:${port}`
      }
      await db.query('TRUNCATE request_logs, access_logs')
      const peak = {rss: 0, pss: 0, resident: 0, phase: ''}
      let phase = 'the warm-up' // what the load is doing, for where the peak comes
      let sampling = false
      const sampler = child
        ? setInterval(async () => {
            if (sampling) return
            sampling = true
            const m = await treeMemory(child!.pid!)
            if (m.rss > peak.rss) Object.assign(peak, {rss: m.rss, phase})
            peak.pss = Math.max(peak.pss, m.pss)
            peak.resident = Math.max(peak.resident, m.resident)
            sampling = false
          }, 200)
        : undefined
      await load(`${url}/small`, false) // warm-up, not reported
      const capturing = Boolean(child && sc.args!.length === 0)
      const metricsText = async () => (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text()
      const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0)
      const proxied = async () => metric(await metricsText(), 'audit_logs_requests_total')
      const rows = async () => Number((await db.query('SELECT (SELECT count(*) FROM request_logs) AS r')).rows[0].r)
      /** Waits until every proxied request is in PostgreSQL; returns the seconds it took after the load. */
      const drain = async (): Promise<number> => {
        await sleep(1000) // workers report their counts every 500 ms
        const sent = await proxied()
        const t0 = Date.now()
        while ((await rows()) < sent && Date.now() - t0 < 180_000) await sleep(100)
        return (Date.now() - t0) / 1000 + 1
      }
      phase = "the warm-up's catch-up"
      if (capturing) await drain()
      const measured: Record<string, {r: WrkResult; cpu: string; load: string; drained?: number}> = {}
      for (const [name, post] of [
        ['GET', false],
        ['POST', true],
      ] as const) {
        const before = cpuSnapshot({app: app.pid!, run: child?.pid, postmaster})
        phase = `the ${name} load`
        const r = await load(`${url}/${post ? 'post' : 'small'}`, post)
        const loaded = cpuSnapshot({app: app.pid!, run: child?.pid, postmaster})
        phase = `the ${name} load's catch-up`
        const drained = capturing ? await drain() : undefined
        measured[name] = {
          r,
          cpu: cpuPerRequest(before, cpuSnapshot({app: app.pid!, run: child?.pid, postmaster}), r.requests),
          load: cpuPerRequest(before, loaded, r.requests),
          drained,
        }
      }
      // the same requests at a fixed rate: what a request waits when the proxy is busy but not saturated
      phase = 'the fixed-rate loads'
      const rated = {GET: await rateLoad(`${url}/small`, false), POST: await rateLoad(`${url}/post`, true)}
      if (capturing) await drain()
      if (sampler) clearInterval(sampler)
      let records = ''
      if (capturing) {
        const sent = await proxied()
        const n = await rows()
        const access = Number((await db.query('SELECT count(*) AS n FROM access_logs')).rows[0].n)
        const dup = Number((await db.query('SELECT count(*) - count(DISTINCT id) AS d FROM request_logs')).rows[0].d)
        const metrics = await metricsText()
        const dropped = metric(metrics, 'audit_logs_records_dropped_total')
        if (n < sent)
          say(
            `  NOT CAUGHT UP: ${metrics
              .split('\n')
              .filter((l) => l.startsWith('audit_logs_'))
              .join('; ')}\n  run's log: ${err.slice(-2000)}`,
          )
        records =
          `; records: ${n} request + ${access} access rows for ${sent} proxied requests (${dup} duplicates, ${dropped} ` +
          `records dropped); sinks caught up ${measured.GET.drained!.toFixed(1)} s (GET) and ${measured.POST.drained!.toFixed(1)} ` +
          `s (POST) after the load`
      }
      const {GET: get, POST: post} = {GET: measured.GET.r, POST: measured.POST.r}
      say(
        `${sc.name}: GET ${Math.round(get.rps)} req/s p50 ${get.p50} p99 ${get.p99} (${get.errors} errors); POST ${Math.round(post.rps)} req/s p50 ${post.p50} p99 ${post.p99} (${post.errors} errors)${child ? `; peak RSS ${(peak.rss / 1048576).toFixed(0)} MB in ${peak.phase} (peak each page once ${(peak.resident / 1048576).toFixed(0)} MB, PSS ${(peak.pss / 1048576).toFixed(0)} MB)` : ''}${records}`,
      )
      say(
        `  at ${values.rate} req/s (open loop, at most ${values.connections} connections): ${(['GET', 'POST'] as const).map((k) => `${k} ${Math.round(rated[k].rps)} req/s p50 ${rated[k].p50.toFixed(2)} ms p99 ${rated[k].p99.toFixed(2)} ms (${rated[k].errors} errors)`).join('; ')}`,
      )
      for (const k of ['GET', 'POST']) {
        say(`  ${k} during the load: ${measured[k].load}`)
        if (capturing) say(`  ${k} with the sinks' catch-up: ${measured[k].cpu}`)
      }
      if (child) {
        child.kill('SIGTERM')
        await new Promise((r) => child!.once('exit', r))
      }
    }
  } finally {
    app.kill()
    await close()
    rmSync(tmp, {recursive: true, force: true})
  }
}

await main()
