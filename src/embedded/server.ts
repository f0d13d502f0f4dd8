import {randomBytes} from 'node:crypto'
import {chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import createDebug from 'debug'
import {execa} from 'execa'
import {backgroundCommand, niceProcess} from '../util/priority.js'
import lockfile from 'proper-lockfile'
import {AuditLogsError, ExitCode} from '../errors.js'
import {freePort, isAlive, portIsFree} from '../util/process.js'
import {registerSecret} from '../util/redact.js'
import {type Binaries, findBinaries} from './binaries.js'
import {type RunAs, assertEnterable, serverOsUser} from './os-user.js'

const debug = createDebug('audit-logs:embedded')

export type EmbeddedServer = {
  /** URL of the server's `postgres` database, as the superuser. */
  adminUrl: string
  port: number
  /** Whether this process started the server (false when it reused a running one). */
  started: boolean
  /** Drop this process's claim; the last claimant stops the server. Safe to call twice. */
  release(): Promise<void>
}

type Paths = {base: string; pgdata: string; secret: string; clients: string; lock: string; log: string}

function layout(dataDir: string): Paths {
  const base = path.resolve(dataDir)
  const pgdata = path.join(base, 'pgdata')
  return {base, pgdata, secret: path.join(base, 'embedded.json'), clients: path.join(base, 'clients'), lock: path.join(base, 'embedded.lock'), log: path.join(pgdata, 'server.log')}
}

/** The server recorded in postmaster.pid, if it still runs; a stale file is removed. */
function runningServer(p: Paths): {pid: number; port: number} | undefined {
  const pidFile = path.join(p.pgdata, 'postmaster.pid')
  if (!existsSync(pidFile)) return undefined
  const lines = readFileSync(pidFile, 'utf8').split('\n')
  const pid = Number(lines[0])
  const port = Number(lines[3])
  const comm = (() => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
    } catch {
      return os.platform() === 'linux' ? '' : 'postgres'
    }
  })()
  if (pid > 0 && isAlive(pid) && comm.startsWith('postgres')) return {pid, port}
  debug('removing stale postmaster.pid (pid %d is gone)', pid)
  unlinkSync(pidFile)
  return undefined
}

type State = {password: string; port?: number}

/** The superuser's password and the last port, kept beside the data (mode 600) so URLs stay stable. */
function readState(p: Paths): State {
  if (existsSync(p.secret)) return JSON.parse(readFileSync(p.secret, 'utf8'))
  const state = {password: randomBytes(18).toString('base64url')}
  writeState(p, state)
  return state
}

const writeState = (p: Paths, state: State) => writeFileSync(p.secret, JSON.stringify(state) + '\n', {mode: 0o600})

async function initdb(bins: Binaries, p: Paths, password: string, runAs: RunAs): Promise<void> {
  mkdirSync(p.pgdata, {recursive: true, mode: 0o700})
  const pwfile = path.join(os.tmpdir(), `audit-logs-pw-${randomBytes(6).toString('hex')}`)
  writeFileSync(pwfile, password + '\n', {mode: 0o600})
  try {
    if (runAs) {
      chownSync(p.pgdata, runAs.uid, runAs.gid)
      chownSync(pwfile, runAs.uid, runAs.gid)
    }
    const result = await execa(
      bins.initdb,
      ['-D', p.pgdata, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C'],
      {...runAs, reject: false, env: {LC_ALL: 'C'}},
    )
    if (result.exitCode !== 0) {
      throw new AuditLogsError(`Could not initialise the embedded PostgreSQL in ${p.pgdata}: ${result.stderr.trim()}`, {exit: ExitCode.embedded})
    }
  } finally {
    unlinkSync(pwfile)
  }
}

async function pgCtl(bins: Binaries, args: string[], runAs: RunAs, nice = 0) {
  const options = {...runAs, reject: false, env: {LC_ALL: 'C'}, stdin: 'ignore'} as const
  const [command, ...prefix] = [...backgroundCommand(nice), bins.pg_ctl]
  return execa(command, [...prefix, ...args], options)
}

/**
 * pg_ctl starts the server in a session of its own, and Linux schedules each
 * session as a group (autogroup) whose share does not depend on its processes'
 * nice values: the group's own nice value is set too.
 */
function lowerGroupPriority(p: Paths, nice: number): void {
  const server = runningServer(p)
  if (server && !niceProcess(server.pid, nice)) debug('could not lower the priority of the server (pid %d)', server.pid)
}

/** `nice`: the server's nice value (its processes inherit it), so an audit database on the app's host yields the CPU to the app. */
async function startServer(bins: Binaries, p: Paths, port: number, runAs: RunAs, nice: number): Promise<void> {
  // Local only; sized for an audit database that mostly appends in large batches.
  const options = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    "-c unix_socket_directories=''",
    '-c shared_buffers=256MB',
    '-c max_wal_size=4GB',
    '-c checkpoint_timeout=15min',
  ].join(' ')
  const result = await pgCtl(bins, ['start', '-D', p.pgdata, '-w', '-t', '60', '-l', p.log, '-o', options], runAs, nice)
  if (result.exitCode === 0 && nice > 0) lowerGroupPriority(p, nice)
  if (result.exitCode !== 0) {
    const tail = existsSync(p.log) ? readFileSync(p.log, 'utf8').split('\n').slice(-8).join('\n') : ''
    throw new AuditLogsError(`The embedded PostgreSQL did not start on port ${port}: ${result.stderr.trim()}\n${tail}`, {exit: ExitCode.embedded})
  }
}

const claimName = () => `${process.pid}-${randomBytes(4).toString('hex')}`

function liveClaims(p: Paths): string[] {
  if (!existsSync(p.clients)) return []
  return readdirSync(p.clients).filter((name) => {
    if (isAlive(Number(name.split('-')[0]))) return true
    unlinkSync(path.join(p.clients, name))
    return false
  })
}

async function withLock<T>(p: Paths, fn: () => Promise<T>): Promise<T> {
  const unlock = await lockfile.lock(p.base, {lockfilePath: p.lock, stale: 120_000, update: 10_000, retries: {retries: 600, minTimeout: 50, maxTimeout: 250}})
  try {
    return await fn()
  } finally {
    await unlock()
  }
}

/**
 * Start the embedded server in `dataDir`, or reuse the one another
 * audit-logs process already runs there. Each process holds a claim (a file
 * named by its pid); the last live claimant stops the server, and claims of
 * killed processes are ignored, so an orphaned server is adopted and stopped.
 */
export async function acquireEmbedded(dataDir: string, options: {port?: number; nice?: number} = {}): Promise<EmbeddedServer> {
  const p = layout(dataDir)
  const runAs = await serverOsUser()
  mkdirSync(p.clients, {recursive: true})
  chmodSync(p.base, 0o755)
  await assertEnterable(p.base, runAs)
  const bins = await findBinaries()
  const claim = path.join(p.clients, claimName())

  const {port, started, password} = await withLock(p, async () => {
    writeFileSync(claim, '')
    const state = readState(p)
    const {password} = state
    if (!existsSync(path.join(p.pgdata, 'PG_VERSION'))) {
      debug('initialising %s', p.pgdata)
      await initdb(bins, p, password, runAs)
    }
    const running = runningServer(p)
    if (running) {
      debug('reusing server pid %d on port %d', running.pid, running.port)
      return {port: running.port, started: false, password}
    }
    const port = options.port ?? (state.port && (await portIsFree(state.port)) ? state.port : await freePort())
    if (port !== state.port) writeState(p, {...state, port})
    debug('starting server on port %d', port)
    await startServer(bins, p, port, runAs, options.nice ?? 0)
    return {port, started: true, password}
  }).catch((error) => {
    if (existsSync(claim)) unlinkSync(claim)
    throw error
  })
  registerSecret(password)

  let released = false
  return {
    adminUrl: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    started,
    async release() {
      if (released) return
      released = true
      await withLock(p, async () => {
        if (existsSync(claim)) unlinkSync(claim)
        if (liveClaims(p).length > 0 || !runningServer(p)) return
        debug('last claimant: stopping the server')
        await pgCtl(bins, ['stop', '-D', p.pgdata, '-m', 'fast', '-w', '-t', '60'], runAs)
      })
    },
  }
}
