import {randomBytes} from 'node:crypto'
import {mkdtempSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {type ResultPromise, execa} from 'execa'
import {hashPassword} from '../../src/ui/auth.js'
import {freePort} from '../../src/util/process.js'
import {BIN, runCli, unwrapOclif} from './cli.js'
import {dropDatabase, dropRoles, serverUrl} from './db.js'

/** A database made by `setup-db` (roles included: the viewer reads as <name>_reader), dropped with its roles. */
export async function viewerDatabase(): Promise<{name: string; env: Record<string, string>; drop(): Promise<void>}> {
  const name = `ui_${randomBytes(4).toString('hex')}`
  const env = {AUDIT_LOGS_DATABASE_URL: serverUrl(), AUDIT_LOGS_DB_NAME: name}
  const r = await runCli(['setup-db'], {env})
  if (r.exitCode !== 0) throw new Error(`setup-db failed: ${r.stderr}`)
  return {
    name,
    env,
    async drop() {
      await dropDatabase(name)
      await dropRoles(`${name}_`)
    },
  }
}

export const VIEWER = {name: 'alice', password: 'correct horse battery'}
let hashed: Promise<string> | undefined
/** AUDIT_LOGS_UI_USERS for VIEWER (the hash made once per test run: scrypt takes a tenth of a second). */
export const viewerUsers = async () => `${VIEWER.name}:${await (hashed ??= hashPassword(VIEWER.password))}`

export type RunningViewer = {url: string; child: ResultPromise; output: () => string; stop(): Promise<void>}

/** `audit-logs ui` as a subprocess on a free port; resolves once it serves. */
export async function startViewer(env: Record<string, string | undefined>, args: string[] = []): Promise<RunningViewer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-ui-'))
  const port = await freePort()
  const child = execa(process.execPath, [BIN, 'ui', '--bind', `127.0.0.1:${port}`, ...args], {
    env: {
      OCLIF_SKIP_NEW_VERSION_CHECK: '1',
      AUDIT_LOGS_DATA_DIR: path.join(dir, 'data'),
      AUDIT_LOGS_LOG_DIR: path.join(dir, 'logs'),
      AUDIT_LOGS_UI_USERS: await viewerUsers(),
      ...env,
    },
    reject: false,
    cwd: dir,
  })
  let out = ''
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()))
  const end = Date.now() + 60_000
  let url: string | undefined
  while (!(url = /serving .* on (https?:\/\/\S+)/.exec(out)?.[1])) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`the viewer did not start:\n${unwrapOclif(out)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url,
    child,
    output: () => unwrapOclif(out),
    async stop() {
      child.kill('SIGTERM')
      await child
    },
  }
}

/** Logs in as a browser would (the login form's token and cookie, then the post); the session cookie for further requests. */
export async function loginCookie(url: string, user = VIEWER.name, password = VIEWER.password): Promise<string> {
  const form = await fetch(`${url}/login`)
  const html = await form.text()
  const token = /name="csrf" value="([^"]+)"/.exec(html)![1]
  const loginCookie = form.headers.getSetCookie().map((c) => c.split(';')[0])
  const res = await fetch(`${url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: {'content-type': 'application/x-www-form-urlencoded', cookie: loginCookie.join('; ')},
    body: new URLSearchParams({csrf: token, username: user, password, next: '/logs/request'}),
  })
  if (res.status !== 303) throw new Error(`login answered ${res.status}: ${await res.text()}`)
  return res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .filter((c) => c.startsWith('audit_logs_session=') && c.length > 'audit_logs_session='.length)
    .join('; ')
}
