// Benchmark for the MongoDB store (issue 18), against FerretDB 1.24 (the tests' MongoDB-compatible server), each
// part beside PostgreSQL measured in the same run:
//  ship:    a journal of --records generated records (request + access line each, as the capture server writes
//           them) shipped by a Shipper with mongoSink into a fresh database: records/s, CPU µs per record of the
//           shipper (this process) and of the server, the batch sizes the sink saw; baseline postgresSink into the
//           embedded PostgreSQL, the same journal.
//  read:    --rows records (same seed) loaded into PostgreSQL (COPY writer) and MongoDB (the sink's writer), then
//           `query` (limit 50, newest first) and `stats` timings for a few filters through PostgresSource and
//           MongoSource; every MongoDB call is capped at --cap seconds (FerretDB evaluates most filters in Go);
//           --queries picks cases by index (default all), --stats lists filters as 'none;since=24h;status=5xx,since=7d'.
//  capture: `audit-logs run` under wrk (GET, -t1 -c50) with --stores postgres, and --stores both with MongoDB on a
//           FerretDB started here at the embedded PostgreSQL's background priority and on one at nice 0, alternating,
//           --runs each: proxied req/s and whether MongoDB kept up (its documents at the load's end and after).
// Run: node bench/run.js mongo ship [--records 100000]
//      node bench/run.js mongo read [--rows 1000000] [--cap 300] [--queries 0,1,6] [--stats 'none;since=24h'] [--ferret-backend sqlite|postgresql]
//      node bench/run.js mongo capture [--runs 3] [--duration 30]
import {type ChildProcess, spawn} from 'node:child_process'
import {chmodSync, mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import pg from 'pg'
import {resolveConfig} from '../src/config/resolve.js'
import {type FilterInput, parseFilter} from '../src/filters/parse.js'
import {loadIntoMongo} from '../src/generate/load.js'
import {generateRecords, recordBatches} from '../src/generate/records.js'
import {JournalWriter} from '../src/pipeline/journal.js'
import {Shipper} from '../src/pipeline/shipper.js'
import {type Sink, mongoSink, postgresSink} from '../src/pipeline/sinks.js'
import {type MongoStore, connectMongo} from '../src/stores/mongo/connection.js'
import {setupMongo} from '../src/stores/mongo/setup.js'
import {MongoSource} from '../src/stores/mongo/source.js'
import {type MongoTarget, mongoTarget} from '../src/stores/mongo/target.js'
import {clientConfig, withDatabase} from '../src/stores/postgres/connection.js'
import {ensurePartitions, premake} from '../src/stores/postgres/partitions.js'
import {PostgresSource} from '../src/stores/postgres/source.js'
import {writeBatchesConcurrently} from '../src/stores/postgres/writer.js'
import type {RecordSource} from '../src/stores/source.js'
import {freePort} from '../src/util/process.js'
import {FERRETDB_BIN} from '../test/helpers/mongo.js'
import {fmt, monthsBack, openBenchDatabase} from './bench-db.js'
import {cpuOf, cpuPerRequest, cpuSnapshot, postgresPids, postmasterPid, runArgs, sleep, wrk} from './measure.js'

const {values, positionals} = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    records: {type: 'string', default: '100000'},
    rows: {type: 'string', default: '1000000'},
    days: {type: 'string', default: '180'},
    cap: {type: 'string', default: '300'},
    stats: {type: 'string', default: 'none'},
    queries: {type: 'string', default: 'all'},
    'ferret-backend': {type: 'string', default: 'sqlite'},
    runs: {type: 'string', default: '3'},
    duration: {type: 'string', default: '30'},
    workers: {type: 'string', default: '1'},
  },
})
const PART = positionals[0] ?? 'ship'
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const NOW = new Date()
const say = (l: string) => console.log(l)
const seconds = (t0: number) => (performance.now() - t0) / 1000
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

type Ferret = {uri: string; pid: number; stop(): Promise<void>}

/** FerretDB on a free loopback port (as test/helpers/mongo.ts starts it, with its pid for the CPU figures). */
async function startFerret(dir: string, backend: {postgresqlUrl?: string; nice?: number} = {}): Promise<Ferret> {
  const port = await freePort()
  const handler = backend.postgresqlUrl
    ? ['--handler=postgresql', `--postgresql-url=${backend.postgresqlUrl}`]
    : ['--handler=sqlite', `--sqlite-url=file:${dir}/`]
  const args = [
    ...handler,
    `--state-dir=${dir}`,
    `--listen-addr=127.0.0.1:${port}`,
    '--debug-addr=-',
    '--telemetry=disable',
    '--log-level=error',
  ]
  // at a priority from the start (nice execs it: same pid): a Go program's threads keep the nice value they were made with
  const child: ChildProcess = backend.nice
    ? spawn('nice', ['-n', String(backend.nice), FERRETDB_BIN, ...args], {stdio: ['ignore', 'ignore', 'pipe']})
    : spawn(FERRETDB_BIN, args, {stdio: ['ignore', 'ignore', 'pipe']})
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)))
  const uri = `mongodb://127.0.0.1:${port}/`
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`FerretDB exited with code ${child.exitCode}: ${stderr}`)
    const store = await connectMongo(
      {uri, dbName: 'admin', collections: {request: 'r', access: 'a', event: 'e', outbound: 'o', app: 'p'}},
      {serverSelectionTimeoutMS: 500},
    ).catch(() => undefined)
    if (store) {
      await store.close()
      break
    }
    if (Date.now() > deadline) throw new Error(`FerretDB did not answer on ${port}: ${stderr}`)
    await sleep(100)
  }
  return {
    uri,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        await new Promise((r) => child.once('exit', r))
      }
    },
  }
}

const targetFor = (uri: string, dbName: string): MongoTarget => ({
  uri,
  dbName,
  collections: {request: 'request_logs', access: 'access_logs', event: 'event_logs', outbound: 'outbound_logs', app: 'app_logs'},
})

/** The collections with the indexes `audit-logs setup` makes (what a user runs before `run --stores mongo`). */
async function setUp(target: MongoTarget): Promise<void> {
  const store = await connectMongo(target)
  try {
    await setupMongo(store, {dryRun: false, passwords: {writer: 'bench-writer', reader: 'bench-reader'}})
  } finally {
    await store.close()
  }
}

// ---------------------------------------------------------------------------------------------- ship

async function shipPart(tmp: string) {
  const N = Number(values.records)
  const journal = path.join(tmp, 'journal')
  const writer = new JournalWriter(journal, 'bench')
  let bytes = 0
  for (const r of generateRecords({rows: N, days: 1, seed: 7, now: NOW, order: 'time'})) {
    const request = JSON.stringify({log_type: 'request', ...r})
    const access = JSON.stringify({
      log_type: 'access',
      id: r.id,
      created_at: r.created_at,
      method: r.method,
      url: r.path,
      status_code: r.status_code,
      duration_ms: r.duration_ms,
      response_size: r.response_body_size,
      ip: r.ip,
      user_id: r.user_id,
      user_agent: r.user_agent,
      referer: null,
      instance: r.instance,
    })
    bytes += request.length + access.length + 2
    writer.append(request)
    writer.append(access)
  }
  writer.close()
  const lines = 2 * N
  say(
    `journal: ${fmt(N)} generated records as ${fmt(lines)} lines (request + access each, log_type first), ${fmt(bytes / 1048576)} MB; ` +
      `Shipper defaults (10,000 lines / 4 MiB a batch), as \`run\` ships`,
  )

  /** Ships the journal to `sink` from its start; `server` gives the server's CPU seconds so far. */
  const ship = async (sink: Sink, server: () => number, count: () => Promise<number>) => {
    const sizes: number[] = []
    const seen: Sink = {
      ...sink,
      write: (ls) => {
        sizes.push(ls.length)
        return sink.write(ls)
      },
    }
    const shipper = new Shipper(journal, seen, {log: (m) => console.error(`  [${sink.name}] ${m}`)})
    const cpu0 = process.cpuUsage()
    const s0 = server()
    const t0 = performance.now()
    shipper.start()
    if (!(await shipper.drain(1_800_000))) throw new Error(`${sink.name}: not shipped within 30 min`)
    const wall = seconds(t0)
    const cpu = process.cpuUsage(cpu0)
    const serverCpu = server() - s0
    await shipper.stop()
    const stored = await count()
    const us = (s: number) => ((s * 1e6) / lines).toFixed(0)
    const sorted = [...sizes].sort((a, b) => a - b)
    say(
      `${sink.name}: ${fmt(lines)} lines in ${wall.toFixed(1)} s = ${fmt(lines / wall)} records/s (${fmt(N / wall)} requests/s, each a request and an access record); ` +
        `${fmt(stored)} documents/rows stored; retried ${shipper.stats.retried}, rejected ${shipper.stats.rejected}`,
    )
    say(
      `  CPU µs per record: shipper (this process) ${us((cpu.user + cpu.system) / 1e6)} (user ${us(cpu.user / 1e6)}), server ${us(serverCpu)}; ` +
        `writes ${sizes.length}, lines per write min ${fmt(sorted[0])} median ${fmt(median(sizes))} max ${fmt(sorted.at(-1)!)}`,
    )
    return {rate: lines / wall, shipperUs: ((cpu.user + cpu.system) * 1) / lines, serverUs: (serverCpu * 1e6) / lines}
  }

  // baseline first: PostgreSQL, embedded, migrated, with the partitions of the records' days
  const {url, db, close} = await openBenchDatabase('bench_mongo_ship', {dir: path.join(tmp, 'pg')})
  let base
  try {
    await ensurePartitions(db, monthsBack(NOW, 1))
    const postmaster = postmasterPid(String((await db.query('SHOW data_directory')).rows[0].data_directory))
    const pgCpu = () => postgresPids(postmaster).reduce((n, p) => n + cpuOf(p), 0)
    base = await ship(postgresSink(url), pgCpu, async () => {
      const r = await db.query('SELECT (SELECT count(*) FROM request_logs) + (SELECT count(*) FROM access_logs) AS n')
      return Number(r.rows[0].n)
    })
  } finally {
    await close()
  }
  const ferret = await startFerret(mkdtempSync(path.join(tmp, 'ferret-')))
  try {
    const target = targetFor(ferret.uri, 'bench_ship')
    await setUp(target)
    const m = await ship(
      mongoSink(target),
      () => cpuOf(ferret.pid),
      async () => {
        const store = await connectMongo(target)
        try {
          return (await store.collection('request').countDocuments()) + (await store.collection('access').countDocuments())
        } finally {
          await store.close()
        }
      },
    )
    say(
      `ratio MongoDB (FerretDB) / PostgreSQL: records/s ${(m.rate / base.rate).toFixed(2)}, shipper CPU per record ${(m.shipperUs / base.shipperUs).toFixed(2)}, ` +
        `server CPU per record ${(m.serverUs / base.serverUs).toFixed(2)}`,
    )
  } finally {
    await ferret.stop()
  }
}

// ---------------------------------------------------------------------------------------------- read

const CASES: Array<[string, FilterInput]> = [
  ['(none)', {}],
  ['--status 5xx', {status: '5xx'}],
  ['--user 7', {user: '7'}],
  ["--path '/api/v1/*'", {path: '/api/v1/*'}],
  ['--ip 10.1.0.0/16', {ip: '10.1.0.0/16'}],
  ['--since 7d', {since: '7d'}],
  ['--since 24h', {since: '24h'}],
  ['--status 5xx --since 7d', {status: '5xx', since: '7d'}],
  ["--user 7 --path '/api/v1/*' --since 7d", {user: '7', path: '/api/v1/*', since: '7d'}],
]

/**
 * `fn` on a store of its own, abandoned after `cap` seconds: the client is closed, and then this waits until the
 * server is idle again (it may go on with the abandoned work), so the next measurement does not share its CPU.
 */
async function capped<T>(
  target: MongoTarget,
  ferretPid: number,
  cap: number,
  fn: (source: RecordSource) => Promise<T>,
): Promise<{seconds: number; value?: T; timedOut: boolean; busyAfter: number}> {
  const store: MongoStore = await connectMongo(target)
  const t0 = performance.now()
  let timer: NodeJS.Timeout | undefined
  let value: T | undefined
  try {
    value = await Promise.race([fn(new MongoSource(store)), new Promise<undefined>((r) => (timer = setTimeout(r, cap * 1000, undefined)))])
  } finally {
    clearTimeout(timer)
    await store.client.close(true).catch(() => {})
  }
  const took = seconds(t0)
  let busyAfter = 0
  if (value === undefined) {
    const t1 = performance.now()
    for (;;) {
      const c = cpuOf(ferretPid)
      await sleep(1000)
      if (cpuOf(ferretPid) - c < 0.1 || seconds(t1) > 120) break // at most 2 minutes: then it is said busy still
    }
    busyAfter = seconds(t1) - 1
  }
  return {seconds: took, value, timedOut: value === undefined, busyAfter}
}

async function readPart(tmp: string) {
  const ROWS = Number(values.rows)
  const DAYS = Number(values.days)
  const CAP = Number(values.cap)
  const backend = values['ferret-backend'] === 'postgresql' ? 'postgresql' : 'sqlite'
  const {url, db, close} = await openBenchDatabase('bench_mongo_read', {dir: path.join(tmp, 'pg')})
  let ferret: Ferret | undefined
  try {
    const periods = monthsBack(NOW, DAYS)
    await ensurePartitions(db, periods)
    const second = new pg.Client(clientConfig(url))
    await second.connect()
    let t0 = performance.now()
    await writeBatchesConcurrently([db, second], 'request', recordBatches({rows: ROWS, days: DAYS, seed: 5, now: NOW, order: 'time'}))
    await second.end()
    const pgLoad = seconds(t0)
    await db.query('VACUUM ANALYZE request_logs')
    say(
      `PostgreSQL: ${fmt(ROWS)} request rows over ${DAYS} days (seed 5, time order) loaded with the COPY writer on 2 connections in ${pgLoad.toFixed(0)} s = ${fmt(ROWS / pgLoad)} records/s`,
    )

    let postgresqlUrl: string | undefined
    if (backend === 'postgresql') {
      await db.query('CREATE DATABASE ferretdb')
      postgresqlUrl = withDatabase(url, 'ferretdb')
    }
    ferret = await startFerret(mkdtempSync(path.join(tmp, 'ferret-')), {postgresqlUrl})
    const target = targetFor(ferret.uri, 'bench_read')
    await setUp(target)
    const store = await connectMongo(target)
    const f0 = cpuOf(ferret.pid)
    t0 = performance.now()
    const loaded = await loadIntoMongo(store, {rows: ROWS, days: DAYS, seed: 5, now: NOW, order: 'time'})
    await store.close()
    say(
      `MongoDB (FerretDB 1.24.2, ${backend} backend, the indexes of \`audit-logs setup\`): the same ${fmt(ROWS)} records through the sink's writer ` +
        `(insertMany of 10,000) in ${loaded.seconds.toFixed(0)} s = ${fmt(loaded.rows / loaded.seconds)} records/s ` +
        `(FerretDB CPU ${(((cpuOf(ferret.pid) - f0) * 1e6) / ROWS).toFixed(0)} µs/record); ratio to PostgreSQL's load ${(pgLoad / loaded.seconds).toFixed(2)}`,
    )

    const postgres = new PostgresSource(db)
    say(
      `\nquery (limit 50, newest first): PostgreSQL median of 5 after a warm-up; MongoDB one cold run, then median of 3 when under 10 s; cap ${CAP} s`,
    )
    const chosen = values.queries === 'all' ? CASES : values.queries!.split(',').map((i) => CASES[Number(i)])
    for (const [label, input] of chosen) {
      const f = parseFilter(input, NOW)
      await postgres.query(f, {limit: 50})
      const times: number[] = []
      let n = 0
      for (let i = 0; i < 5; i++) {
        const t = performance.now()
        n = (await postgres.query(f, {limit: 50})).length
        times.push(performance.now() - t)
      }
      const pgMs = median(times)
      const first = await capped(target, ferret.pid, CAP, (s) => s.query(f, {limit: 50}))
      let line: string
      if (first.timedOut) line = `MongoDB > ${CAP} s (abandoned; FerretDB went on ${first.busyAfter.toFixed(0)} s after the client closed)`
      else {
        const ms = [first.seconds * 1000]
        if (first.seconds < 10) {
          ms.length = 0
          for (let i = 0; i < 3; i++) ms.push((await capped(target, ferret.pid, CAP, (s) => s.query(f, {limit: 50}))).seconds * 1000)
        }
        const same = first.value!.length === n
        line = `MongoDB ${median(ms).toFixed(1)} ms (${first.value!.length} rows${same ? '' : ' — NOT the same count'}; cold ${(first.seconds * 1000).toFixed(0)} ms); ratio ${(median(ms) / pgMs).toFixed(0)}×`
      }
      say(`  ${label}: PostgreSQL ${pgMs.toFixed(1)} ms (${n} rows); ${line}`)
    }

    const statsCases = values.stats!.split(';').map((s) => s.trim())
    say(`\nstats (day buckets, top 10): PostgreSQL median of 3 after a warm-up; MongoDB one run, cap ${CAP} s`)
    for (const spec of statsCases) {
      const input: FilterInput = spec === 'none' ? {} : Object.fromEntries(spec.split(',').map((kv) => kv.split('=') as [string, string]))
      const f = parseFilter(input, NOW)
      await postgres.stats(f, {bucket: 'day', top: 10})
      const times: number[] = []
      let total = 0
      for (let i = 0; i < 3; i++) {
        const t = performance.now()
        total = (await postgres.stats(f, {bucket: 'day', top: 10})).total
        times.push(performance.now() - t)
      }
      const c0 = cpuOf(ferret.pid)
      const m = await capped(target, ferret.pid, CAP, (s) => s.stats(f, {bucket: 'day', top: 10}))
      const ferretCpu = cpuOf(ferret.pid) - c0
      say(
        `  ${spec} (${fmt(total)} records): PostgreSQL ${median(times).toFixed(0)} ms; MongoDB ` +
          (m.timedOut
            ? `> ${CAP} s (abandoned; FerretDB used ${ferretCpu.toFixed(0)} CPU s, and went on ${m.busyAfter.toFixed(0)} s after the client closed)`
            : `${(m.seconds * 1000).toFixed(0)} ms (total ${fmt(m.value!.total)}${m.value!.total === total ? '' : ' — NOT the same'}; FerretDB CPU ${ferretCpu.toFixed(1)} s); ratio ${((m.seconds * 1000) / median(times)).toFixed(0)}×`),
      )
    }
  } finally {
    await ferret?.stop()
    await close()
  }
}

// ---------------------------------------------------------------------------------------------- capture

async function capturePart(tmp: string) {
  const RUNS = Number(values.runs)
  const WRK = ['-t1', '-c50', `-d${values.duration}s`]
  const appPort = await freePort()
  const app = spawn(process.execPath, [path.join(ROOT, 'bench/upstream.mjs')], {
    env: {...process.env, PORT: String(appPort)},
    stdio: 'ignore',
  })
  const nice = (await resolveConfig({cwd: tmp, env: {AUDIT_LOGS_BACKGROUND_NICE: process.env.AUDIT_LOGS_BACKGROUND_NICE}})).backgroundNice
  const {url: dbUrl, db, close} = await openBenchDatabase('bench_mongo_capture', {dir: path.join(tmp, 'pg'), nice})
  await premake(db, {interval: 'month', ahead: 1})
  const postmaster = postmasterPid(String((await db.query('SHOW data_directory')).rows[0].data_directory))
  // two FerretDB servers, one at the embedded PostgreSQL's background priority (as a local store `run` starts), one
  // at the normal priority (a server someone else runs on the same machine); the idle one costs nothing
  const ferrets = {
    both: await startFerret(mkdtempSync(path.join(tmp, 'ferret-')), {nice}),
    'both-nice0': await startFerret(mkdtempSync(path.join(tmp, 'ferret-'))),
  }
  const SETUPS = ['postgres', 'both', 'both-nice0'] as const
  const config = await resolveConfig({cwd: tmp, env: {}})
  const stores = {
    both: await connectMongo(mongoTarget({...config, mongoUri: ferrets.both.uri, mongoDbName: 'bench_capture'})!),
    'both-nice0': await connectMongo(mongoTarget({...config, mongoUri: ferrets['both-nice0'].uri, mongoDbName: 'bench_capture'})!),
  }
  say(
    `wrk ${WRK.join(' ')} GET /small (41 B JSON), run --workers ${values.workers}, ${os.cpus().length} cores, node ${process.version}; ${RUNS} runs each, alternating; ` +
      `embedded PostgreSQL at nice ${nice}; set-ups: postgres (--stores postgres), both (--stores both, FerretDB at nice ${nice}), both-nice0 (--stores both, FerretDB at nice 0)`,
  )
  const results: Record<string, number[]> = {postgres: [], both: [], 'both-nice0': []}
  try {
    for (let run = 0; run < RUNS; run++)
      for (const setup of SETUPS) {
        const ferret = ferrets[setup === 'postgres' ? 'both' : setup]
        const mongo = stores[setup === 'postgres' ? 'both' : setup]
        const target = mongo.target
        const both = setup !== 'postgres'
        await db.query('TRUNCATE request_logs, access_logs')
        await mongo.db.dropDatabase()
        await setUp(target)
        const port = await freePort()
        const adminPort = await freePort()
        const dir = mkdtempSync(path.join(tmp, 'run-'))
        const child = spawn(
          path.join(ROOT, 'bin/run.js'),
          [
            ...runArgs({
              upstream: `http://127.0.0.1:${appPort}`,
              port,
              adminPort,
              workers: values.workers!,
              logDir: path.join(dir, 'logs'),
            }),
            '--stores',
            both ? 'both' : 'postgres',
          ],
          {
            env: {
              ...process.env,
              AUDIT_LOGS_DATABASE_URL: dbUrl,
              AUDIT_LOGS_DATA_DIR: path.join(dir, 'data'),
              AUDIT_LOGS_MONGO_URI: ferret.uri,
              AUDIT_LOGS_MONGO_DB_NAME: 'bench_capture',
              OCLIF_SKIP_NEW_VERSION_CHECK: '1',
            },
            cwd: dir,
            stdio: ['ignore', 'ignore', 'pipe'],
          },
        )
        let err = ''
        child.stderr!.on('data', (c) => (err = (err + c).slice(-20_000)))
        while (!err.includes('listening on')) {
          if (child.exitCode !== null) throw new Error(err)
          await sleep(50)
        }
        const url = `http://127.0.0.1:${port}/small`
        const metric = async (name: string) =>
          Number(new RegExp(`^${name} (\\d+)`, 'm').exec(await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text())?.[1] ?? 0)
        const pgRows = async () => Number((await db.query('SELECT count(*) AS n FROM request_logs')).rows[0].n)
        const mongoDocs = () => mongo.collection('request').estimatedDocumentCount()
        await wrk(['-t1', '-c50', '-d5s'], url) // warm-up, not reported
        // both sinks caught up before the measured load
        const settle = async (limitS: number) => {
          await sleep(1000) // workers report their counts every 500 ms
          const sent = await metric('audit_logs_requests_total')
          const t = Date.now()
          while (((await pgRows()) < sent || (both && (await mongoDocs()) < sent)) && Date.now() - t < limitS * 1000) await sleep(250)
          return {sent, seconds: (Date.now() - t) / 1000 + 1}
        }
        await settle(300)
        const before = await metric('audit_logs_requests_total')
        const m0 = await mongoDocs()
        const cpu0 = {...cpuSnapshot({app: app.pid!, run: child.pid, postmaster}), ferret: cpuOf(ferret.pid)}
        const r = await wrk(WRK, url)
        const cpu1 = {...cpuSnapshot({app: app.pid!, run: child.pid, postmaster}), ferret: cpuOf(ferret.pid)}
        const atEnd = {pg: (await pgRows()) - before, mongo: (await mongoDocs()) - m0}
        const done = await settle(600)
        const proxied = done.sent - before
        const after = {pg: (await pgRows()) - before, mongo: (await mongoDocs()) - m0}
        results[setup].push(r.rps)
        say(
          `run ${run + 1}, ${setup}: ${fmt(r.rps)} req/s proxied (p50 ${r.p50}, p99 ${r.p99}, ${r.errors} errors), ${fmt(proxied)} requests; ` +
            `at the load's end PostgreSQL held ${fmt(atEnd.pg)}` +
            (both ? `, MongoDB ${fmt(atEnd.mongo)} (${((100 * atEnd.mongo) / proxied).toFixed(0)}%)` : '') +
            `; ${done.seconds.toFixed(1)} s later PostgreSQL ${fmt(after.pg)}` +
            (both ? `, MongoDB ${fmt(after.mongo)}` : '') +
            `; FerretDB CPU ${(((cpu1.ferret - cpu0.ferret) * 1e6) / r.requests).toFixed(0)} µs/request during the load`,
        )
        say(`  during the load: ${cpuPerRequest(cpu0, cpu1, r.requests)}`)
        child.kill('SIGTERM')
        await new Promise((res) => child.once('exit', res))
      }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    const spread = (xs: number[]) => `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`
    for (const setup of SETUPS)
      say(
        `proxied GET req/s, ${setup}: mean ${fmt(mean(results[setup]))} (runs ${spread(results[setup])}); ratio to postgres ${(mean(results[setup]) / mean(results.postgres)).toFixed(3)}`,
      )
  } finally {
    for (const s of Object.values(stores)) await s.close()
    for (const f of Object.values(ferrets)) await f.stop()
    app.kill()
    await close()
  }
}

async function main() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-bench-mongo-'))
  chmodSync(tmp, 0o755) // the embedded server's OS user must enter it
  say(`${new Date().toISOString()} bench/mongo.ts ${PART}`)
  try {
    if (PART === 'ship') await shipPart(tmp)
    else if (PART === 'read') await readPart(tmp)
    else if (PART === 'capture') await capturePart(tmp)
    else throw new Error(`unknown part ${PART}: ship, read or capture`)
  } finally {
    rmSync(tmp, {recursive: true, force: true})
  }
}

await main()
