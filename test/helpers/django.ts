import {cpSync, copyFileSync, existsSync, mkdtempSync} from 'node:fs'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {type ResultPromise, execa} from 'execa'
import {freePort} from '../../src/util/process.js'
import {ROOT, runCli} from './cli.js'
import {type Reply, request, until} from './run-server.js'

/** The venvs test/support/django-venv.sh makes. */
export function djangoVenv(series: string) {
  const dir = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'audit-logs', `django-${series}`)
  return {
    dir,
    python: path.join(dir, 'bin', 'python'),
    gunicorn: path.join(dir, 'bin', 'gunicorn'),
    ready: existsSync(path.join(dir, 'bin', 'gunicorn')),
  }
}
export type DjangoVenv = ReturnType<typeof djangoVenv>

export const PASSWORD = 's3cret-pw'
export const WRONG_PASSWORD = 'wrong-pw'
export const NEW_PASSWORD = 'n3w-secret-pw'

/**
 * test/fixtures/django copied to a temp directory, the app scaffolded into it by the built CLI, its database
 * migrated and user alice made by `manage.py shell`, both with `env` (the test points the events URL at a
 * receiver: migrate sends nothing, the shell sends alice's CREATE as it exits), `afterMigrate` called between.
 * `database()` is a fresh copy of that database.
 */
export async function djangoProject(venv: DjangoVenv, env: Record<string, string>, afterMigrate: () => void = () => {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-django-'))
  cpSync(path.join(ROOT, 'test', 'fixtures', 'django'), dir, {recursive: true})
  const scaffold = await runCli(['scaffold', 'django', '--dir', dir, '--json'])
  if (scaffold.exitCode !== 0) throw new Error(`scaffold django failed: ${scaffold.stderr}`)
  const template = path.join(dir, 'template.sqlite3')
  const python = (args: string[]) => execa(venv.python, ['manage.py', ...args], {cwd: dir, env: {DJANGO_DB_PATH: template, ...env}})
  await python(['migrate', '--verbosity', '0'])
  afterMigrate()
  await python(['shell', '-c', `from django.contrib.auth.models import User; User.objects.create_user('alice', password='${PASSWORD}')`])
  let copies = 0
  return {
    dir,
    scaffold: scaffold.json(),
    database() {
      const copy = path.join(dir, `db-${++copies}.sqlite3`)
      copyFileSync(template, copy)
      return copy
    },
  }
}

export type Post = {authorization?: string; contentType?: string; events: Array<Record<string, any>>}

/** Stands in for the events endpoint (on `port`, or any): answers as the server does, keeps one copy of an id; the first `failFirst` posts get 503. */
export async function startReceiver(options: {failFirst?: number; port?: number} = {}) {
  const posts: Post[] = []
  const byId = new Map<string, Record<string, any>>()
  let failures = options.failFirst ?? 0
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const events = JSON.parse(Buffer.concat(chunks).toString()) as Array<Record<string, any>>
      posts.push({authorization: req.headers.authorization, contentType: req.headers['content-type'], events})
      if (failures > 0) {
        failures--
        res.writeHead(503, {'content-type': 'application/json'}).end('{"error":"journal full"}')
        return
      }
      for (const e of events) if (!byId.has(e.id)) byId.set(e.id, e)
      res.writeHead(200, {'content-type': 'application/json'})
      res.end(JSON.stringify({accepted: events.length, ids: events.map((e) => e.id), refused: []}))
    })
  })
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/_audit/events`,
    posts,
    events: () => [...byId.values()],
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

export type Gunicorn = {url: string; child: ResultPromise; output: () => string; stop(): Promise<void>}

/** gunicorn (one sync worker) serving the project, once it answers. */
export async function startGunicorn(venv: DjangoVenv, projectDir: string, env: Record<string, string>): Promise<Gunicorn> {
  const port = await freePort()
  const child = execa(venv.gunicorn, ['--workers', '1', '--bind', `127.0.0.1:${port}`, 'project.wsgi'], {
    cwd: projectDir,
    env: {AUDIT_LOGS_EVENTS_URL: '', AUDIT_LOGS_EVENTS_TOKEN: '', ...env},
    reject: false,
    all: true,
  })
  let output = ''
  child.all!.on('data', (c: Buffer) => (output += c.toString()))
  const url = `http://127.0.0.1:${port}`
  await until(
    async () => {
      if (child.exitCode !== null) throw new Error(`gunicorn exited:\n${output}`)
      return (await request(`${url}/audit-stats`).catch(() => undefined))?.status === 200
    },
    30_000,
    'gunicorn',
  )
  return {
    url,
    child,
    output: () => output,
    async stop() {
      child.kill('SIGTERM')
      await child
    },
  }
}

export type Step = {name: string; status: number; body: string; headers: http.IncomingHttpHeaders; requestId?: string}

/**
 * The scenario both tests drive: a failed and a good login, an order created, updated, viewed, exported and
 * deleted, a password change, a logout. `requestIds` sends an X-Request-Id on each (as the proxy does; through the proxy it sets them).
 */
export async function driveShop(url: string, options: {requestIds?: string} = {}): Promise<Step[]> {
  let cookie = ''
  const steps: Step[] = []
  const call = async (name: string, method: string, p: string, form?: Record<string, string>, headers: Record<string, string> = {}) => {
    const requestId = options.requestIds ? `${options.requestIds}-${steps.length + 1}` : undefined
    const body = form ? new URLSearchParams(form).toString() : undefined
    const r: Reply = await request(`${url}${p}`, {
      method,
      body,
      headers: {
        ...(body ? {'content-type': 'application/x-www-form-urlencoded'} : {}),
        ...(cookie ? {cookie} : {}),
        ...(requestId ? {'x-request-id': requestId} : {}),
        ...headers,
      },
    })
    const session = (r.headers['set-cookie'] ?? []).find((c) => c.startsWith('sessionid='))
    if (session) cookie = session.split(';')[0]
    steps.push({name, status: r.status, body: r.body.toString(), headers: r.headers, requestId})
    return r
  }
  await call('failed login', 'POST', '/login', {username: 'alice', password: WRONG_PASSWORD})
  await call('login', 'POST', '/login', {username: 'alice', password: PASSWORD})
  const created = await call('create', 'POST', '/orders', {number: 'A-1', total: '12.50', note: 'first'})
  const id = JSON.parse(created.body.toString()).id
  await call('update', 'POST', `/orders/${id}`, {total: '13', note: 'second'})
  await call('view', 'GET', `/orders/${id}`)
  await call('export', 'GET', '/export', undefined, {'x-tenant': 'acme'})
  await call('delete', 'POST', `/orders/${id}/delete`, {})
  await call('password', 'POST', '/password', {password: NEW_PASSWORD})
  await call('logout', 'POST', '/logout', {})
  return steps
}

/** What a client sees of a step: the proxy adds and strips headers, so status and body. */
export const seen = (steps: Step[]) => steps.map((s) => ({name: s.name, status: s.status, body: s.body}))
