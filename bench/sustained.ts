// Sustained end-to-end capture rate: how many requests a second a set-up can take for as long as the load
// lasts AND get into its audit store, not only how many it proxies while the sinks fall behind.
//
// Set-ups (scenarios), in front of the trivial Node upstream (bench/upstream.mjs), then, with --django,
// in front of a small Django app under gunicorn (bench/django/):
//   direct     direct to the app
//   nocapture  `run --no-capture`
//   naive      bench/naive-proxy.mjs: a plain node:http proxy batching INSERTs into the same request_logs
//   run        `run`, capturing to the JSONL files and PostgreSQL
// For each, GET /small and POST /post (2 KiB in, 4 KiB out) under wrk -t1 -c50 for --duration seconds
// (saturating). A capturing set-up then gets the time its sinks need to hold every proxied request (the
// catch-up), and the headline figure is
//   end-to-end rate = requests wrk completed / (load seconds + catch-up seconds).
// Also: records sent and stored, duplicates, the lag during the load, peak RSS, peak journal, CPU per
// request of each process (catch-up included), and each rate against the naive proxy's and the app's.
//
// The lag is sampled every second as requests proxied minus rows inserted, both as the proxy counts them
// (run: its records written to PostgreSQL / 2, a request and an access record per request; naive: its
// rows inserted). A count(*) of request_logs each second would be exact but scans the table: 0.2-0.4 s
// (parallel workers included) for 500,000 POST rows on the 2-core bench machine, CPU taken from the
// set-up being measured. The records stored are counted with count(*) once the sinks have caught up.
//
// --knee: for `run` only, the highest fixed rate (the open-loop client of measure.ts) at which the lag
// stays under 5 s for a whole step of --knee-seconds; steps start at half the saturating end-to-end
// rate and go up by 15% until one fails.
// --soak SECONDS: instead of the scenarios, one saturating POST load of that length against `run`
// (in front of each app).
//
// Run: node bench/run.js sustained [--duration 60] [--only direct,nocapture,naive,run] [--methods GET,POST] [--integrity on|off]
// (--integrity off: run without the PostgreSQL integrity chain, AUDIT_LOGS_INTEGRITY=false, to measure its cost per record)
//        [--django | --django-only] [--knee [--knee-seconds 60] [--knee-start RATE]] [--soak SECONDS]
//        [--workers 1] [--warmup 5] [--run-env KEY=VALUE ...]
import {type ChildProcess, execFileSync, spawn, spawnSync} from 'node:child_process'
import {appendFileSync, chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import type pg from 'pg'
import {resolveConfig} from '../src/config/resolve.js'
import {premake} from '../src/stores/postgres/partitions.js'
import {freePort} from '../src/util/process.js'
import {type BenchDatabase, fmt, openBenchDatabase} from './bench-db.js'
import {ORDER_2K as POST_BODY} from './bodies.mjs'
import {
  type CpuParts,
  type RateResult,
  type WrkResult,
  cpuPerRequest,
  cpuSnapshot,
  openLoop,
  pids,
  postmasterPid,
  runArgs,
  sleep,
  treeMemory,
  wrk,
} from './measure.js'

const {values} = parseArgs({
  args: process.argv.slice(2),
  options: {
    duration: {type: 'string', default: '60'},
    warmup: {type: 'string', default: '5'},
    workers: {type: 'string', default: '1'},
    connections: {type: 'string', default: '50'},
    only: {type: 'string', default: 'direct,nocapture,naive,run'},
    methods: {type: 'string', default: 'GET,POST'},
    'django-only': {type: 'boolean', default: false},
    django: {type: 'boolean', default: false},
    knee: {type: 'boolean', default: false},
    'knee-seconds': {type: 'string', default: '60'},
    'knee-start': {type: 'string'},
    soak: {type: 'string'},
    'run-env': {type: 'string', multiple: true, default: []},
    integrity: {type: 'string', default: 'on'},
  },
})

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const CONNECTIONS = Number(values.connections)
const WARMUP = Math.min(Number(values.warmup), Number(values.duration))
const wrkSettings = (seconds: number) => ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`]
/** Every request `run` captures makes two records: a request_logs and an access_logs one (the bench excludes no path). */
const RECORDS_PER_REQUEST = 2
const LAG_LIMIT_S = 5
const KNEE_STEP = 1.15
const ACHIEVED_MIN = 0.95
const CATCH_UP_CAP_MS = 600_000

type Kind = 'direct' | 'nocapture' | 'naive' | 'run'
type Method = 'GET' | 'POST'
const SCENARIOS: Array<{kind: Kind; name: string}> = [
  {kind: 'direct', name: 'direct to the app'},
  {kind: 'nocapture', name: 'run --no-capture'},
  {kind: 'naive', name: 'naive batching proxy'},
  {kind: 'run', name: 'run, capture to files + PostgreSQL'},
]
const only = values.only!.split(',').map((s) => s.trim()) as Kind[]
const methods = values.methods!.split(',').map((s) => s.trim().toUpperCase()) as Method[]
const runEnv = Object.fromEntries(
  values['run-env']!.map((kv) => {
    const at = kv.indexOf('=')
    if (at < 1) throw new Error(`--run-env ${kv}: expected KEY=VALUE`)
    return [kv.slice(0, at), kv.slice(at + 1)]
  }),
)
if (!['on', 'off'].includes(values.integrity!)) throw new Error(`--integrity ${values.integrity}: on or off is accepted`)
// the integrity chain on or off (off: the records are not chained); --run-env AUDIT_LOGS_INTEGRITY wins
runEnv.AUDIT_LOGS_INTEGRITY ??= values.integrity === 'on' ? 'true' : 'false'
for (const k of only)
  if (!SCENARIOS.some((s) => s.kind === k)) throw new Error(`--only ${k}: expected some of ${SCENARIOS.map((s) => s.kind).join(',')}`)
for (const m of methods) if (m !== 'GET' && m !== 'POST') throw new Error(`--methods ${m}: expected GET and/or POST`)
if (values.knee && !only.includes('run') && !values['knee-start'])
  throw new Error("--knee starts from run's saturating rate: keep run in --only, or give --knee-start RATE")

// ---------------------------------------------------------------- output: the console and bench/out/

const OUT = path.join(
  ROOT,
  'bench/out',
  `sustained-${new Date()
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replaceAll(':', '-')}.txt`,
)
mkdirSync(path.dirname(OUT), {recursive: true})
/** Prints a line and appends it to the output file at once, so an interrupted run keeps what it measured. */
function say(line: string): void {
  console.log(line)
  appendFileSync(OUT, `${line}\n`)
}
const mb = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MB`
const s1 = (seconds: number) => `${seconds.toFixed(1)} s`

// ---------------------------------------------------------------- processes, and cleaning up after them

const tmp = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-bench-sustained-'))
chmodSync(tmp, 0o755) // the embedded server's OS user must enter it
const POST_LUA = path.join(tmp, 'post.lua')
writeFileSync(POST_LUA, `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = '${POST_BODY}'\n`)

const children = new Set<ChildProcess>()
/** the embedded server's database, as soon as it is asked for: an interrupt while it starts must still stop it */
let opening: Promise<BenchDatabase> | undefined
let database: BenchDatabase | undefined
let cleaning: Promise<void> | undefined

/** Keeps a child on the list that cleanup() stops; one started while cleaning up (main() runs on meanwhile) is stopped at once. */
function track<T extends ChildProcess>(child: T): T {
  if (cleaning) child.kill('SIGKILL')
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** SIGTERM, then SIGKILL if it has not exited within `ms` (run flushes its journal on the way out). */
async function stop(child: ChildProcess, ms = 30_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  if (await Promise.race([exited.then(() => true), sleep(ms).then(() => false)])) return
  child.kill('SIGKILL')
  await exited
}

/** Stops every child, the embedded server, and removes the temporary directory; once, whatever called it. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all([...children].map((c) => stop(c, 10_000)))
    const opened = await opening?.catch(() => undefined)
    await opened?.close().catch((error) => console.error(`closing the database: ${error.message}`))
    rmSync(tmp, {recursive: true, force: true})
  })()
  return cleaning
}
// `on`, not `once`: execa's signal-exit (the embedded server's initdb and pg_ctl) re-raises a signal that
// no other listener is left to handle, which would end this process before cleanup() is through
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (cleaning) return // already on the way out
    say(`interrupted (${signal}): stopping every process and the database`)
    void cleanup().finally(() => process.exit(130))
  })
}

/** Waits until `check` passes, or fails with what the process said if it exits first. */
async function until(
  what: string,
  child: ChildProcess,
  output: () => string,
  check: () => boolean | Promise<boolean>,
  ms = 60_000,
): Promise<void> {
  const t0 = Date.now()
  while (!(await check())) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}): ${output().slice(-3000)}`)
    if (Date.now() - t0 > ms) throw new Error(`${what} did not start within ${ms / 1000} s: ${output().slice(-3000)}`)
    await sleep(100)
  }
}

/** Keeps the last 20 KB a process writes to stderr, for error messages. */
function tail(child: ChildProcess): () => string {
  let text = ''
  child.stderr?.on('data', (c) => (text = (text + c).slice(-20_000)))
  return () => text
}

const answers = async (url: string) => {
  try {
    return (await fetch(url)).ok
  } catch {
    return false
  }
}

// ---------------------------------------------------------------- the apps

type App = {name: string; url: string; proc: ChildProcess; extraCpu: CpuParts['extra']}

async function startNodeApp(): Promise<App> {
  const port = await freePort()
  const proc = track(
    spawn(process.execPath, [path.join(ROOT, 'bench/upstream.mjs')], {
      env: {...process.env, PORT: String(port)},
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  )
  const url = `http://127.0.0.1:${port}`
  await until('the Node upstream', proc, tail(proc), () => answers(`${url}/small`))
  return {name: 'trivial Node upstream', url, proc, extraCpu: {}}
}

async function startDjangoApp(): Promise<App> {
  const dir = path.join(ROOT, 'bench/django')
  // idempotent: installs Django and gunicorn once, rewrites bodies.json from bodies.mjs each time
  if (spawnSync('sh', [path.join(dir, 'setup.sh')], {stdio: 'inherit'}).status !== 0) throw new Error('bench/django/setup.sh failed')
  const gunicorn = path.join(dir, '.venv/bin/gunicorn')
  // gunicorn 23+ opens a control socket in ~/.gunicorn unless told not to; older ones do not know the flag
  const noControl = execFileSync(gunicorn, ['--help']).toString().includes('--no-control-socket') ? ['--no-control-socket'] : []
  const port = await freePort()
  const proc = track(
    spawn(gunicorn, ['-w', '2', '-k', 'sync', '-b', `127.0.0.1:${port}`, ...noControl, 'benchapp.wsgi'], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  )
  const url = `http://127.0.0.1:${port}`
  await until('gunicorn', proc, tail(proc), () => answers(`${url}/small`))
  // the workers are the master's children, looked up at each snapshot (gunicorn replaces one that dies)
  return {name: 'Django 4.2 under gunicorn -w 2 -k sync', url, proc, extraCpu: {app: () => pids(['-P', String(proc.pid)])}}
}

// ---------------------------------------------------------------- the set-ups in front of an app

/** What a capturing proxy says of its progress, cumulative since it started. */
type Progress = {
  proxied: number
  /** rows in request_logs, as the proxy counts them */
  stored: number
  /** nothing left for any sink: every journal byte delivered (run), no batch pending (naive) */
  idle: boolean
  journal: number
  dropped: number
  refused: number
}

type Target = {
  kind: Kind
  url: string
  /** the proxy's process (run's primary, the naive proxy), none direct to the app */
  proc?: ChildProcess
  progress?: () => Promise<Progress>
  cpu: CpuParts
  output: () => string
}

async function startRun(app: App, kind: 'run' | 'nocapture', postmaster?: number): Promise<Target> {
  const port = await freePort()
  const adminPort = await freePort()
  const dir = mkdtempSync(path.join(tmp, 'run-'))
  const args = runArgs({upstream: app.url, port, adminPort, workers: values.workers!, logDir: path.join(dir, 'logs')})
  const proc = track(
    spawn(path.join(ROOT, 'bin/run.js'), [...args, ...(kind === 'nocapture' ? ['--no-capture'] : [])], {
      env: {
        ...process.env,
        AUDIT_LOGS_DATABASE_URL: database!.url,
        AUDIT_LOGS_DATA_DIR: path.join(dir, 'data'),
        OCLIF_SKIP_NEW_VERSION_CHECK: '1',
        ...runEnv,
      },
      cwd: dir, // not the user's directory: its audit-logs.config.mjs or .env (a dbName) would redirect the records
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  )
  const output = tail(proc)
  await until('run', proc, output, () => output().includes('listening on'))
  const metrics = async () => (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text()
  const progress = async (): Promise<Progress> => {
    const text = await metrics()
    const metric = (name: string, labels = '') =>
      Number(new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\S+)`, 'm').exec(text)?.[1] ?? 0)
    return {
      proxied: metric('audit_logs_requests_total'),
      stored: metric('audit_logs_records_written_total', '{sink="postgres"}') / RECORDS_PER_REQUEST,
      idle: metric('audit_logs_sink_lag_bytes', '{sink="files"}') === 0 && metric('audit_logs_sink_lag_bytes', '{sink="postgres"}') === 0,
      journal: metric('audit_logs_journal_bytes'),
      dropped: metric('audit_logs_records_dropped_total'),
      refused: metric('audit_logs_requests_refused_total'), // only where run has whenFull: block
    }
  }
  return {
    kind,
    url: `http://127.0.0.1:${port}`,
    proc,
    progress: kind === 'run' ? progress : undefined,
    cpu: {app: app.proc.pid!, run: proc.pid, extra: app.extraCpu, postmaster},
    output,
  }
}

async function startNaive(app: App, postmaster?: number): Promise<Target> {
  const port = await freePort()
  const adminPort = await freePort()
  const proc = track(
    spawn(process.execPath, [path.join(ROOT, 'bench/naive-proxy.mjs')], {
      env: {...process.env, PORT: String(port), ADMIN_PORT: String(adminPort), UPSTREAM: app.url, DATABASE_URL: database!.url},
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  )
  const output = tail(proc)
  await until('the naive proxy', proc, output, () => output().includes('listening on'))
  const progress = async (): Promise<Progress> => {
    const s = (await (await fetch(`http://127.0.0.1:${adminPort}/__naive/stats`)).json()) as {
      proxied: number
      inserted: number
      pending: number
      failed: number
    }
    return {proxied: s.proxied, stored: s.inserted, idle: s.pending === 0, journal: 0, dropped: s.failed, refused: 0}
  }
  return {
    kind: 'naive',
    url: `http://127.0.0.1:${port}`,
    proc,
    progress,
    cpu: {app: app.proc.pid!, extra: {...app.extraCpu, proxy: () => [proc.pid!]}, postmaster},
    output,
  }
}

async function startTarget(kind: Kind, app: App, postmaster?: number): Promise<Target> {
  if (kind === 'direct') return {kind, url: app.url, cpu: {app: app.proc.pid!, extra: app.extraCpu, postmaster}, output: () => ''}
  if (kind === 'naive') return startNaive(app, postmaster)
  return startRun(app, kind, postmaster)
}

// ---------------------------------------------------------------- the database

const db = (): pg.Client => database!.db
const count = async (sql: string) => Number((await db().query(sql)).rows[0].n)
const requestRows = () => count('SELECT count(*) AS n FROM request_logs')

// ---------------------------------------------------------------- samplers

/** Runs `fn` every `ms` (skipping a beat while the previous one is still running) until stopped. */
function every(ms: number, fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined
  const timer = setInterval(() => {
    running ??= fn()
      .catch(() => {}) // a sample missed (a scrape during a restart) is not worth failing the run for
      .finally(() => (running = undefined))
  }, ms)
  return async () => {
    clearInterval(timer)
    await running
  }
}

type Peaks = {rss: number; pss: number; resident: number; appRss: number}
/** Peak memory of the proxy's process tree and the app's, every 500 ms. */
function sampleMemory(target: Target, app: App): {peaks: Peaks; stop: () => Promise<void>} {
  const peaks = {rss: 0, pss: 0, resident: 0, appRss: 0}
  const stop = every(500, async () => {
    if (target.proc) {
      const m = await treeMemory(target.proc.pid!)
      peaks.rss = Math.max(peaks.rss, m.rss)
      peaks.pss = Math.max(peaks.pss, m.pss)
      peaks.resident = Math.max(peaks.resident, m.resident)
    }
    peaks.appRss = Math.max(peaks.appRss, (await treeMemory(app.proc.pid!)).rss)
  })
  return {peaks, stop}
}

type LagSample = {t: number; lag: number}
/** Every second: requests proxied since `base` but not yet stored, and the journal's size. */
function sampleLag(target: Target, base: Progress): {samples: LagSample[]; peakJournal: () => number; stop: () => Promise<void>} {
  const samples: LagSample[] = []
  let peakJournal = 0
  const t0 = Date.now()
  const stop = every(1000, async () => {
    const p = await target.progress!()
    samples.push({t: (Date.now() - t0) / 1000, lag: Math.max(0, p.proxied - base.proxied - (p.stored - base.stored))})
    peakJournal = Math.max(peakJournal, p.journal)
  })
  return {samples, peakJournal: () => peakJournal, stop}
}

// ---------------------------------------------------------------- catching up

type CatchUp = {seconds: number; caughtUp: boolean; proxied: number}

/**
 * Waits, from `loadEnd`, until every request proxied since `base` is in every sink; returns how long
 * that took. run's workers report their counts every 500 ms, so the number proxied is final only 1 s
 * after the load; meanwhile the samples are kept, and the catch-up ends at the first sample where the
 * sinks were idle and held that many (polled every 100 ms; run refreshes its sink stats every 250 ms).
 * The proxy's own count is then checked against count(*).
 */
async function catchUp(target: Target, base: Progress, loadEnd: number, {confirm = true} = {}): Promise<CatchUp> {
  // a request whose records were dropped (whenFull: drop, or a version that dropped at the journal's
  // bound) will never be stored: the catch-up ends when every other one is
  const seen: Array<{t: number; stored: number; lost: number; idle: boolean}> = []
  let proxied = Infinity
  for (;;) {
    const p = await target.progress!()
    const t = Date.now()
    const lost = (p.dropped - base.dropped) / (target.kind === 'naive' ? 1 : RECORDS_PER_REQUEST)
    seen.push({t, stored: p.stored - base.stored, lost, idle: p.idle})
    if (t - loadEnd >= 1000 && proxied === Infinity) proxied = p.proxied - base.proxied
    const done = seen.find((s) => s.idle && s.stored + s.lost >= proxied)
    if (done) {
      // the proxy's count says so; PostgreSQL has the last word
      if (!confirm || (await requestRows()) + done.lost >= proxied) return {seconds: (done.t - loadEnd) / 1000, caughtUp: true, proxied}
      // the proxy counted rows that PostgreSQL does not show: the catch-up ends when it does
      for (;;) {
        const caughtUp = (await requestRows()) + done.lost >= proxied
        if (caughtUp || Date.now() - loadEnd > CATCH_UP_CAP_MS) return {seconds: (Date.now() - loadEnd) / 1000, caughtUp, proxied}
        await sleep(250)
      }
    }
    if (t - loadEnd > CATCH_UP_CAP_MS) return {seconds: (t - loadEnd) / 1000, caughtUp: false, proxied}
    await sleep(100)
  }
}

/**
 * Empties the audit tables once every sink holds what was sent so far (a warm-up's, a previous load's
 * records), and returns the counts to measure from.
 */
async function freshStart(target: Target): Promise<Progress | undefined> {
  if (target.progress) {
    await sleep(1000) // run's workers report every 500 ms: then its count of requests is final
    const zero = {...(await target.progress()), proxied: 0, stored: 0}
    // the proxy's counts since it started; the tables may hold fewer rows (emptied since), so no count(*)
    const settled = await catchUp(target, zero, Date.now() - 1000, {confirm: false})
    if (!settled.caughtUp) say(`  (the sinks had not caught up with the requests before this load after ${s1(settled.seconds)})`)
  }
  await db().query('TRUNCATE request_logs, access_logs')
  return target.progress?.()
}

// ---------------------------------------------------------------- one saturating load

type LoadResult = {
  wrk: WrkResult
  catchUp?: CatchUp
  e2e: number
  lag?: {samples: LagSample[]; max: number; maxSeconds: number; proxiedRps: number}
  peaks: Peaks
  peakJournal: number
  records?: {stored: number; access: number; dropped: number; refused: number; duplicates: number}
  cpu: string
}

const pathOf = (method: Method) => (method === 'POST' ? '/post' : '/small')
const luaOf = (method: Method) => (method === 'POST' ? POST_LUA : undefined)

async function saturatingLoad(target: Target, app: App, method: Method, seconds: number): Promise<LoadResult> {
  const base = await freshStart(target)
  const memory = sampleMemory(target, app)
  const lag = base ? sampleLag(target, base) : undefined
  const before = cpuSnapshot(target.cpu)
  const r = await wrk(wrkSettings(seconds), `${target.url}${pathOf(method)}`, luaOf(method), (c) => track(c))
  const loadEnd = Date.now()
  await lag?.stop()
  const caught = base ? await catchUp(target, base, loadEnd) : undefined
  const after = cpuSnapshot(target.cpu)
  await memory.stop()
  const result: LoadResult = {
    wrk: r,
    catchUp: caught,
    e2e: r.requests / (r.seconds + (caught?.seconds ?? 0)),
    peaks: memory.peaks,
    peakJournal: lag?.peakJournal() ?? 0,
    cpu: cpuPerRequest(before, after, r.requests),
  }
  if (base && caught && lag) {
    const proxiedRps = caught.proxied / r.seconds
    const max = Math.max(0, ...lag.samples.map((s) => s.lag))
    result.lag = {samples: lag.samples, max, maxSeconds: max / proxiedRps, proxiedRps}
    const p = await target.progress!()
    result.records = {
      stored: await requestRows(),
      access: await count('SELECT count(*) AS n FROM access_logs'),
      dropped: p.dropped - base.dropped,
      refused: p.refused - base.refused,
      duplicates: await count('SELECT count(*) - count(DISTINCT id) AS n FROM request_logs'),
    }
    // a request counts once its records are stored: one whose records were dropped never does
    result.e2e = Math.min(r.requests, result.records.stored) / (r.seconds + caught.seconds)
  }
  return result
}

function report(label: string, kind: Kind, x: LoadResult): void {
  const w = x.wrk
  const load = `wrk ${fmt(w.requests)} requests in ${s1(w.seconds)}, ${fmt(w.rps)} req/s, p50 ${w.p50} p99 ${w.p99}, ${w.errors} errors`
  if (!x.catchUp) {
    say(
      `${label}: ${fmt(x.e2e)} req/s (${load}); peak RSS ${x.peaks.rss ? `proxy ${mb(x.peaks.rss)} (each page once ${mb(x.peaks.resident)}, PSS ${mb(x.peaks.pss)}), ` : ''}app ${mb(x.peaks.appRss)}`,
    )
  } else {
    const c = x.catchUp
    say(
      `${label}: end-to-end ${c.caughtUp ? '' : '≤ '}${fmt(x.e2e)} req/s (${load}; catch-up ${s1(c.seconds)}${c.caughtUp ? '' : ', NOT CAUGHT UP'})`,
    )
    const r = x.records!
    const access =
      kind === 'run'
        ? ` + ${fmt(r.access)} access rows, ${fmt(r.dropped)} records dropped${r.refused ? `, ${fmt(r.refused)} requests refused (503)` : ''}`
        : `, ${fmt(r.dropped)} failed inserts`
    say(
      `  proxied ${fmt(x.lag!.proxiedRps)} req/s during the load; records: ${fmt(c.proxied)} sent, ${fmt(r.stored)} stored${access}, ${fmt(r.duplicates)} duplicates`,
    )
    say(
      `  max lag during the load ${fmt(x.lag!.max)} records (${s1(x.lag!.maxSeconds)}); peak RSS proxy ${mb(x.peaks.rss)} (each page once ${mb(x.peaks.resident)}, PSS ${mb(x.peaks.pss)}), app ${mb(x.peaks.appRss)}${kind === 'run' ? `; peak journal ${mb(x.peakJournal)}` : ''}`,
    )
  }
  say(`  ${x.cpu}${x.catchUp ? ' (load and catch-up)' : ''}`)
}

/** Starts the set-up, warms it with each method, lets the sinks catch up, then does the measured loads. */
async function scenario(
  kind: Kind,
  name: string,
  app: App,
  postmaster: number | undefined,
  results: Map<string, LoadResult>,
): Promise<void> {
  const target = await startTarget(kind, app, postmaster)
  try {
    for (const method of methods) await wrk(wrkSettings(WARMUP), `${target.url}${pathOf(method)}`, luaOf(method), (c) => track(c))
    for (const method of methods) {
      const x = await saturatingLoad(target, app, method, Number(values.duration))
      results.set(`${kind} ${method}`, x)
      report(`${name}, ${method}`, kind, x)
    }
  } catch (error) {
    if (cleaning) throw error // interrupted: not the set-up's failure
    say(`${name}: FAILED: ${(error as Error).message}\n  its log: ${target.output().slice(-2000)}`)
  } finally {
    if (target.proc) await stop(target.proc)
  }
}

function ratios(results: Map<string, LoadResult>): void {
  for (const method of methods) {
    const naive = results.get(`naive ${method}`)
    const direct = results.get(`direct ${method}`)
    const parts = SCENARIOS.filter((s) => results.has(`${s.kind} ${method}`)).map(({kind}) => {
      const e2e = results.get(`${kind} ${method}`)!.e2e
      const against = [
        naive && kind !== 'naive' ? `${(e2e / naive.e2e).toFixed(2)}× naive` : '',
        direct && kind !== 'direct' ? `${(e2e / direct.e2e).toFixed(2)}× direct` : '',
      ].filter(Boolean)
      return `${kind} ${fmt(e2e)}${against.length ? ` (${against.join(', ')})` : ''}`
    })
    if (parts.length) say(`  ${method} end-to-end req/s: ${parts.join('; ')}`)
  }
}

// ---------------------------------------------------------------- --knee: the highest rate run sustains

type Step = {rate: number; r: RateResult; maxLagSeconds: number; catchUp: CatchUp}

async function kneeStep(target: Target, method: Method, rate: number): Promise<Step> {
  const base = (await freshStart(target))!
  const lag = sampleLag(target, base)
  const agent = new http.Agent({keepAlive: true, maxSockets: CONNECTIONS})
  let r: RateResult
  try {
    r = await openLoop(agent, `${target.url}${pathOf(method)}`, {
      rate,
      seconds: Number(values['knee-seconds']),
      body: method === 'POST' ? POST_BODY : undefined,
    })
  } finally {
    agent.destroy()
  }
  const loadEnd = Date.now()
  await lag.stop()
  const caught = await catchUp(target, base, loadEnd) // fully, so the next step starts from an empty backlog
  return {rate, r, maxLagSeconds: Math.max(0, ...lag.samples.map((s) => s.lag)) / rate, catchUp: caught}
}

async function knee(app: App, postmaster: number | undefined, results: Map<string, LoadResult>): Promise<void> {
  const target = await startTarget('run', app, postmaster)
  try {
    for (const method of methods) {
      const saturated = results.get(`run ${method}`)?.e2e
      const first = values['knee-start'] ? Number(values['knee-start']) : Math.round((saturated ?? NaN) / 2)
      if (!(first > 0)) {
        say(`knee, run, ${method}: no saturating rate to start from (run's ${method} load failed); give --knee-start RATE`)
        continue
      }
      await wrk(wrkSettings(WARMUP), `${target.url}${pathOf(method)}`, luaOf(method), (c) => track(c))
      const from = values['knee-start']
        ? `--knee-start ${fmt(first)} req/s`
        : `half the saturating end-to-end rate (${fmt(saturated!)} req/s)`
      say(
        `knee, run, ${method}: steps of ${values['knee-seconds']} s at a fixed rate (open loop, at most ${CONNECTIONS} connections), from ${from}, +15% while the lag stays under ${LAG_LIMIT_S} s`,
      )
      let passed: number | undefined
      for (let rate = first; ; rate = Math.round(rate * KNEE_STEP)) {
        const s = await kneeStep(target, method, rate)
        const clientShort = s.r.sentRps < ACHIEVED_MIN * rate
        const ok = s.maxLagSeconds < LAG_LIMIT_S && s.r.errors === 0 && s.r.rps >= ACHIEVED_MIN * rate && s.catchUp.caughtUp
        say(
          `  ${fmt(rate)} req/s: sent ${fmt(s.r.sentRps)}, answered ${fmt(s.r.rps)} req/s, p50 ${s.r.p50.toFixed(1)} ` +
            `ms p99 ${s.r.p99.toFixed(1)} ms, ${s.r.errors} errors; max lag ${s1(s.maxLagSeconds)}; catch-up ${s1(s.catchUp.seconds)}${s.catchUp.caughtUp ? '' : ' (NOT CAUGHT UP)'}: ` +
            `${clientShort ? 'INCONCLUSIVE' : ok ? 'passes' : 'FAILS'}`,
        )
        if (clientShort) {
          say(
            `  this process's open-loop client could not send ${fmt(rate)} req/s (it sent ${fmt(s.r.sentRps)}): not counted against run; the knee is at least ${passed ? fmt(passed) : 'unknown'} req/s`,
          )
          break
        }
        if (!ok) {
          say(
            `  knee, run, ${method}: ${passed ? `${fmt(passed)} req/s (the last step that passed)` : `below ${fmt(rate)} req/s (the first step failed)`}`,
          )
          break
        }
        passed = rate
      }
    }
  } finally {
    await stop(target.proc!)
  }
}

// ---------------------------------------------------------------- --soak: one long load against run

async function soak(app: App, postmaster: number | undefined, seconds: number): Promise<void> {
  const target = await startTarget('run', app, postmaster)
  try {
    await wrk(wrkSettings(WARMUP), `${target.url}/post`, POST_LUA, (c) => track(c))
    const x = await saturatingLoad(target, app, 'POST', seconds)
    report(`soak, run, POST for ${seconds} s`, 'run', x)
    const byMinute: number[] = []
    for (const s of x.lag!.samples) byMinute[Math.floor(s.t / 60)] = Math.max(byMinute[Math.floor(s.t / 60)] ?? 0, s.lag)
    say(
      `  lag samples: ${x.lag!.samples.length}, max ${fmt(x.lag!.max)} records (${s1(x.lag!.maxSeconds)}); max in each minute: ${byMinute.map((v, i) => `${i + 1}: ${fmt(v ?? 0)}`).join(', ')}`,
    )
  } finally {
    await stop(target.proc!)
  }
}

// ---------------------------------------------------------------- the run

function header(): void {
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, {cwd: ROOT}).toString().trim()
    } catch {
      return '?'
    }
  }
  const dirty = git(['status', '--porcelain']) ? ', uncommitted changes' : ''
  const load = values.soak
    ? `soak: wrk ${wrkSettings(Number(values.soak)).join(' ')} POST`
    : `wrk ${wrkSettings(Number(values.duration)).join(' ')}`
  say(
    `sustained: ${load} (warm-up ${WARMUP} s per method), run --workers ${values.workers}${Object.keys(runEnv).length ? `, run env ${values['run-env']!.join(' ')}` : ''}; ${os.cpus().length} cores, node ${process.version}, ${new Date().toISOString()}, git ${git(['rev-parse', '--short', 'HEAD'])}${dirty}`,
  )
  // run is started from dist/: what it measures is the last build, not src/ as it is now
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...readdirSync(dir, {recursive: true, withFileTypes: true})
        .filter((e) => e.isFile())
        .map((e) => statSync(path.join(e.parentPath, e.name)).mtimeMs),
    )
  const built = newest(path.join(ROOT, 'dist'))
  if (newest(path.join(ROOT, 'src')) > built)
    say(`  note: src/ has changes newer than dist/ (built ${new Date(built).toISOString()}); run measures dist/`)
  say(
    `  lag: requests proxied − rows inserted as the proxy counts them, every 1 s; stored: count(*) once caught up; catch-up capped at ${CATCH_UP_CAP_MS / 1000} s`,
  )
}

async function main(): Promise<void> {
  header()
  // the embedded server as `run` starts it: at the background priority (config default); every set-up writes to it
  const nice = (await resolveConfig({cwd: tmp, env: {AUDIT_LOGS_BACKGROUND_NICE: process.env.AUDIT_LOGS_BACKGROUND_NICE}})).backgroundNice
  if (cleaning) return // interrupted already: start no server that nothing would stop
  opening = openBenchDatabase('bench_sustained', {dir: path.join(tmp, 'pg'), nice})
  database = await opening
  await premake(database.db, {interval: 'month', ahead: 1})
  const postmaster = postmasterPid(String((await database.db.query('SHOW data_directory')).rows[0].data_directory))
  const apps = values['django-only'] ? [startDjangoApp] : [startNodeApp, ...(values.django ? [startDjangoApp] : [])]
  for (const startApp of apps) {
    const app = await startApp()
    try {
      say(`app: ${app.name}`)
      if (values.soak) {
        await soak(app, postmaster, Number(values.soak))
        continue
      }
      const results = new Map<string, LoadResult>()
      for (const {kind, name} of SCENARIOS) if (only.includes(kind)) await scenario(kind, name, app, postmaster, results)
      say(`ratios (${app.name}):`)
      ratios(results)
      if (values.knee) await knee(app, postmaster, results)
    } finally {
      await stop(app.proc)
    }
  }
  say(`written to ${path.relative(ROOT, OUT)}`)
}

try {
  await main()
} catch (error) {
  if (!cleaning) say(`FAILED: ${(error as Error).stack}`)
  process.exitCode = 1
} finally {
  await cleanup()
}
