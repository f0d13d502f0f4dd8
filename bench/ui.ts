// Benchmark of the web viewer (issue 20) on the reading data set of issue 4 (request rows over 180 days,
// monthly partitions): the server time of the list page for typical filters and of the dashboard's data,
// each against its own SQL run directly in the same run (the ratio is the viewer's cost over the query's),
// the SQL's plans (EXPLAIN ANALYZE), and each page's weight in bytes (HTML and what it loads).
// Run: node bench/run.js ui [--rows 10000000] [--days 180]
import {type ChildProcess, spawn} from 'node:child_process'
import {chmodSync, mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import type pg from 'pg'
import {type FilterInput, parseFilter} from '../src/filters/parse.js'
import {queryRecords} from '../src/stores/postgres/reader.js'
import {roleNames} from '../src/stores/postgres/setup.js'
import {grants} from '../src/stores/postgres/sql/setup.js'
import {selectRecords} from '../src/stores/postgres/sql/reader.js'
import {statsFailingPaths, statsHistogram, statsSlowPaths, statsTop, statsTotals} from '../src/stores/postgres/sql/stats.js'
import {computeStats} from '../src/stores/postgres/stats.js'
import {columnsOf, cursorOf} from '../src/stores/source.js'
import {hashPassword} from '../src/ui/auth.js'
import {freePort} from '../src/util/process.js'
import {fmt, loadRequestRows, openBenchDatabase} from './bench-db.js'

const {values} = parseArgs({
  args: process.argv.slice(2),
  options: {rows: {type: 'string', default: '10000000'}, days: {type: 'string', default: '180'}, runs: {type: 'string', default: '9'}},
})
const ROWS = Number(values.rows)
const DAYS = Number(values.days)
const RUNS = Number(values.runs)
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const NOW = new Date()
const say = (l: string) => console.log(l)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** The median of RUNS timings after one warm-up. */
async function timed<T>(fn: () => Promise<T>): Promise<{ms: number; value: T}> {
  let value = await fn()
  const times: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now()
    value = await fn()
    times.push(performance.now() - t)
  }
  return {ms: median(times), value}
}

async function startViewer(env: NodeJS.ProcessEnv): Promise<{url: string; child: ChildProcess}> {
  const port = await freePort()
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/run.js'), 'ui', '--bind', `127.0.0.1:${port}`], {env, cwd: os.tmpdir()})
  let out = ''
  child.stdout!.on('data', (c: Buffer) => (out += c))
  child.stderr!.on('data', (c: Buffer) => (out += c))
  const end = Date.now() + 60_000
  while (!/serving .* on http/.test(out)) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`the viewer did not start:\n${out}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return {url: `http://127.0.0.1:${port}`, child}
}

async function login(url: string, user: string, password: string): Promise<string> {
  const form = await fetch(`${url}/login`)
  const token = /name="csrf" value="([^"]+)"/.exec(await form.text())![1]
  const res = await fetch(`${url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: {'content-type': 'application/x-www-form-urlencoded', cookie: form.headers.getSetCookie()[0].split(';')[0]},
    body: new URLSearchParams({csrf: token, username: user, password}),
  })
  return res.headers.getSetCookie()[0].split(';')[0]
}

/** One page, read to its end: the time a user waits for the server (loopback), and its size. */
async function fetchPage(url: string, cookie: string): Promise<{bytes: number; status: number; text: string}> {
  const res = await fetch(url, {headers: {cookie}, redirect: 'manual'})
  const text = await res.text()
  return {bytes: Buffer.byteLength(text), status: res.status, text}
}

async function plan(db: pg.Client, q: {text: string; values?: unknown[]}): Promise<string> {
  const {rows} = await db.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${q.text}`, q.values as unknown[])
  return rows.map((r) => r['QUERY PLAN']).join('\n')
}

async function main() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-bench-ui-'))
  chmodSync(tmp, 0o755)
  const name = 'bench_ui'
  const {url, db, close} = await openBenchDatabase(name, {dir: path.join(tmp, 'pg')})
  let viewer: ChildProcess | undefined
  try {
    const loaded = await loadRequestRows(db, url, {rows: ROWS, days: DAYS, now: NOW})
    say(`loaded ${fmt(ROWS)} request rows over ${DAYS} days in ${loaded.toFixed(0)} s (then VACUUM ANALYZE)`)
    // the roles setup-db makes (the viewer reads as <db>_reader); NOLOGIN: the bench's superuser acts as the reader
    const roles = roleNames(name)
    for (const role of Object.values(roles)) await db.query(`CREATE ROLE "${role}" NOLOGIN`).catch(() => {})
    for (const q of grants(name, roles, ['request_logs', 'access_logs', 'event_logs', 'outbound_logs', 'app_logs'])) await db.query(q)

    const password = 'bench-password'
    const serverUrl = url.replace(/\/bench_ui$/, '/postgres')
    const started = await startViewer({
      ...process.env,
      OCLIF_SKIP_NEW_VERSION_CHECK: '1',
      AUDIT_LOGS_DATABASE_URL: serverUrl,
      AUDIT_LOGS_DB_NAME: name,
      AUDIT_LOGS_UI_USERS: `bench:${await hashPassword(password)}`,
      AUDIT_LOGS_LOG_DIR: path.join(tmp, 'logs'),
      AUDIT_LOGS_DATA_DIR: path.join(tmp, 'data'),
    })
    viewer = started.child
    const ui = started.url
    const cookie = await login(ui, 'bench', password)

    // the list: each filter's page against its own SQL (selectRecords, limit 51: a page and the "older" probe)
    const lists: Array<[string, FilterInput]> = [
      ['(no filter: the newest 50)', {}],
      ["--status '>=400' --since 24h", {status: '>=400', since: '24h'}],
      ["--path '/api/v1/*'", {path: '/api/v1/*'}],
      ['--user 7 --since 7d', {user: '7', since: '7d'}],
      ['--ip 10.1.0.0/16 --since 24h', {ip: '10.1.0.0/16', since: '24h'}],
    ]
    say(`\nlist page (50 rows, newest first), median of ${RUNS} after a warm-up: viewer (HTTP, page rendered) vs its SQL alone`)
    say('| filter | page | SQL alone | ratio | page bytes |')
    say('|---|---|---|---|---|')
    const plans: string[] = []
    for (const [label, input] of lists) {
      const f = parseFilter({logType: 'request', ...input}, NOW)
      const qs = new URLSearchParams(input as Record<string, string>).toString()
      const page = await timed(() => fetchPage(`${ui}/logs/request${qs ? `?${qs}` : ''}`, cookie))
      if (page.value.status !== 200) throw new Error(`${label}: HTTP ${page.value.status}`)
      const sql = await timed(() => queryRecords(db, f, {limit: 51}))
      say(
        `| \`${label}\` | ${page.ms.toFixed(1)} ms | ${sql.ms.toFixed(1)} ms | ${(page.ms / sql.ms).toFixed(1)} | ${fmt(page.value.bytes)} |`,
      )
      plans.push(`-- list ${label}\n${await plan(db, selectRecords(f, columnsOf('request'), 51))}`)
    }
    // a deep page: the 20th page of the first filter, through the keyset cursor (no OFFSET)
    {
      const f = parseFilter({status: '>=400', since: '24h'}, NOW)
      const rows = await queryRecords(db, f, {limit: 19 * 50})
      const cursor = cursorOf(rows.at(-1)!)
      const href = `${ui}/logs/request?status=${encodeURIComponent('>=400')}&since=24h&after=${encodeURIComponent(`${cursor.created_at}_${cursor.id}`)}`
      const page = await timed(() => fetchPage(href, cookie))
      const sql = await timed(() => queryRecords(db, f, {limit: 51, after: cursor}))
      say(
        `| \`--status '>=400' --since 24h\`, page 20 (keyset) | ${page.ms.toFixed(1)} ms | ${sql.ms.toFixed(1)} ms | ${(page.ms / sql.ms).toFixed(1)} | ${fmt(page.value.bytes)} |`,
      )
      plans.push(`-- list page 20 (keyset)\n${await plan(db, selectRecords(f, columnsOf('request'), 51, 'newest', cursor))}`)
    }

    // the dashboard's data (/api/stats: what the page's charts and tables draw) against computeStats in-process
    const dashboards: Array<[string, FilterInput, 'minute' | 'hour' | 'day']> = [
      ['--since 1h', {since: '1h'}, 'minute'],
      ['--since 24h', {since: '24h'}, 'hour'],
      ['--since 7d', {since: '7d'}, 'hour'],
      ["--since 7d --path '/api/**'", {since: '7d', path: '/api/**'}, 'hour'],
    ]
    say(`\ndashboard data (/api/stats: totals, percentiles, histogram, 5 top lists), median of ${RUNS}: viewer vs computeStats alone`)
    say('| range | viewer | SQL alone | ratio | records in range | JSON bytes |')
    say('|---|---|---|---|---|---|')
    for (const [label, input, bucket] of dashboards) {
      const f = parseFilter({logType: 'request', ...input}, NOW)
      const qs = new URLSearchParams({type: 'request', ...(input as Record<string, string>)}).toString()
      const page = await timed(() => fetchPage(`${ui}/api/stats?${qs}`, cookie))
      const body = JSON.parse(page.value.text) as {bucket: string; stats: {total: number}}
      if (body.bucket !== bucket) throw new Error(`${label}: the viewer chose ${body.bucket}, the baseline ${bucket}`)
      const sql = await timed(() => computeStats(db, f, {bucket, top: 10}))
      say(
        `| \`${label}\` | ${page.ms.toFixed(0)} ms | ${sql.ms.toFixed(0)} ms | ${(page.ms / sql.ms).toFixed(2)} | ${fmt(body.stats.total)} | ${fmt(page.value.bytes)} |`,
      )
      if (label === '--since 24h') {
        for (const [what, q] of [
          ['totals and percentiles', statsTotals(f)],
          ['histogram', statsHistogram(f, bucket)],
          ['top paths', statsTop(f, 'path', 10)],
          ['top users', statsTop(f, 'user', 10)],
          ['top addresses', statsTop(f, 'ip', 10)],
          ['slowest endpoints', statsSlowPaths(f, 10)],
          ['most failing endpoints', statsFailingPaths(f, 10)],
        ] as const)
          plans.push(`-- dashboard ${label}: ${what}\n${await plan(db, q)}`)
      }
    }

    // page weight: each page's HTML and what it loads
    const assets: Record<string, number> = {}
    for (const a of ['/static/ui.css', '/static/ui.js', '/static/uplot.css', '/static/uplot.js'])
      assets[a] = (await fetchPage(`${ui}${a}`, cookie)).bytes
    const someId = String((await queryRecords(db, parseFilter({}, NOW), {limit: 1}))[0].id)
    const pages: Array<[string, string, string[]]> = [
      ['login', '/login', ['/static/ui.css', '/static/ui.js']],
      ['list (50 rows)', '/logs/request', ['/static/ui.css', '/static/ui.js']],
      ['record detail', `/records/${someId}`, ['/static/ui.css', '/static/ui.js']],
      [
        'dashboard (24 h)',
        '/dashboard?type=request&since=24h',
        ['/static/ui.css', '/static/ui.js', '/static/uplot.css', '/static/uplot.js'],
      ],
      ['dashboard data (24 h)', '/api/stats?type=request&since=24h', []],
      ['live tail', '/tail', ['/static/ui.css', '/static/ui.js']],
    ]
    say('\npage weight (bytes, uncompressed; the static files are cached for an hour)')
    say('| page | HTML (or JSON) | with what it loads |')
    say('|---|---|---|')
    for (const [label, href, loads] of pages) {
      const html = (await fetchPage(`${ui}${href}`, label === 'login' ? '' : cookie)).bytes
      say(`| ${label} | ${fmt(html)} | ${fmt(html + loads.reduce((n, a) => n + assets[a], 0))} |`)
    }
    say(
      `static: ${Object.entries(assets)
        .map(([a, n]) => `${a} ${fmt(n)}`)
        .join(', ')}`,
    )
    say('\nplans (EXPLAIN ANALYZE, BUFFERS):\n')
    say(plans.join('\n\n'))
  } finally {
    viewer?.kill('SIGTERM')
    await close()
    rmSync(tmp, {recursive: true, force: true})
  }
}

await main()
