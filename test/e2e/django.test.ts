import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {execa} from 'execa'
import {freePort} from '../../src/util/process.js'
import {runCli} from '../helpers/cli.js'
import {
  NEW_PASSWORD,
  PASSWORD,
  WRONG_PASSWORD,
  djangoProject,
  djangoVenv,
  driveShop,
  seen,
  startGunicorn,
  startReceiver,
} from '../helpers/django.js'
import {type TestDatabase, freshDatabase} from '../helpers/db.js'
import {type RunningServer, request, startRun, until} from '../helpers/run-server.js'
import {skipUnless} from '../helpers/skip.js'

type Event = Record<string, any>

/**
 * The events the shop scenario (helpers/django.ts driveShop) makes, in order; `requestId(step)` is the
 * request id of the step's request. `stored`: as the server keeps them, the password hashes masked.
 */
function expectShopEvents(events: Event[], requestId: (step: string) => string | undefined, stored: boolean) {
  const alice = {id: '1', name: 'alice'}
  // alice's own row: last_login set by the login, the password by the password change
  const userUpdates = events.filter((e) => e.action === 'UPDATE' && e.target?.type === 'auth.User')
  expect(userUpdates.map((e) => [Object.keys(e.changes), e.request_id, e.actor])).to.deep.equal([
    [['last_login'], requestId('login'), alice],
    [['password'], requestId('password'), alice],
  ])
  const {password} = userUpdates[1].changes
  if (stored)
    expect(JSON.stringify(password)).not.to.include('md5$') // that it changed, never its values
  else
    expect(password.before)
      .to.match(/^md5\$/)
      .and.not.equal(password.after)
  const shop = events.filter((e) => !userUpdates.includes(e))
  const brief = shop.map((e) => ({action: e.action, target: e.target, actor: e.actor, request_id: e.request_id}))
  const order = shop.find((e) => e.action === 'CREATE')!.target
  expect(brief).to.deep.equal([
    {action: 'LOGIN_FAILED', target: undefined, actor: {id: 'alice', name: 'alice'}, request_id: requestId('failed login')},
    {action: 'LOGIN', target: {type: 'auth.User', id: '1'}, actor: alice, request_id: requestId('login')},
    {action: 'CREATE', target: order, actor: alice, request_id: requestId('create')},
    {action: 'UPDATE', target: order, actor: alice, request_id: requestId('update')},
    {action: 'VIEW', target: order, actor: alice, request_id: requestId('view')},
    {action: 'EXPORT', target: {type: 'shop.Order'}, actor: alice, request_id: requestId('export')},
    {action: 'DELETE', target: order, actor: alice, request_id: requestId('delete')},
    {action: 'LOGOUT', target: {type: 'auth.User', id: '1'}, actor: alice, request_id: requestId('logout')},
  ])
  const [failed, , created, updated, viewed, exported, deleted] = shop
  expect(failed.extra).to.deep.equal({username: 'alice'})
  expect(created.changes).to.deep.equal({
    id: {before: null, after: Number(order.id)},
    number: {before: null, after: 'A-1'},
    total: {before: null, after: '12.50'},
    note: {before: null, after: 'first'},
  })
  expect(updated.changes).to.deep.equal({total: {before: '12.50', after: '13.00'}, note: {before: 'first', after: 'second'}})
  expect(viewed.reason).to.equal('looked at it')
  expect(exported.extra).to.deep.include({file_format: 'CSV', record_count: 2, filters: {all: true}})
  expect(deleted.changes).to.deep.equal({
    id: {before: Number(order.id), after: null},
    number: {before: 'A-1', after: null},
    total: {before: '13.00', after: null},
    note: {before: 'second', after: null},
  })
  for (const e of events) {
    expect(e.id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(e.ip).to.equal('127.0.0.1')
  }
}

describe('scaffold django', function () {
  it('writes the app and prints the settings lines, refuses an existing app, and --force replaces its files', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-scaffold-django-'))
    const first = await runCli(['scaffold', 'django', '--dir', dir, '--json'])
    expect(first.exitCode).to.equal(0)
    const result = first.json()
    expect(result.app).to.equal(path.join(dir, 'audit_logs_django'))
    expect(result.files).to.include.members(['audit_logs_django/README.md', 'audit_logs_django/middleware.py', 'audit_logs_django/apps.py'])
    expect(result.files.some((f: string) => f.includes('__pycache__'))).to.equal(false)
    for (const f of result.files) expect(existsSync(path.join(dir, f)), f).to.equal(true)
    expect(result.settings.middleware).to.include("'audit_logs_django.middleware.AuditMiddleware'")

    const apps = path.join(dir, 'audit_logs_django', 'apps.py')
    writeFileSync(apps, '# edited\n')
    const again = await runCli(['scaffold', 'django', '--dir', dir])
    expect(again.exitCode).to.equal(2)
    expect(again.stderr).to.include('already exists; not overwriting it: pass --force')
    expect(readFileSync(apps, 'utf8')).to.equal('# edited\n')

    const forced = await runCli(['scaffold', 'django', '--dir', dir, '--force'])
    expect(forced.exitCode).to.equal(0)
    expect(forced.stdout).to.include("INSTALLED_APPS += ['audit_logs_django']")
    expect(forced.stdout).to.include("MIDDLEWARE += ['audit_logs_django.middleware.AuditMiddleware']")
    expect(readFileSync(apps, 'utf8')).to.include('class AuditLogsConfig')
    rmSync(dir, {recursive: true, force: true})
  })
})

for (const series of ['4.2', '5.2']) {
  describe(`Django ${series}: the scaffolded app under gunicorn`, function () {
    this.timeout(180_000)
    const venv = djangoVenv(series)
    let project: Awaited<ReturnType<typeof djangoProject>>
    let direct: ReturnType<typeof seen> // what gunicorn answers without the proxy

    after(() => project && rmSync(project.dir, {recursive: true, force: true}))
    before(async function () {
      skipUnless(this, venv.ready, `no Django ${series} venv in ${venv.dir}: bash test/support/django-venv.sh`, {expectedInCi: true})
      const receiver = await startReceiver()
      try {
        project = await djangoProject(venv, {AUDIT_LOGS_EVENTS_URL: receiver.url, AUDIT_LOGS_EVENTS_TOKEN: 'token'}, () =>
          // migrate (its data migration saves an Order; content types and permissions are made) sent nothing
          expect(receiver.posts).to.deep.equal([]),
        )
        // a short-lived process: its event is sent as it exits
        expect(receiver.events().map((e) => [e.action, e.target, e.changes.username])).to.deep.equal([
          ['CREATE', {type: 'auth.User', id: '1'}, {before: null, after: 'alice'}],
        ])
      } finally {
        await receiver.close()
      }
    })

    it("the sender's answer to each reply of the events endpoint: 413 splits the batch, 400 and refused events are counted, 429 waits Retry-After, batches bounded, a full queue drops (Python unittest)", async () => {
      const r = await execa(venv.python, ['-m', 'unittest', 'sender_tests'], {cwd: project.dir, reject: false, all: true})
      expect(r.exitCode, r.all).to.equal(0)
      expect(r.all).to.match(/Ran 7 tests/)
    })

    it('sends every event off the request path, in batches with the token, retried with the same ids after a 503; never a password', async () => {
      const receiver = await startReceiver({failFirst: 1})
      const app = await startGunicorn(venv, project.dir, {
        DJANGO_DB_PATH: project.database(),
        AUDIT_LOGS_EVENTS_URL: receiver.url,
        AUDIT_LOGS_EVENTS_TOKEN: 'test-token',
      })
      try {
        const steps = await driveShop(app.url, {requestIds: 'direct'})
        direct = seen(steps)
        expect(direct.map((s) => s.status)).to.deep.equal([401, 200, 201, 200, 200, 200, 200, 200, 200])
        const login = steps.find((s) => s.name === 'login')!
        expect(login.headers['x-audit-user']).to.equal('1')
        expect(steps.find((s) => s.name === 'failed login')!.headers['x-audit-user']).to.equal(undefined)
        expect(steps.find((s) => s.name === 'logout')!.headers['x-audit-user']).to.equal(undefined)
        expect(JSON.parse(String(steps.find((s) => s.name === 'export')!.headers['x-audit-extra']))).to.deep.equal({tenant: 'acme'})

        await until(() => receiver.events().length >= 10, 30_000, 'the events')
        expectShopEvents(receiver.events(), (step) => steps.find((s) => s.name === step)?.requestId, false)
        expect(receiver.posts.every((p) => p.authorization === 'Bearer test-token' && p.contentType === 'application/json')).to.equal(true)
        // the batch the server answered 503 was sent again: the same events, the same ids
        const [refused, retried] = receiver.posts
        expect(retried.events.slice(0, refused.events.length)).to.deep.equal(refused.events)
        const all = JSON.stringify(receiver.posts)
        expect(all).not.to.include(WRONG_PASSWORD)
        expect(all).not.to.include(PASSWORD)
        expect(all).not.to.include(NEW_PASSWORD)
        // the sender counts a batch as sent once the answer is read, a moment after the receiver has it
        const statsNow = async () => JSON.parse((await request(`${app.url}/audit-stats`)).body.toString())
        await until(async () => (await statsNow()).queued === 0, 10_000, 'the sender to count the batches as sent')
        expect(await statsNow()).to.include({queued: 0, sent: 10, dropped: 0, failed_posts: 1, refused: 0})
      } finally {
        await app.stop()
        await receiver.close()
      }
    })

    it('serves every request while the events server is down: events wait, the ones over the queue are dropped and counted, and the waiting ones are sent once it is up', async () => {
      const port = await freePort()
      const app = await startGunicorn(venv, project.dir, {
        DJANGO_DB_PATH: project.database(),
        AUDIT_LOGS_EVENTS_URL: `http://127.0.0.1:${port}/_audit/events`,
        AUDIT_LOGS_EVENTS_TOKEN: 'test-token',
        TEST_AUDIT_QUEUE_SIZE: '4',
      })
      let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined
      try {
        const started = Date.now()
        const steps = await driveShop(app.url, {requestIds: 'down'})
        expect(Date.now() - started).to.be.below(10_000) // no request waited for the events server
        expect(seen(steps)).to.deep.equal(direct)
        const stats = JSON.parse((await request(`${app.url}/audit-stats`)).body.toString())
        // 10 events: 4 wait in the queue and the batch being retried (taken from it) waits too; the rest were dropped
        expect(stats.queued + stats.dropped).to.equal(10)
        expect(stats.dropped).to.be.at.least(1)
        expect(stats.queued).to.be.within(4, 8)
        expect(stats.failed_posts).to.be.at.least(1)
        expect(stats.sent).to.equal(0)
        expect(app.output()).to.match(/audit events could not be sent to http:\/\/127\.0\.0\.1:\d+\/_audit\/events/)

        receiver = await startReceiver({port})
        await until(() => receiver!.events().length === stats.queued, 60_000, 'the waiting events')
        // the sender counts a batch as sent once the answer is read, a moment after the receiver has it
        const statsNow = async () => JSON.parse((await request(`${app.url}/audit-stats`)).body.toString())
        await until(async () => (await statsNow()).queued === 0, 10_000, 'the sender to count the batch as sent')
        expect(await statsNow()).to.include({queued: 0, sent: stats.queued})
        expect(receiver.events()).to.have.length(stats.queued)
      } finally {
        await app.stop()
        await receiver?.close()
      }
    })

    describe('through audit-logs run', function () {
      let db: TestDatabase
      let run: RunningServer | undefined

      before(async () => {
        db = await freshDatabase({migrated: true})
      })
      after(async () => {
        await run?.stop()
        await db?.drop()
      })

      it('every event is in event_logs with its before/after, actor and the request id of its request record; the responses are unchanged', async () => {
        const databasePath = project.database()
        run = await startRun(
          ['--', 'sh', '-c', `cd "${project.dir}" && exec "${venv.gunicorn}" --workers 1 --bind 127.0.0.1:$PORT project.wsgi`],
          {AUDIT_LOGS_DATABASE_URL: db.url, DJANGO_DB_PATH: databasePath},
        )
        // the events endpoint refuses a post without the token the app was given
        const probe = await request(`${run.adminUrl}/_audit/events`, {
          method: 'POST',
          body: '[]',
          headers: {'content-type': 'application/json'},
        })
        expect(probe.status).to.equal(401)

        const steps = await driveShop(run.url)
        expect(seen(steps)).to.deep.equal(direct)
        const requests = await until(
          async () => {
            const {rows} = await db.client.query(`SELECT path, method, request_id, user_id, extra FROM request_logs ORDER BY created_at`)
            return rows.length >= steps.length && rows
          },
          30_000,
          'the request records',
        )
        const stepPath: Record<string, [string, string]> = {
          'failed login': ['POST', '/login'],
          login: ['POST', '/login'],
          create: ['POST', '/orders'],
          update: ['POST', '/orders/'],
          view: ['GET', '/orders/'],
          export: ['GET', '/export'],
          delete: ['POST', '/delete'],
          password: ['POST', '/password'],
          logout: ['POST', '/logout'],
        }
        // the request records, in order, matched to the steps
        const records = requests.slice(0, steps.length)
        steps.forEach((s, i) => {
          const [method, p] = stepPath[s.name]
          expect(records[i].method, s.name).to.equal(method)
          expect(records[i].path, s.name).to.include(p)
          expect(records[i].request_id, s.name).to.match(/^\S+$/)
        })
        expect(records[1].user_id).to.equal('1') // X-Audit-User of the login response
        expect(records[5].extra).to.deep.equal({tenant: 'acme'}) // X-Audit-Extra of the export

        const rows = await until(
          async () => {
            const {rows} = await db.client.query(`SELECT * FROM event_logs ORDER BY created_at, action`)
            return rows.length >= 10 && rows
          },
          30_000,
          'the events',
        )
        const events = rows.map((r: Event) => ({
          ...r,
          actor:
            r.actor_id || r.actor_name
              ? {...(r.actor_id ? {id: r.actor_id} : {}), ...(r.actor_name ? {name: r.actor_name} : {})}
              : undefined,
          target: r.target_type ? {type: r.target_type, ...(r.target_id ? {id: r.target_id} : {})} : undefined,
          ip: r.ip && String(r.ip).replace(/\/32$/, ''),
          reason: r.reason ?? undefined,
          extra: r.extra ?? undefined,
        }))
        expectShopEvents(events, (step) => records[steps.findIndex((s) => s.name === step)].request_id, true)
        for (const secret of [PASSWORD, WRONG_PASSWORD, NEW_PASSWORD, 'md5$']) expect(JSON.stringify(rows)).not.to.include(secret)
        const query = await runCli(['query', '--log-type', 'event', '--json', '--action', 'UPDATE', '--target', 'shop.Order'], {
          env: {AUDIT_LOGS_DATABASE_URL: db.url},
        })
        expect(query.exitCode, query.stderr).to.equal(0)
        expect(JSON.stringify(query.json())).to.include('"second"')
      })

      it('log_system_event: a SYSTEM event with its type as severity (an unknown type: INFO, the type kept in extra), title as reason, description and extra, masked', async () => {
        expect(run, 'the run of the test before').to.not.equal(undefined)
        const send = async (form: Record<string, string>) => {
          const r = await request(`${run!.url}/system-event`, {
            method: 'POST',
            headers: {'content-type': 'application/x-www-form-urlencoded'},
            body: new URLSearchParams(form).toString(),
          })
          expect(r.status, r.body.toString()).to.equal(200)
          expect(JSON.parse(r.body.toString())).to.deep.equal({queued: true})
        }
        await send({event_type: 'error', title: 'disk almost full', description: 'the volume is at 91%', token: 'sys-secret-token'})
        await send({event_type: 'notice', title: 'nightly job done', description: 'took 3 s'})
        const rows = await until(
          async () => {
            const {rows} = await db.client.query(`SELECT * FROM event_logs WHERE action = 'SYSTEM' ORDER BY created_at, id`)
            return rows.length >= 2 && rows
          },
          30_000,
          'the two SYSTEM events',
        )
        expect(rows).to.have.length(2)
        const [error, notice] = rows
        expect(error).to.include({severity: 'ERROR', reason: 'disk almost full', actor_id: null, target_type: null, changes: null})
        expect(error.extra).to.deep.equal({title: 'disk almost full', description: 'the volume is at 91%', source: 'shop', token: '****'})
        expect(notice).to.include({severity: 'INFO', reason: 'nightly job done'})
        expect(notice.extra).to.deep.equal({
          title: 'nightly job done',
          description: 'took 3 s',
          source: 'shop',
          token: '****',
          event_type: 'notice',
        })
        expect(JSON.stringify(rows)).not.to.include('sys-secret-token')
        // each carries the request id of its request's record, and the client's address
        const requests = await until(
          async () => {
            const {rows} = await db.client.query(`SELECT request_id FROM request_logs WHERE path = '/system-event' ORDER BY created_at`)
            return rows.length === 2 && rows
          },
          30_000,
          'the two request records',
        )
        expect(rows.map((r) => r.request_id)).to.deep.equal(requests.map((r) => r.request_id))
        expect(rows.map((r) => String(r.ip).replace(/\/32$/, ''))).to.deep.equal(['127.0.0.1', '127.0.0.1'])
        const q = await runCli(['query', '--log-type', 'event', '--severity', 'ERROR', '--json'], {env: {AUDIT_LOGS_DATABASE_URL: db.url}})
        expect(q.exitCode, q.stderr).to.equal(0)
        expect(q.json().records.map((r: {id: string}) => r.id)).to.deep.equal([error.id])
      })
    })
  })
}
