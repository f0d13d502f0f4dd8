// Benchmark of application events (issue 19), on 127.0.0.1.
//  1. Ingest: --events events in batches of 100 (the Django app's batch), --clients at once, through
//     POST /_audit/events of `run` (files + PostgreSQL): the rate acknowledged (each 2xx is durable: synced
//     to the journal) and the end-to-end rate (every event in PostgreSQL and in events.jsonl). Baseline, in
//     the same run and on the same database: a naive endpoint that parses each batch and inserts it with one
//     INSERT … SELECT FROM json_populate_recordset before answering (no token, validation, masking, files
//     or journal).
//  2. The proxied GET rate of `run` (wrk) with no events, and while events flow at --event-rate a second
//     (batches of 100 on a timer), with the events' end-to-end count.
// Run: node bench/run.js events [--events 200000] [--clients 8] [--duration 10] [--event-rate 1000]
import {spawn} from 'node:child_process'
import {chmodSync, mkdtempSync, rmSync} from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import pg from 'pg'
import {freePort} from '../src/util/process.js'
import {premake} from '../src/stores/postgres/partitions.js'
import {clientConfig} from '../src/stores/postgres/connection.js'
import {fmt, openBenchDatabase} from './bench-db.js'
import {runArgs, sleep, wrk} from './measure.js'

const {values} = parseArgs({
  args: process.argv.slice(2),
  options: {
    events: {type: 'string', default: '200000'},
    clients: {type: 'string', default: '8'},
    duration: {type: 'string', default: '10'},
    'event-rate': {type: 'string', default: '1000'},
  },
})
const EVENTS = Number(values.events)
const BATCH = 100
const TOKEN = 'bench-token-0123456789abcdef'
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const tmp = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-bench-events-'))
chmodSync(tmp, 0o755)

/** One batch of events as a Django app sends them: model changes with before/after, logins, an export. */
function batchBody(n: number): string {
  const events = []
  for (let i = 0; i < BATCH; i++) {
    const k = n * BATCH + i
    events.push(
      k % 10 === 0
        ? {action: 'LOGIN_FAILED', actor: {name: `user${k % 97}`}, ip: `10.0.${k % 200}.${k % 250}`, request_id: `req-${k}`}
        : {
            action: 'UPDATE',
            actor: {id: String(k % 500), name: `user${k % 500}`},
            target: {type: 'shop.Order', id: String(k)},
            changes: {status: {before: 'new', after: 'paid'}, total: {before: k, after: k + 1}},
            request_id: `req-${k}`,
            ip: '127.0.0.1',
          },
    )
  }
  return JSON.stringify(events)
}

/** Sends `batches` bodies from `clients` loops over keep-alive connections; resolves when every batch has its 2xx. */
async function sendAll(url: string, bodies: string[], clients: number, headers: Record<string, string>): Promise<number> {
  const agent = new http.Agent({keepAlive: true, maxSockets: clients})
  let next = 0
  let failed = 0
  const post = (body: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(url, {method: 'POST', agent, headers: {'content-type': 'application/json', ...headers}}, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode!))
      })
      req.on('error', reject)
      req.end(body)
    })
  await Promise.all(
    Array.from({length: clients}, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]
        for (let attempt = 0; ; attempt++) {
          const status = await post(body).catch(() => 0)
          if (status >= 200 && status < 300) break
          failed++
          if (attempt > 20) throw new Error(`a batch was refused ${attempt} times (last status ${status})`)
          await sleep(100)
        }
      }
    }),
  )
  agent.destroy()
  return failed
}

/** The naive baseline: parse, one INSERT of the batch, answer. */
function naiveEndpoint(dbUrl: string): Promise<{url: string; close(): Promise<void>}> {
  const pool = new pg.Pool({...clientConfig(dbUrl), max: 2})
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      const rows = (JSON.parse(Buffer.concat(chunks).toString()) as Array<Record<string, any>>).map((e) => ({
        id: crypto.randomUUID(),
        created_at: new Date().toISOString(),
        action: e.action,
        actor_id: e.actor?.id ?? null,
        actor_name: e.actor?.name ?? null,
        target_type: e.target?.type ?? null,
        target_id: e.target?.id ?? null,
        changes: e.changes ?? null,
        request_id: e.request_id ?? null,
        ip: e.ip ?? null,
      }))
      try {
        await pool.query('INSERT INTO event_logs SELECT * FROM json_populate_recordset(NULL::event_logs, $1::json)', [JSON.stringify(rows)])
        res.writeHead(200).end('{}')
      } catch (error) {
        res.writeHead(500).end(String(error))
      }
    })
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as {port: number}).port}/`,
        close: async () => {
          server.close()
          await pool.end()
        },
      }),
    ),
  )
}

async function startRun(dbUrl: string, appUrl: string) {
  const port = await freePort()
  const adminPort = await freePort()
  const dir = mkdtempSync(path.join(tmp, 'run-'))
  const logDir = path.join(dir, 'logs')
  const child = spawn(path.join(ROOT, 'bin/run.js'), runArgs({upstream: appUrl, port, adminPort, workers: '1', logDir}), {
    env: {
      ...process.env,
      AUDIT_LOGS_DATABASE_URL: dbUrl,
      AUDIT_LOGS_DATA_DIR: path.join(dir, 'data'),
      AUDIT_LOGS_EVENTS_TOKEN: TOKEN,
      AUDIT_LOGS_EVENTS_RATE_PER_CLIENT: '10000000',
      OCLIF_SKIP_NEW_VERSION_CHECK: '1',
    },
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  child.stderr!.on('data', (c) => (err += c))
  while (!err.includes('listening on')) {
    if (child.exitCode !== null) throw new Error(err)
    await sleep(50)
  }
  return {
    url: `http://127.0.0.1:${port}`,
    events: `http://127.0.0.1:${adminPort}/_audit/events`,
    /** Whether the files sink has everything the journal holds (events.jsonl rotates: its lines are not all in one file). */
    filesCaughtUp: async () => {
      const health = (await (await fetch(`http://127.0.0.1:${adminPort}/health`)).json()) as {sinks: Record<string, {lagBytes: number}>}
      return health.sinks.files?.lagBytes === 0
    },
    async stop() {
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
    },
  }
}

async function main() {
  const appPort = await freePort()
  const app = spawn(process.execPath, [path.join(ROOT, 'bench/upstream.mjs')], {
    env: {...process.env, PORT: String(appPort)},
    stdio: 'ignore',
  })
  const {url: dbUrl, db, close} = await openBenchDatabase('bench_events', {dir: path.join(tmp, 'pg')})
  await premake(db, {interval: 'month', ahead: 1})
  const events = async () => Number((await db.query('SELECT count(*) AS n FROM event_logs')).rows[0].n)
  const bodies = Array.from({length: Math.ceil(EVENTS / BATCH)}, (_, n) => batchBody(n))
  const total = bodies.length * BATCH
  const clients = Number(values.clients)
  console.log(`${os.cpus().length} cores, node ${process.version}; ${fmt(total)} events in batches of ${BATCH}, ${clients} clients`)
  const run = await startRun(dbUrl, `http://127.0.0.1:${appPort}`)
  try {
    // 1. ingest
    await db.query('TRUNCATE event_logs')
    const naive = await naiveEndpoint(dbUrl)
    let t0 = performance.now()
    await sendAll(naive.url, bodies, clients, {})
    const naiveS = (performance.now() - t0) / 1000
    await naive.close()
    if ((await events()) !== total) throw new Error(`the baseline stored ${await events()} of ${total}`)
    await db.query('TRUNCATE event_logs')

    t0 = performance.now()
    const retried = await sendAll(run.events, bodies, clients, {authorization: `Bearer ${TOKEN}`})
    const ackS = (performance.now() - t0) / 1000
    while ((await events()) < total || !(await run.filesCaughtUp())) await sleep(50)
    const e2eS = (performance.now() - t0) / 1000
    if ((await events()) !== total) throw new Error(`run stored ${await events()} of ${total}`)
    console.log(
      `ingest, naive INSERT per batch: ${fmt(total / naiveS)} events/s (${naiveS.toFixed(1)} s)\n` +
        `ingest, run: ${fmt(total / ackS)} events/s acknowledged (${ackS.toFixed(1)} s, ${retried} batches retried), ` +
        `${fmt(total / e2eS)} events/s end to end in PostgreSQL and events.jsonl (${e2eS.toFixed(1)} s): ` +
        `${(naiveS / e2eS).toFixed(2)}× the baseline end to end, ${(naiveS / ackS).toFixed(2)}× acknowledged`,
    )

    // 2. proxied GETs, without and with events at --event-rate a second
    const WRK = ['-t1', '-c50', `-d${values.duration}s`]
    await wrk(['-t1', '-c50', '-d3s'], `${run.url}/small`) // warm-up
    const quiet = await wrk(WRK, `${run.url}/small`)
    await db.query('TRUNCATE event_logs')
    const perSecond = Number(values['event-rate'])
    let sent = 0
    const agent = new http.Agent({keepAlive: true})
    const timer = setInterval(
      () => {
        const body = bodies[(sent / BATCH) % bodies.length]
        sent += BATCH
        const req = http.request(run.events, {
          method: 'POST',
          agent,
          headers: {'content-type': 'application/json', authorization: `Bearer ${TOKEN}`},
        })
        req.on('response', (res) => res.resume())
        req.on('error', () => {})
        req.end(body)
      },
      (1000 * BATCH) / perSecond,
    )
    const busy = await wrk(WRK, `${run.url}/small`)
    clearInterval(timer)
    const tEnd = performance.now()
    while ((await events()) < sent) await sleep(50)
    console.log(
      `proxied GET /small (wrk ${WRK.join(' ')}): ${fmt(quiet.rps)} req/s without events, ${fmt(busy.rps)} req/s with ` +
        `${fmt(perSecond)} events/s (${(busy.rps / quiet.rps).toFixed(2)}×); ${fmt(sent)} events sent, all in PostgreSQL ` +
        `${((performance.now() - tEnd) / 1000).toFixed(1)} s after the load; p99 ${quiet.p99} → ${busy.p99}`,
    )
    agent.destroy()
  } finally {
    await run.stop()
    app.kill()
    await close()
    rmSync(tmp, {recursive: true, force: true})
  }
}

await main()
