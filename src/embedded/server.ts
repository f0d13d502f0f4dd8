import {randomBytes} from 'node:crypto'
import {chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import createDebug from 'debug'
import {execa} from 'execa'
import {backgroundCommand, niceProcess} from '../util/priority.js'
import lockfile from 'proper-lockfile'
import {AuditLogsError, ExitCode} from '../errors.js'
import {missingDirs, removeIfEmpty, writableDir} from '../util/dirs.js'
import {generatePassword} from '../util/scram.js'
import {MODES, replaceFile} from '../util/files.js'
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
  return {
    base,
    pgdata,
    secret: path.join(base, 'embedded.json'),
    clients: path.join(base, 'clients'),
    lock: path.join(base, 'embedded.lock'),
    log: path.join(pgdata, 'server.log'),
  }
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

/** The superuser's password and the last port, kept beside the data (mode 600) so URLs stay stable; undefined when missing or damaged. */
function readState(p: Paths): State | undefined {
  if (!existsSync(p.secret)) return undefined
  try {
    const state = JSON.parse(readFileSync(p.secret, 'utf8'))
    if (typeof state?.password === 'string' && state.password)
      return {password: state.password, port: Number.isInteger(state.port) ? state.port : undefined}
  } catch {
    // damaged: as if missing
  }
  debug('%s is damaged', p.secret)
  return undefined
}

/** Replaced whole: a crash never leaves the password half-written. */
const writeState = (p: Paths, state: State) => replaceFile(p.secret, JSON.stringify(state) + '\n', MODES.privateFile)

/**
 * The data directory exists but the password file is gone or damaged: the
 * superuser gets a new password through PostgreSQL's single-user mode (the
 * server must be stopped; the password goes on standard input, never on a
 * command line). Nothing in the data changes.
 */
async function resetPassword(bins: Binaries, p: Paths, runAs: RunAs): Promise<State> {
  if (runningServer(p)) {
    throw new AuditLogsError(`The embedded PostgreSQL's password file ${p.secret} is missing or damaged while its server runs`, {
      exit: ExitCode.embedded,
      suggestions: [`Stop the server (pg_ctl stop -D ${p.pgdata}, as its owner) and run the command again: a new password is then set`],
    })
  }
  const state = {password: generatePassword()}
  registerSecret(state.password)
  const result = await execa(bins.postgres, ['--single', '-D', p.pgdata, '-c', 'listen_addresses=', 'postgres'], {
    ...runAs,
    reject: false,
    env: {LC_ALL: 'C'},
    input: `ALTER ROLE postgres PASSWORD '${state.password}';\n`, // base64url: no quote to escape
  })
  if (result.exitCode !== 0) {
    throw new AuditLogsError(
      `Could not set a new password for the embedded PostgreSQL in ${p.pgdata} (its password file ${p.secret} is missing or damaged): ${result.stderr.trim()}`,
      {exit: ExitCode.embedded},
    )
  }
  writeState(p, state)
  debug('set a new superuser password (the password file was missing or damaged)')
  return state
}

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
      throw new AuditLogsError(`Could not initialise the embedded PostgreSQL in ${p.pgdata}: ${result.stderr.trim()}`, {
        exit: ExitCode.embedded,
      })
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
    throw new AuditLogsError(`The embedded PostgreSQL did not start on port ${port}: ${result.stderr.trim()}\n${tail}`, {
      exit: ExitCode.embedded,
    })
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
  const unlock = await lockfile.lock(p.base, {
    lockfilePath: p.lock,
    stale: 120_000,
    update: 10_000,
    retries: {retries: 600, minTimeout: 50, maxTimeout: 250},
  })
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
  // a first start that fails (a data directory the server's user cannot enter) leaves no empty directory behind
  const made = missingDirs([dataDir])
  try {
    return await acquire(dataDir, options)
  } catch (error) {
    for (const dir of made) removeIfEmpty(dir)
    throw error
  }
}

async function acquire(dataDir: string, options: {port?: number; nice?: number}): Promise<EmbeddedServer> {
  const p = layout(dataDir)
  const runAs = await serverOsUser()
  writableDir(p.base, 'data directory of the embedded PostgreSQL', 'dataDir (AUDIT_LOGS_DATA_DIR)')
  mkdirSync(p.clients, {recursive: true})
  chmodSync(p.base, 0o755)
  await assertEnterable(p.base, runAs)
  const bins = await findBinaries()
  const claim = path.join(p.clients, claimName())

  const {port, started, password} = await withLock(p, async () => {
    writeFileSync(claim, '')
    const initialised = existsSync(path.join(p.pgdata, 'PG_VERSION'))
    let state = readState(p)
    if (!state && initialised) state = await resetPassword(bins, p, runAs)
    if (!state) {
      state = {password: generatePassword()}
      writeState(p, state)
    }
    const {password} = state
    if (!initialised) {
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
