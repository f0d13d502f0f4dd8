// Measurement helpers shared by the capture benchmarks (capture.ts, sustained.ts): wrk, an open-loop
// fixed-rate client, the memory of a process tree and the CPU time of each part of a set-up.
import {execFile, execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import http from 'node:http'
import {performance} from 'node:perf_hooks'
import {promisify} from 'node:util'

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The arguments of `audit-logs run` in front of `upstream`, as every benchmark starts it. */
export const runArgs = (o: {upstream: string; port: number; adminPort: number; workers: string; logDir: string}) => [
  'run',
  '--upstream',
  o.upstream,
  '--bind',
  `127.0.0.1:${o.port}`,
  '--admin-bind',
  `127.0.0.1:${o.adminPort}`,
  '--workers',
  o.workers,
  '--log-dir',
  o.logDir,
]
export const execFileAsync = promisify(execFile)

export type WrkResult = {rps: number; p50: string; p99: string; requests: number; seconds: number; errors: number}

/** wrk prints durations with a unit of its choosing: 10.01s, but 1.00m for a minute. */
const UNIT_SECONDS: Record<string, number> = {us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600}

/**
 * One wrk load: `settings` are wrk's own options (-t, -c, -d), `postLua` a script that makes the
 * requests POSTs. `onStart` receives the wrk process, so a caller can kill it on the way out.
 */
export async function wrk(
  settings: string[],
  url: string,
  postLua?: string,
  onStart?: (child: ReturnType<typeof execFile>) => void,
): Promise<WrkResult> {
  const args = [...settings, '--latency', ...(postLua ? ['-s', postLua] : []), url]
  const running = execFileAsync('wrk', args)
  onStart?.(running.child)
  const out = (await running).stdout
  const num = (re: RegExp) => re.exec(out)?.[1] ?? '0'
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? '0'
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const took = /\d+ requests in ([\d.]+)(us|ms|s|m|h)/.exec(out)
  return {
    rps: Number(num(/Requests\/sec:\s+([\d.]+)/)),
    p50: num(/\s50%\s+([\d.]+\w+)/),
    p99: num(/\s99%\s+([\d.]+\w+)/),
    requests: Number(num(/(\d+) requests in/)),
    seconds: took ? Number(took[1]) * UNIT_SECONDS[took[2]] : 0,
    errors: Number(errors) + (socketErrors ? socketErrors.slice(1).reduce((n, v) => n + Number(v), 0) : 0),
  }
}

export type RateResult = {
  /** requests answered per second, from the first send to the last answer */
  rps: number
  /** requests sent per second, from the first send to the last: below the target, this process could not keep the schedule */
  sentRps: number
  p50: number
  p99: number
  errors: number
  requests: number
}
export type RateOptions = {rate: number; seconds: number; body?: string}

/**
 * `rate` requests a second for `seconds`, over the agent's kept-alive connections, sent on schedule
 * whether or not earlier ones have been answered (an open loop, as wrk2 does; wrk and autocannon only
 * report whole milliseconds or a closed loop). A request's latency runs from the moment it was due, so
 * time spent waiting for a free connection counts. In ms. With a `body`, the requests are POSTs of it
 * as JSON. The schedule steps on a 1 ms timer in this process's event loop: the client shares the CPU
 * with everything else this process does.
 */
export async function openLoop(agent: http.Agent, url: string, {rate, seconds, body}: RateOptions): Promise<RateResult> {
  const total = Math.round(rate * seconds)
  const latencies: number[] = []
  const headers = body ? {'content-type': 'application/json', 'content-length': Buffer.byteLength(body)} : {}
  let errors = 0
  let lastSent = 0
  const t0 = performance.now()
  await new Promise<void>((resolve) => {
    let sent = 0
    let done = 0
    const finish = () => ++done === total && resolve()
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000))
      for (; sent < due; sent++) {
        const scheduled = t0 + (sent * 1000) / rate
        const req = http.request(url, {agent, method: body ? 'POST' : 'GET', headers}, (res) => {
          res.resume()
          res.on('end', () => {
            latencies.push(performance.now() - scheduled)
            if (res.statusCode! >= 400) errors++
            finish()
          })
        })
        req.on('error', () => {
          errors++
          finish()
        })
        req.end(body)
      }
      lastSent = performance.now()
      if (sent < total) setTimeout(tick, 1)
    }
    tick()
  })
  const elapsed = (performance.now() - t0) / 1000
  // the last request was due at (total - 1) / rate: sending it later means the schedule slipped
  const sendSeconds = Math.max((lastSent - t0) / 1000, (total - 1) / rate) + 1 / rate
  latencies.sort((a, b) => a - b)
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? 0
  return {rps: latencies.length / elapsed, sentRps: total / sendSeconds, p50: at(0.5), p99: at(0.99), errors, requests: latencies.length}
}

/** `openLoop` at `rate` for `seconds` over at most `connections` connections, after 2 s of the same that are not reported (the connections open, on both sides of a proxy). */
export async function atRate(url: string, options: RateOptions & {connections: number}): Promise<RateResult> {
  const agent = new http.Agent({keepAlive: true, maxSockets: options.connections})
  try {
    await openLoop(agent, url, {...options, seconds: 2})
    return await openLoop(agent, url, options)
  } finally {
    agent.destroy()
  }
}

/** The process and its children (one level: a primary and its workers, gunicorn's master and its workers). */
async function treePids(pid: number): Promise<number[]> {
  try {
    return [pid, ...(await execFileAsync('pgrep', ['-P', String(pid)])).stdout.trim().split('\n').filter(Boolean).map(Number)]
  } catch {
    return [pid] // pgrep exits 1 when there are no children
  }
}

/**
 * Memory of a process and its children:
 * - rss: the sum of their RSS, which counts the pages they share (the node binary, about 45 MB) once per process;
 * - pss: the sum of their PSS, which divides each shared page between all the processes that map it, the app's too;
 * - resident: the pages the tree holds, each once: every process's private pages, and each shared page of a
 *   file once however many of them map it (from /proc/PID/smaps: per mapping, the most any of them has).
 */
export async function treeMemory(pid: number): Promise<{rss: number; pss: number; resident: number}> {
  // asynchronous throughout: the fixed-rate client shares this process's event loop, and a
  // synchronous pgrep every 200 ms would show up in its latencies
  const read = async (file: string) => {
    try {
      return await readFile(file, 'utf8')
    } catch {
      return '' // the process is gone
    }
  }
  const kb = (text: string, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0) * 1024
  let rss = 0
  let pss = 0
  let own = 0
  /** file mapping (device, inode, offset) → the most of its pages that one process of the tree shares */
  const shared = new Map<string, number>()
  for (const p of await treePids(pid)) {
    rss += kb(await read(`/proc/${p}/status`), 'VmRSS')
    pss += kb(await read(`/proc/${p}/smaps_rollup`), 'Pss')
    const mine = new Map<string, number>()
    let key = ''
    for (const line of (await read(`/proc/${p}/smaps`)).split('\n')) {
      // a mapping's header (address perms offset dev inode [path]), then its fields, one a line
      const head = /^[0-9a-f]+-[0-9a-f]+ \S+ ([0-9a-f]+) (\S+) (\d+)/.exec(line)
      if (head) key = head[3] === '0' ? '' : `${head[2]} ${head[3]} ${head[1]}`
      const field = /^(Private|Shared)_(?:Clean|Dirty):\s+(\d+) kB/.exec(line)
      if (!field) continue
      const bytes = Number(field[2]) * 1024
      // anonymous shared pages (none in a node process) are counted as its own
      if (field[1] === 'Private' || key === '') own += bytes
      else mine.set(key, (mine.get(key) ?? 0) + bytes)
    }
    for (const [k, v] of mine) shared.set(k, Math.max(shared.get(k) ?? 0, v))
  }
  let resident = own
  for (const v of shared.values()) resident += v
  return {rss, pss, resident}
}

const TICK = 100 // clock ticks per second of /proc/*/stat (USER_HZ)

/** pgrep's matches, none when it finds nothing. */
export const pids = (args: string[]): number[] => {
  try {
    return execFileSync('pgrep', args).toString().trim().split('\n').filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** CPU seconds (user + system) a process, or with `pid/task/tid` one thread, has used so far; 0 once it is gone. */
export const cpuOf = (pid: number | string): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / TICK
  } catch {
    return 0
  }
}

const machineBusy = (): number => {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  return (f.reduce((a, b) => a + b, 0) - f[3] - f[4]) / TICK // all but idle and iowait
}

/**
 * The PostgreSQL server's processes: the postmaster `postmaster` and its children when given (so
 * another server on the machine, a test's, is not counted), otherwise every process of the OS user
 * postgres.
 */
export const postgresPids = (postmaster?: number): number[] =>
  postmaster ? [postmaster, ...pids(['-P', String(postmaster)])] : pids(['-u', 'postgres'])

/** The pid in the first line of a PostgreSQL data directory's postmaster.pid, if readable. */
export function postmasterPid(dataDirectory: string): number | undefined {
  try {
    return Number(readFileSync(`${dataDirectory}/postmaster.pid`, 'utf8').split('\n')[0]) || undefined
  } catch {
    return undefined
  }
}

export type CpuParts = {
  /** the app's process */
  app: number
  /** `run`'s primary: its children are the proxy workers */
  run?: number
  /** more processes by part, looked up at each snapshot: a part named `app` adds to the app (gunicorn's workers); any other name is a part of its own (the naive proxy as `proxy`) */
  extra?: Record<string, () => number[]>
  /** the PostgreSQL server's postmaster (see postgresPids) */
  postmaster?: number
}

/** CPU seconds used so far by each part of the set-up; PostgreSQL's exited backends are not counted (they are few). */
export function cpuSnapshot({app, run, extra = {}, postmaster}: CpuParts): Record<string, number> {
  const workers = run ? pids(['-P', String(run)]) : []
  const sum = (list: Array<number | string>) => list.reduce<number>((n, p) => n + cpuOf(p), 0)
  const snapshot: Record<string, number> = {
    app: cpuOf(app),
    primary: run ? cpuOf(run) : 0,
    workers: sum(workers),
    workerMain: sum(workers.map((p) => `${p}/task/${p}`)),
    postgres: sum(postgresPids(postmaster)),
  }
  for (const [part, list] of Object.entries(extra)) snapshot[part] = (snapshot[part] ?? 0) + sum(list())
  snapshot.machine = machineBusy() // last: the machine's total should not miss what the parts used meanwhile
  return snapshot
}

/** The parts' CPU between two snapshots, in µs per request; `rest` is the machine's busy time no part accounts for (wrk, this process, the OS). */
export function cpuPerRequest(a: Record<string, number>, b: Record<string, number>, requests: number): string {
  const d = Object.fromEntries(Object.keys(b).map((k) => [k, b[k] - (a[k] ?? 0)]))
  const own = Object.keys(d).filter((k) => !['workers', 'workerMain', 'primary', 'postgres', 'app', 'machine'].includes(k))
  const rest = d.machine - d.app - d.primary - d.workers - d.postgres - own.reduce((n, k) => n + d[k], 0)
  const us = (v: number) => `${((v * 1e6) / requests).toFixed(0)}`
  // the naive proxy has no workers or primary: its line leaves them out; capture.ts's lines keep them, zero or not
  const runParts = `proxy workers ${us(d.workers)} (main threads ${us(d.workerMain)}), primary ${us(d.primary)}`
  const parts = [...own.map((k) => `${k} ${us(d[k])}`), ...(own.length && !d.workers && !d.primary ? [] : [runParts])]
  return `CPU µs/request: ${parts.join(', ')}, PostgreSQL ${us(d.postgres)}, app ${us(d.app)}, wrk and the rest ${us(rest)}, total ${us(d.machine)}`
}
