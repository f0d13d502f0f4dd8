import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync} from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import {type ResultPromise, execa} from 'execa'
import {freePort} from '../../src/util/process.js'
import {BIN, unwrapOclif} from './cli.js'

export type RunningServer = {
  url: string
  adminUrl: string
  dir: string
  logDir: string
  journalDir: string
  child: ResultPromise
  stderr: () => string
  stop(signal?: NodeJS.Signals): Promise<{exitCode?: number; signal?: string}>
}

/** adminHost: the admin listener's address (127.0.0.1 unless given); adminUrl reaches one bound to every address on loopback. */
type StartOptions = {dir?: string; expectFailure?: boolean; bind?: string; nodeArgs?: string[]; adminHost?: string}

/**
 * Starts `bin/run.js run` as a subprocess and waits until it listens. A port picked here is free when
 * picked, but another program can take it before run binds it: then run exits with "already in use"
 * and this tries again with other ports (twice at most).
 */
export async function startRun(
  args: string[],
  env: Record<string, string | undefined> = {},
  options: StartOptions = {},
): Promise<RunningServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRunOnce(args, env, options)
    } catch (error) {
      const taken = /EADDRINUSE|already in use/.test((error as Error).message)
      if (!taken || options.bind || attempt >= 3) throw error
    }
  }
}

async function startRunOnce(args: string[], env: Record<string, string | undefined>, options: StartOptions): Promise<RunningServer> {
  const dir = options.dir ?? mkdtempSync(path.join(os.tmpdir(), 'audit-logs-run-'))
  const bind = options.bind ?? `127.0.0.1:${await freePort()}`
  const adminPort = await freePort()
  const adminHost = options.adminHost ?? '127.0.0.1'
  const reachAdmin = ['0.0.0.0', '::'].includes(adminHost) ? '127.0.0.1' : adminHost
  const logDir = path.join(dir, 'logs')
  const child = execa(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      BIN,
      'run',
      '--bind',
      bind,
      '--admin-bind',
      `${adminHost.includes(':') ? `[${adminHost}]` : adminHost}:${adminPort}`,
      '--log-dir',
      logDir,
      ...args,
    ],
    {
      env: {OCLIF_SKIP_NEW_VERSION_CHECK: '1', AUDIT_LOGS_DATA_DIR: path.join(dir, 'data'), AUDIT_LOGS_DATABASE_URL: undefined, ...env},
      reject: false,
      cwd: dir,
      detached: true, // its own process group, so a test can kill -9 the whole server
    },
  )
  let err = ''
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()))
  const server: RunningServer = {
    url: `http://${bind}`,
    adminUrl: `http://${reachAdmin.includes(':') ? `[${reachAdmin}]` : reachAdmin}:${adminPort}`,
    dir,
    logDir,
    journalDir: path.join(dir, 'data', 'journal'),
    child,
    stderr: () => unwrapOclif(err),
    async stop(signal = 'SIGTERM') {
      child.kill(signal)
      const r = await child
      return {exitCode: r.exitCode, signal: r.signal}
    },
  }
  if (options.expectFailure) return server
  const end = Date.now() + 60_000
  while (!err.includes('listening on')) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`run did not start:\n${err}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return server
}

export type Reply = {status: number; headers: http.IncomingHttpHeaders; body: Buffer}

/** A plain HTTP request (node:http: large header sets, raw bodies, no decoding). */
/** Calls `send(loop, i)` from `parallel` loops, each awaiting its last call, until stop(), which waits for the loops to end. */
export function sendLoops(parallel: number, send: (loop: number, i: number) => Promise<void>): {stop: () => Promise<void>} {
  let stopped = false
  const loops = Array.from({length: parallel}, async (_, k) => {
    for (let i = 0; !stopped; i++) await send(k, i)
  })
  return {
    stop: async () => {
      stopped = true
      await Promise.all(loops)
    },
  }
}

export function request(
  url: string,
  options: {method?: string; headers?: Record<string, string | string[]>; body?: Buffer | string; agent?: http.Agent} = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false, maxHeaderSize: 4 * 1024 * 1024},
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks)}))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(options.body)
  })
}

export async function until<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 30_000,
  what = 'condition',
): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** The pids of a process's children: none while a dead worker waits for its replacement (pgrep then exits with 1). */
export function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)])
      .toString()
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number)
  } catch (error) {
    if ((error as {status?: number}).status === 1) return []
    throw error
  }
}

/** The first record for `path` in the JSONL files of `logDir`, once it is there. */
export const recordIn = (logDir: string, path_: string, ms = 10_000): Promise<Record<string, any>> =>
  until(
    () => {
      try {
        return readFileSync(path.join(logDir, 'requests.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l))
          .find((r) => r.path === path_)
      } catch {
        return undefined // not written yet
      }
    },
    ms,
    `a record for ${path_}`,
  )
