// Benchmark for reading (issue 4), on generated request rows over 180 days (monthly partitions):
//  - query latency of five typical filters (median of 5 runs after a warm-up), and whether partitions are pruned;
//  - export throughput (rows/s) and peak RSS for 1,000,000 rows to NDJSON and to CSV (the CLI, as a user runs it),
//    against `psql \copy` of the same rows to CSV in the same run (the ceiling).
// Run: node bench/run.js reading [--rows 10000000] [--export-rows 1000000]
import {spawn} from 'node:child_process'
import {chmodSync, mkdtempSync, readFileSync, rmSync, statSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import {parseFilter} from '../src/filters/parse.js'
import {toSql} from '../src/filters/sql.js'
import {queryRecords} from '../src/stores/postgres/reader.js'
import {fmt, loadRequestRows, monthsBack, openBenchDatabase} from './bench-db.js'

const {values} = parseArgs({
  args: process.argv.slice(2),
  options: {
    rows: {type: 'string', default: '10000000'},
    days: {type: 'string', default: '180'},
    'export-rows': {type: 'string', default: '1000000'},
  },
})
const ROWS = Number(values.rows)
const DAYS = Number(values.days)
const EXPORT_ROWS = Number(values['export-rows'])
if (!(EXPORT_ROWS >= 1 && EXPORT_ROWS <= ROWS)) {
  console.error(
    `--export-rows ${values['export-rows']}: the export takes the newest rows of those loaded; give a number ` +
      `from 1 to --rows (${values.rows}), e.g. --rows ${values.rows} --export-rows ${Math.max(1, Math.floor(ROWS / 10))}`,
  )
  process.exit(2)
}
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const NOW = new Date()
const say = (l: string) => console.log(l)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** Wall time and peak RSS (sampled every 50 ms) of a command. */
async function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{seconds: number; peakMb: number}> {
  const t0 = performance.now()
  const child = spawn(cmd, args, {env, cwd: os.tmpdir(), stdio: ['ignore', 'ignore', 'inherit']}) // not the user's directory: its config (a dbName) would send the command elsewhere
  let peak = 0
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024)
    } catch {
      // the process ended between two samples
    }
  }, 50)
  const code = await new Promise<number>((r) => child.on('exit', (c) => r(c ?? 1)))
  clearInterval(timer)
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}`)
  return {seconds: (performance.now() - t0) / 1000, peakMb: peak}
}

async function main() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-bench-reading-'))
  chmodSync(tmp, 0o755)
  const {url, db, close} = await openBenchDatabase('bench_reading', {dir: path.join(tmp, 'pg')})
  try {
    const periods = monthsBack(NOW, DAYS)
    const loaded = await loadRequestRows(db, url, {rows: ROWS, days: DAYS, now: NOW})
    say(`loaded ${fmt(ROWS)} request rows over ${DAYS} days (${periods.length} monthly partitions) in ${loaded.toFixed(0)} s`)
    const size = Number((await db.query(`SELECT sum(pg_total_relation_size(relid)) AS b FROM pg_partition_tree('request_logs')`)).rows[0].b)
    say(`table size with indexes: ${fmt(size / 1048576)} MB`)

    const cases: Array<[string, Record<string, string>]> = [
      ["--status '>=400' --since 24h", {status: '>=400', since: '24h'}],
      ['--user 7 --since 7d', {user: '7', since: '7d'}],
      ["--path '/api/v1/*'", {path: '/api/v1/*'}],
      ['--ip 10.1.0.0/16', {ip: '10.1.0.0/16'}],
      ['--search \'"ok":false\' --since 24h', {search: '"ok":false', since: '24h'}],
    ]
    say('\nquery latency (limit 50, newest first; median of 5 runs after a warm-up):')
    for (const [label, input] of cases) {
      const f = parseFilter(input, NOW)
      await queryRecords(db, f, {limit: 50})
      const times: number[] = []
      let n = 0
      for (let i = 0; i < 5; i++) {
        const t = performance.now()
        n = (await queryRecords(db, f, {limit: 50})).length
        times.push(performance.now() - t)
      }
      const where = toSql(f)
      const plan = (
        await db.query(`EXPLAIN SELECT id FROM request_logs WHERE ${where.text} ORDER BY created_at DESC LIMIT 50`, where.values)
      ).rows
        .map((r) => r['QUERY PLAN'])
        .join('\n')
      const scanned = new Set(plan.match(/request_logs_p\d{8}|request_logs_default/g) ?? []).size
      say(`  ${label}: ${median(times).toFixed(1)} ms (${n} rows; plan touches ${scanned} of ${periods.length + 1} partitions)`)
    }

    // export: the newest EXPORT_ROWS rows
    const {
      rows: [edge],
    } = await db.query('SELECT created_at FROM request_logs ORDER BY created_at DESC OFFSET $1 LIMIT 1', [EXPORT_ROWS - 1])
    const since = new Date(edge.created_at).toISOString()
    const env = {...process.env, AUDIT_LOGS_DATABASE_URL: url, OCLIF_SKIP_NEW_VERSION_CHECK: '1'}
    say(`\nexport of the newest ${fmt(EXPORT_ROWS)} rows (--since ${since}):`)
    const results: Record<string, number> = {}
    for (const format of ['ndjson', 'csv']) {
      const out = path.join(tmp, `export.${format}`)
      // bin/run.js itself, as npx runs it
      const m = await measure(path.join(ROOT, 'bin/run.js'), ['export', '--since', since, '--format', format, '--out', out], env)
      results[format] = EXPORT_ROWS / m.seconds
      say(
        `  audit-logs export --format ${format}: ${m.seconds.toFixed(1)} s = ${fmt(EXPORT_ROWS / m.seconds)} rows/s, peak RSS ${m.peakMb.toFixed(0)} MB, ${fmt(statSync(out).size / 1048576)} MB`,
      )
      rmSync(out)
    }
    const out = path.join(tmp, 'psql.csv')
    const m = await measure(
      'psql',
      [
        url,
        '-q',
        '-c',
        `\\copy (SELECT * FROM request_logs WHERE created_at >= '${since}' ORDER BY created_at DESC) TO '${out}' WITH (FORMAT csv, HEADER)`,
      ],
      process.env,
    )
    say(
      `  psql \\copy to CSV (ceiling): ${m.seconds.toFixed(1)} s = ${fmt(EXPORT_ROWS / m.seconds)} rows/s, peak RSS ${m.peakMb.toFixed(0)} MB`,
    )
    say(
      `  ratio to psql \\copy: ndjson ${(results.ndjson / (EXPORT_ROWS / m.seconds)).toFixed(2)}, csv ${(results.csv / (EXPORT_ROWS / m.seconds)).toFixed(2)}`,
    )
  } finally {
    await close()
    rmSync(tmp, {recursive: true, force: true})
  }
}

await main()
