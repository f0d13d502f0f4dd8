import {execFileSync} from 'node:child_process'
import type http from 'node:http'
import https from 'node:https'
import {mkdtempSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import pg from 'pg'
import {clientConfig, withDatabase} from '../../src/stores/postgres/connection.js'
import {postgresPool} from '../../src/ui/sources.js'
import {runCli} from '../helpers/cli.js'
import {serverUrl} from '../helpers/db.js'
import {type RunningServer, request, startRun, until} from '../helpers/run-server.js'
import {type RunningViewer, VIEWER, loginCookie, startViewer, viewerDatabase, viewerUsers} from '../helpers/ui.js'
import {type Upstream, startUpstream} from '../helpers/upstream.js'
import {type TestMongo, freshMongo, mongoServerUri} from '../helpers/mongo.js'
import {skipUnless} from '../helpers/skip.js'

/** The login form's token and cookie, as a browser holds them. */
async function loginForm(url: string): Promise<{token: string; cookie: string}> {
  const res = await fetch(`${url}/login`)
  const token = /name="csrf" value="([^"]+)"/.exec(await res.text())![1]
  return {
    token,
    cookie: res.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; '),
  }
}

async function postLogin(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const {token, cookie} = await loginForm(url)
  return fetch(`${url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: {'content-type': 'application/x-www-form-urlencoded', cookie, ...headers},
    body: new URLSearchParams({csrf: token, ...form}),
  })
}

const get = (url: string, cookie?: string) => fetch(url, {redirect: 'manual', headers: cookie ? {cookie} : {}})

describe('audit-logs ui over HTTP: pages, logins, exports, its own trail, and what it refuses', function () {
  let db: Awaited<ReturnType<typeof viewerDatabase>>
  let upstream: Upstream
  let viewer: RunningViewer
  let cookie: string
  let client: pg.Client

  before(async () => {
    db = await viewerDatabase()
    upstream = await startUpstream()
    // records from real traffic through run
    const run = await startRun(['--upstream', upstream.url], db.env)
    try {
      for (let i = 0; i < 12; i++)
        await request(`${run.url}/api/orders/${i}`, {headers: {'x-simulate-status': i % 4 === 0 ? '503' : '200'}})
      await request(`${run.url}/status/404`)
      await request(`${run.url}/mirror`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: '{"password":"hunter2","n":1}',
      })
      client = new pg.Client(clientConfig(withDatabase(serverUrl(), db.name)))
      await client.connect()
      await until(async () => Number((await client.query('SELECT count(*) AS n FROM request_logs')).rows[0].n) >= 14, 30_000, 'the records')
    } finally {
      await run.stop()
    }
    viewer = await startViewer({...db.env, AUDIT_LOGS_UI_LOGIN_ATTEMPTS: '3'})
    cookie = await loginCookie(viewer.url)
  })
  after(async () => {
    await viewer?.stop()
    // the dashboard's statements ran at once on several connections, never two on one (pg deprecates that)
    expect(viewer?.output() ?? '').not.to.include('DeprecationWarning')
    await client?.end()
    await upstream?.close()
    await db?.drop()
  })

  it('sends an anonymous visitor to the login page (and back where it was going), never to another site', async () => {
    const anon = await get(`${viewer.url}/logs/request?status=5xx`)
    expect(anon.status).to.equal(303)
    expect(anon.headers.get('location')).to.equal('/login?next=%2Flogs%2Frequest%3Fstatus%3D5xx')
    expect((await get(`${viewer.url}/api/stats?since=1h`)).status).to.equal(401)
    expect((await get(`${viewer.url}/export?format=csv`)).status).to.equal(401)
    // what a browser asks for on its own after each page is no redirect to the login page
    expect((await get(`${viewer.url}/favicon.ico`)).status).to.equal(204)
    // the login form's token lasts while its cookie does: another tab's form (or a request landing on /login) leaves it valid
    const form = await loginForm(viewer.url)
    const again = await fetch(`${viewer.url}/login`, {headers: {cookie: form.cookie}})
    expect(/name="csrf" value="([^"]+)"/.exec(await again.text())![1]).to.equal(form.token)
    const back = await postLogin(viewer.url, {username: VIEWER.name, password: VIEWER.password, next: '/logs/request?status=5xx'})
    expect(back.headers.get('location')).to.equal('/logs/request?status=5xx')
    for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)']) {
      const r = await postLogin(viewer.url, {username: VIEWER.name, password: VIEWER.password, next})
      expect(r.headers.get('location'), next).to.equal('/logs/request')
    }
  })

  it('sends the strict headers on every answer: CSP without inline script or eval, no framing, no sniffing, no referrer', async () => {
    const detailId = (await client.query('SELECT id::text FROM request_logs LIMIT 1')).rows[0].id
    for (const p of [
      '/login',
      '/logs/request',
      `/records/${detailId}`,
      '/dashboard?since=1h',
      '/tail',
      '/static/ui.js',
      '/nope',
      '/api/stats?since=1h',
    ]) {
      const r = await get(`${viewer.url}${p}`, cookie)
      const csp = r.headers.get('content-security-policy')!
      expect(csp, p).to.include("script-src 'self'").and.include("frame-ancestors 'none'").and.include("default-src 'none'")
      expect(csp, p).not.to.match(/unsafe-inline|unsafe-eval/)
      expect(r.headers.get('x-content-type-options'), p).to.equal('nosniff')
      expect(r.headers.get('referrer-policy'), p).to.equal('no-referrer')
      expect(r.headers.get('x-frame-options'), p).to.equal('DENY')
    }
  })

  it('lists with the CLI filter language, newest first, in keyset pages; a wrong expression is shown beside its field, worded as the CLI words it', async () => {
    const page = await (await get(`${viewer.url}/logs/request?status=5xx&path=/api/**&since=1h&limit=25`, cookie)).text()
    const rows = [...page.matchAll(/<tr class="(s\dxx)" data-id="([^"]+)">/g)]
    expect(rows.map((r) => r[1])).to.deep.equal(['s5xx', 's5xx', 's5xx'])
    const bad = await get(`${viewer.url}/logs/request?status=abc&path=api`, cookie)
    expect(bad.status).to.equal(400)
    const html = await bad.text()
    expect(html).to.include('--status &quot;abc&quot; is not understood. Accepted: 500, &gt;=400')
    expect(html).to.include('--path &quot;api&quot; is not understood. Accepted: a path (/api/orders), a glob')
    // the filter of another type is not offered; a filter text that looks like SQL is only a value
    const sql = await get(
      `${viewer.url}/logs/request?user=${encodeURIComponent("1' OR '1'='1")}&path=${encodeURIComponent("/x'; DROP TABLE request_logs;--")}`,
      cookie,
    )
    expect(sql.status).to.equal(200)
    expect(await sql.text()).to.include('No records match.')
    // the whole list is newest first, as the database orders it; the columns the address names, in its order
    const all = [...(await (await get(`${viewer.url}/logs/request?limit=25`, cookie)).text()).matchAll(/data-id="([^"]+)"/g)].map(
      (m) => m[1],
    )
    const {rows: expected} = await client.query('SELECT id::text FROM request_logs ORDER BY created_at DESC, id DESC')
    expect(all).to.deep.equal(expected.map((r) => r.id))
    const picked = await (await get(`${viewer.url}/logs/request?cols=status_code,created_at,nonsense`, cookie)).text()
    expect([...picked.matchAll(/<th>([^<]+)<\/th>/g)].map((m) => m[1])).to.deep.equal(['status_code', 'created_at'])
  })

  it('pages by keyset: older and newer links give each record once', async () => {
    const all = [...(await (await get(`${viewer.url}/logs/request?limit=25`, cookie)).text()).matchAll(/data-id="([^"]+)"/g)].map(
      (m) => m[1],
    )
    const {rows} = await client.query('SELECT id::text, created_at FROM request_logs ORDER BY created_at DESC, id DESC')
    const cursor = `${new Date(rows[9].created_at).toISOString()}_${rows[9].id}`
    const older = await (await get(`${viewer.url}/logs/request?limit=25&after=${encodeURIComponent(cursor)}`, cookie)).text()
    expect([...older.matchAll(/data-id="([^"]+)"/g)].map((m) => m[1])).to.deep.equal(all.slice(10))
    expect(older).to.include('id="first"')
    const newer = await (await get(`${viewer.url}/logs/request?limit=25&before=${encodeURIComponent(cursor)}`, cookie)).text()
    expect([...newer.matchAll(/data-id="([^"]+)"/g)].map((m) => m[1])).to.deep.equal(all.slice(0, 9))
    const forged = await get(`${viewer.url}/logs/request?after=${encodeURIComponent("2026-01-01T00:00:00.000Z_x' OR 1=1")}`, cookie)
    expect(forged.status).to.equal(400)
    expect(await forged.text()).to.include('the page position in the address is not one this viewer made')
  })

  it('shows a record in full: headers, the masked password shown as masked, curl with the secret still masked', async () => {
    const {rows} = await client.query(`SELECT id::text FROM request_logs WHERE path = '/mirror'`)
    const html = await (await get(`${viewer.url}/records/${rows[0].id}`, cookie)).text()
    expect(html).to.include('request headers').and.include('response body')
    expect(html).not.to.include('hunter2')
    expect(html).to.include('<span class="masked" title="parts were masked before they were stored">masked parts: ****</span>')
    expect(html).to.match(
      /--data-raw &#39;\{&#34;password&#34;:&#34;\*\*\*\*&#34;|--data-raw &#39;\{&quot;password&quot;:&quot;\*\*\*\*&quot;/,
    )
    // an event of that request (the app's, sent from a shell here): listed on the request's page, which its own page links back to
    const {rows: req} = await client.query(`SELECT request_id FROM request_logs WHERE path = '/mirror'`)
    const sent = await runCli(
      ['event', '--action', 'UPDATE', '--actor', '7', '--target', 'shop.Order:1', '--request-id', req[0].request_id, '--json'],
      {
        env: db.env,
        cwd: mkdtempSync(path.join(os.tmpdir(), 'audit-logs-ui-event-')),
      },
    )
    expect(sent.exitCode, sent.stderr).to.equal(0)
    const withEvent = await (await get(`${viewer.url}/records/${rows[0].id}`, cookie)).text()
    expect(withEvent).to.include('events of this request').and.include(`href="/records/${sent.json().id}"`)
    const event = await (await get(`${viewer.url}/records/${sent.json().id}`, cookie)).text()
    expect(event).to.include(`in the request <a href="/records/${rows[0].id}">POST /mirror → 200</a>`)
    expect((await get(`${viewer.url}/records/not-a-uuid`, cookie)).status).to.equal(404)
    expect((await get(`${viewer.url}/records/00000000-0000-7000-8000-000000000000`, cookie)).status).to.equal(404)
  })

  it('gives the dashboard figures from stats, over the range in the address (24 hours unless given)', async () => {
    const dash = await get(`${viewer.url}/dashboard?type=request`, cookie)
    expect(dash.status).to.equal(303)
    expect(dash.headers.get('location')).to.equal('/dashboard?type=request&since=24h')
    const r = await get(`${viewer.url}/api/stats?type=request&since=1h`, cookie)
    const body = (await r.json()) as any
    expect(body.bucket).to.equal('minute')
    expect(body.stats.total).to.equal(14)
    expect(body.stats.byClass['5xx']).to.equal(3)
    const wrong = await get(`${viewer.url}/api/stats?type=request&since=yesterday`, cookie)
    expect(wrong.status).to.equal(400)
    expect(((await wrong.json()) as any).errors[0]).to.deep.include({field: 'since'})
  })

  it('exports the filter as an attachment, streamed: csv, ndjson and HAR', async () => {
    const csv = await get(`${viewer.url}/export?type=request&status=5xx&format=csv`, cookie)
    expect(csv.status).to.equal(200)
    expect(csv.headers.get('content-disposition')).to.match(/^attachment; filename="audit-logs-request-[\dTZ-]+\.csv"$/)
    const lines = (await csv.text()).trim().split(/\r?\n/)
    expect(lines[0].split(',')).to.include('status_code')
    expect(lines.length).to.equal(4)
    const nd = await get(`${viewer.url}/export?type=request&path=/mirror&format=ndjson`, cookie)
    const records = (await nd.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(records).to.have.length(1)
    expect(JSON.stringify(records)).not.to.include('hunter2')
    const har = (await (await get(`${viewer.url}/export?type=request&format=har&path=/api/**`, cookie)).json()) as any
    expect(har.log.entries).to.have.length(12)
    expect((await get(`${viewer.url}/export?type=request&format=xml`, cookie)).status).to.equal(400)
  })

  it('changes nothing on GET: other methods are refused, logout is a POST with the session’s token', async () => {
    for (const method of ['PUT', 'DELETE', 'PATCH'])
      expect((await fetch(`${viewer.url}/logs/request`, {method, headers: {cookie}})).status).to.equal(405)
    expect((await get(`${viewer.url}/logout`, cookie)).status).to.equal(405)
    const own = await loginCookie(viewer.url)
    const page = await (await get(`${viewer.url}/logs/request`, own)).text()
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1]
    const post = (body: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(`${viewer.url}/logout`, {
        method: 'POST',
        redirect: 'manual',
        headers: {'content-type': 'application/x-www-form-urlencoded', cookie: own, ...headers},
        body: new URLSearchParams(body),
      })
    expect((await post({})).status).to.equal(403)
    expect((await post({csrf: 'x'.repeat(csrf.length)})).status).to.equal(403)
    expect((await post({csrf}, {origin: 'http://evil.example'})).status).to.equal(403)
    expect((await get(`${viewer.url}/logs/request`, own)).status).to.equal(200) // still logged in
    const out = await post({csrf})
    expect(out.status).to.equal(303)
    expect(out.headers.get('location')).to.equal('/login')
    expect((await get(`${viewer.url}/logs/request`, own)).status).to.equal(303) // the session is gone
  })

  it('refuses a login form without its token or from another site; sets the session cookie HttpOnly and SameSite=Strict', async () => {
    const noToken = await fetch(`${viewer.url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: {'content-type': 'application/x-www-form-urlencoded'},
      body: new URLSearchParams({username: VIEWER.name, password: VIEWER.password}),
    })
    expect(noToken.status).to.equal(403)
    const cross = await postLogin(viewer.url, {username: VIEWER.name, password: VIEWER.password}, {origin: 'http://evil.example'})
    expect(cross.status).to.equal(403)
    const crossSite = await postLogin(viewer.url, {username: VIEWER.name, password: VIEWER.password}, {'sec-fetch-site': 'cross-site'})
    expect(crossSite.status).to.equal(403)
    // a browser's own form under Referrer-Policy: no-referrer (Chromium: Origin null, Sec-Fetch-Site same-origin)
    const own = await postLogin(
      viewer.url,
      {username: VIEWER.name, password: VIEWER.password},
      {origin: 'null', 'sec-fetch-site': 'same-origin'},
    )
    expect(own.status).to.equal(303)
    const ok = await postLogin(viewer.url, {username: VIEWER.name, password: VIEWER.password})
    const session = ok.headers.getSetCookie().find((c) => c.startsWith('audit_logs_session='))!
    expect(session).to.include('HttpOnly').and.include('SameSite=Strict').and.not.include('Secure')
  })

  it('survives what it does not expect: another app’s malformed cookie, an unknown log type, a HEAD of an export, a next outside Latin-1', async () => {
    // cookies ignore ports: an app on the same host may set anything
    expect((await get(`${viewer.url}/logs/request`, `${cookie}; pref=100%; x=%E0%A4%A`)).status).to.equal(200)
    const unknown = await get(`${viewer.url}/logs/nope`, cookie)
    expect(unknown.status).to.equal(400)
    expect(await unknown.text()).to.include('There are no &quot;nope&quot; logs; these are: request, access, event, outbound, app')
    expect((await get(`${viewer.url}/export?type=nope&format=csv`, cookie)).status).to.equal(400)
    expect((await get(`${viewer.url}/api/stats?type=nope&since=1h`, cookie)).status).to.equal(400)
    expect((await fetch(`${viewer.url}/export?format=csv`, {method: 'HEAD', headers: {cookie}})).status).to.equal(405)
    const euro = await postLogin(viewer.url, {username: VIEWER.name, password: VIEWER.password, next: '/logs/request?path=/x€'})
    expect(euro.status).to.equal(303)
    expect(euro.headers.get('location')).to.equal('/logs/request?path=/x%E2%82%AC')
  })

  it('bounds live tails and exports per user, counted before they start', async () => {
    const own = await loginCookie(viewer.url)
    const controllers = [0, 1, 2, 3].map(() => new AbortController())
    const answers = await Promise.all(
      controllers.map((c) =>
        fetch(`${viewer.url}/api/tail?type=request`, {headers: {cookie: own}, signal: c.signal}).then((r) => r.status),
      ),
    )
    expect(answers.sort()).to.deep.equal([200, 200, 200, 429])
    for (const c of controllers) c.abort()
    // the slots come back once the tails end
    await until(
      async () => {
        const c = new AbortController()
        const status = (await fetch(`${viewer.url}/api/tail?type=request`, {headers: {cookie: own}, signal: c.signal})).status
        c.abort()
        return status === 200
      },
      10_000,
      'a free slot',
    )
  })

  it('limits failed logins per user (then even the right password waits) and per address; a wrong password says nothing of which part was wrong', async () => {
    const user = 'mallory'
    for (let i = 0; i < 3; i++) {
      const r = await postLogin(viewer.url, {username: user, password: 'guess' + i})
      expect(r.status).to.equal(401)
      expect(await r.text()).to.include('Wrong user name or password.')
    }
    const limited = await postLogin(viewer.url, {username: user, password: 'guess'})
    expect(limited.status).to.equal(429)
    expect(Number(limited.headers.get('retry-after'))).to.be.within(1, 900)
    // the address: 4 × 3 failures in all from here, then every user waits, alice with her right password too
    for (let i = 0; i < 9; i++) await postLogin(viewer.url, {username: `user${i}`, password: 'x'})
    const all = await postLogin(viewer.url, {username: VIEWER.name, password: VIEWER.password})
    expect(all.status).to.equal(429)
  })

  it('records its own use as events: logins, failed logins, pages opened and exports with their record counts', async () => {
    const actionsIn = async () => new Set((await client.query('SELECT DISTINCT action FROM event_logs')).rows.map((r) => r.action))
    const five = ['LOGIN', 'LOGIN_FAILED', 'VIEW', 'EXPORT', 'LOGOUT']
    await until(async () => ((have) => five.every((a) => have.has(a)))(await actionsIn()), 30_000, 'the viewer’s five kinds of events')
    const {rows} = await client.query(`SELECT action, actor_id, target_type, target_id, extra FROM event_logs ORDER BY created_at, id`)
    const actions = new Set(rows.map((r) => r.action))
    for (const a of five) expect(actions, a).to.include(a)
    const csv = rows.find((r) => r.action === 'EXPORT' && r.extra.format === 'csv')
    expect(csv).to.deep.include({actor_id: VIEWER.name, target_type: 'audit-logs.request'})
    expect(csv.extra.record_count).to.equal(3)
    expect(rows.some((r) => r.action === 'VIEW' && r.target_type === 'audit-logs.request' && r.target_id)).to.equal(true)
    expect(JSON.stringify(rows)).not.to.include(VIEWER.password)
  })

  it('counts a login attempt before checking it: concurrent tries for one user get no more than the limit', async () => {
    const own = await startViewer({...db.env, AUDIT_LOGS_UI_LOGIN_ATTEMPTS: '3'})
    try {
      const answers = await Promise.all(
        Array.from({length: 12}, (_, i) => postLogin(own.url, {username: 'concurrent', password: `guess${i}`}).then((r) => r.status)),
      )
      expect(answers.filter((s) => s === 401).length).to.be.within(1, 3)
      expect(
        answers.every((s) => [401, 429, 503].includes(s)),
        String(answers),
      ).to.equal(true)
    } finally {
      await own.stop()
    }
  })

  it('reads as the reader role: its connections cannot write, and a login that is not the reader (nor a member) is refused', async () => {
    const pool = await postgresPool(withDatabase(serverUrl(), db.name), db.name)
    const {source, release} = await pool.lease()
    try {
      const conn = (source as unknown as {db: pg.ClientBase}).db
      expect((await conn.query('SELECT current_user AS u')).rows[0].u).to.equal(`${db.name}_reader`)
      const error = await conn.query(`DELETE FROM request_logs`).catch((e: Error) => e)
      expect(String(error)).to.match(/permission denied/)
    } finally {
      release()
      await pool.close()
    }
    const admin = new pg.Client(clientConfig(serverUrl()))
    await admin.connect()
    const outsider = `${db.name}_outsider`
    await admin.query(`CREATE ROLE "${outsider}" LOGIN PASSWORD 'outsider-pass'`)
    await admin.query(`GRANT CONNECT ON DATABASE "${db.name}" TO "${outsider}"`)
    await admin.end()
    const url = new URL(withDatabase(serverUrl(), db.name))
    url.username = outsider
    url.password = 'outsider-pass'
    const r = await runCli(['ui', '--bind', '127.0.0.1:0'], {
      env: {AUDIT_LOGS_DATABASE_URL: url.toString(), AUDIT_LOGS_UI_USERS: await viewerUsers()},
    })
    expect(r.exitCode).not.to.equal(0)
    expect(r.stderr).to.include(`The viewer reads as the reader role ${db.name}_reader; ${outsider} is not it and not a member of it.`)
    expect(r.stderr).not.to.include('outsider-pass')
  })

  it('believes a reverse proxy’s user header from the trusted addresses only', async () => {
    const trusting = await startViewer({
      ...db.env,
      AUDIT_LOGS_UI_AUTH_HEADER: 'X-Forwarded-User',
      AUDIT_LOGS_UI_AUTH_PROXIES: '127.0.0.1/32',
    })
    const elsewhere = await startViewer({...db.env, AUDIT_LOGS_UI_AUTH_HEADER: 'X-Forwarded-User', AUDIT_LOGS_UI_AUTH_PROXIES: '10.9.8.7'})
    try {
      const ok = await fetch(`${trusting.url}/logs/request`, {redirect: 'manual', headers: {'x-forwarded-user': 'carol'}})
      expect(ok.status).to.equal(200)
      expect(await ok.text()).to.include('<span class="user" title="signed in">carol</span>')
      const ignored = await fetch(`${elsewhere.url}/logs/request`, {redirect: 'manual', headers: {'x-forwarded-user': 'carol'}})
      expect(ignored.status).to.equal(303)
    } finally {
      await trusting.stop()
      await elsewhere.stop()
    }
  })

  it('sets Secure on its cookies over TLS', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-ui-tls-'))
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        `${dir}/k.pem`,
        '-out',
        `${dir}/c.pem`,
        '-subj',
        '/CN=localhost',
        '-days',
        '1',
      ],
      {
        stdio: 'ignore',
      },
    )
    const tls = await startViewer({...db.env, AUDIT_LOGS_UI_TLS_CERT: `${dir}/c.pem`, AUDIT_LOGS_UI_TLS_KEY: `${dir}/k.pem`})
    try {
      expect(tls.url).to.match(/^https:/)
      const r = await new Promise<http.IncomingMessage>((resolve, reject) =>
        https.get(`${tls.url}/login`, {rejectUnauthorized: false}, resolve).on('error', reject),
      )
      r.resume()
      expect(r.statusCode).to.equal(200)
      const set = r.headers['set-cookie'] ?? []
      expect(set.join('\n')).to.include('Secure').and.include('HttpOnly').and.include('SameSite=Strict')
    } finally {
      await tls.stop()
    }
  })

  it('refuses to start with no one to let in, or a header believed from no one', async () => {
    const none = await runCli(['ui', '--bind', '127.0.0.1:0'], {env: {...db.env, AUDIT_LOGS_UI_USERS: ''}})
    expect(none.exitCode).to.equal(2)
    expect(none.stderr).to.include('The viewer lets no one in: set uiUsers')
    const header = await runCli(['ui', '--bind', '127.0.0.1:0'], {
      env: {...db.env, AUDIT_LOGS_UI_USERS: '', AUDIT_LOGS_UI_AUTH_HEADER: 'X-User'},
    })
    expect(header.stderr).to.include('uiAuthHeader is set but uiAuthProxies is empty')
    const halfTls = await runCli(['ui', '--bind', '127.0.0.1:0'], {
      env: {...db.env, AUDIT_LOGS_UI_USERS: await viewerUsers(), AUDIT_LOGS_UI_TLS_CERT: '/tmp/c.pem'},
    })
    expect(halfTls.stderr).to.include('uiTlsCert and uiTlsKey go together')
    const bad = await runCli(['ui', '--bind', '127.0.0.1:0'], {env: {...db.env, AUDIT_LOGS_UI_USERS: 'bob:plaintext-password'}})
    expect(bad.exitCode).not.to.equal(0)
    expect(bad.stderr).to.include('uiUsers').and.include('NAME:HASH').and.not.include('plaintext-password')
  })
})

describe('audit-logs ui hash-password', () => {
  it('reads the password from stdin and prints a scrypt hash that logs in; refuses a short one', async () => {
    const {execa} = await import('execa')
    const {BIN} = await import('../helpers/cli.js')
    const r = await execa(process.execPath, [BIN, 'ui', 'hash-password'], {
      input: 'a long enough pass\n',
      env: {OCLIF_SKIP_NEW_VERSION_CHECK: '1'},
    })
    expect(r.stdout).to.match(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/)
    const {Users} = await import('../../src/ui/auth.js')
    const users = new Users([`dave:${r.stdout}`])
    expect(await users.check('dave', 'a long enough pass')).to.equal(true)
    expect(await users.check('dave', 'a long enough pas')).to.equal(false)
    expect(await users.check('erin', 'a long enough pass')).to.equal(false)
    const short = await execa(process.execPath, [BIN, 'ui', 'hash-password'], {
      input: 'short',
      reject: false,
      env: {OCLIF_SKIP_NEW_VERSION_CHECK: '1'},
    })
    expect(short.exitCode).to.equal(2)
    expect(short.stderr).to.include('at least 8 characters')
  })
})

describe('run --ui', function () {
  let db: Awaited<ReturnType<typeof viewerDatabase>>
  let upstream: Upstream
  let run: RunningServer | undefined

  before(async () => {
    db = await viewerDatabase()
    upstream = await startUpstream()
  })
  after(async () => {
    await run?.stop()
    await upstream?.close()
    await db?.drop()
  })

  it('serves the viewer on its own listener beside the capture, sends its events through run, and stops with run', async () => {
    const {freePort} = await import('../../src/util/process.js')
    const uiPort = await freePort()
    run = await startRun(['--upstream', upstream.url, '--ui', '--ui-bind', `127.0.0.1:${uiPort}`], {
      ...db.env,
      AUDIT_LOGS_UI_USERS: await viewerUsers(),
    })
    expect(run.stderr()).to.include(`web viewer on http://127.0.0.1:${uiPort}`)
    const ui = `http://127.0.0.1:${uiPort}`
    // the proxied port is the app's: /login there is the upstream's answer, not the viewer's
    const proxied = await request(`${run.url}/logs/request`)
    expect(proxied.body.toString()).not.to.include('audit-logs</a>')
    const cookie = await loginCookie(ui)
    await request(`${run.url}/api/orders/7`)
    const client = new pg.Client(clientConfig(withDatabase(serverUrl(), db.name)))
    await client.connect()
    try {
      await until(
        async () => (await (await get(`${ui}/logs/request?path=/api/orders/7`, cookie)).text()).includes('/api/orders/7'),
        30_000,
        'the record in the viewer',
      )
      await until(
        async () => Number((await client.query(`SELECT count(*) AS n FROM event_logs WHERE action = 'LOGIN'`)).rows[0].n) === 1,
        30_000,
        'the login event',
      )
      const stopped = await run.stop()
      run = undefined
      expect(stopped.exitCode).to.equal(0)
      // the viewer went with run
      const gone = await fetch(`${ui}/login`).then(
        () => false,
        () => true,
      )
      expect(gone).to.equal(true)
      // its last page view, sent at its shutdown, reached the database through run
      expect(Number((await client.query(`SELECT count(*) AS n FROM event_logs WHERE action = 'VIEW'`)).rows[0].n)).to.be.at.least(1)
    } finally {
      await client.end()
    }
  })

  it('gives the viewer run’s settings whole (a list item with a comma) and leaves events open without a token where they were', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-ui-run-'))
    const {writeFileSync} = await import('node:fs')
    writeFileSync(
      path.join(dir, 'audit-logs.config.json'),
      JSON.stringify({loginRoutes: ['POST /login 2xx,302'], eventsAllowNoToken: true}),
    )
    const {freePort} = await import('../../src/util/process.js')
    const uiPort = await freePort()
    const own = await startRun(
      ['--upstream', upstream.url, '--ui', '--ui-bind', `127.0.0.1:${uiPort}`, '--config', path.join(dir, 'audit-logs.config.json')],
      {...db.env, AUDIT_LOGS_UI_USERS: await viewerUsers()},
      {dir},
    )
    try {
      expect(own.stderr()).to.include(`web viewer on http://127.0.0.1:${uiPort}`)
      const r = await request(`${own.adminUrl}/_audit/events`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({action: 'DEPLOY', actor: 'ci'}),
      })
      expect(r.status, r.body.toString()).to.equal(200)
      await loginCookie(`http://127.0.0.1:${uiPort}`) // the viewer's own events go in the same way
    } finally {
      await own.stop()
    }
  })

  it('does not start when the viewer cannot: its reason is said', async () => {
    const failed = await startRun(['--upstream', upstream.url, '--ui'], {...db.env, AUDIT_LOGS_UI_USERS: ''}, {expectFailure: true})
    const r = await failed.child
    expect(r.exitCode).to.not.equal(0)
    expect(failed.stderr()).to.include('The web viewer (--ui) did not start').and.include('The viewer lets no one in')
  })
})

describe('audit-logs ui from MongoDB and from the files', function () {
  let db: Awaited<ReturnType<typeof viewerDatabase>>
  let mongo: TestMongo
  let upstream: Upstream
  let logDir: string

  before(async function () {
    skipUnless(this, !!mongoServerUri(), 'no MongoDB server', {expectedInCi: true})
    db = await viewerDatabase()
    mongo = await freshMongo('ui')
    upstream = await startUpstream()
    const env = {...db.env, AUDIT_LOGS_MONGO_URI: mongo.uri, AUDIT_LOGS_MONGO_DB_NAME: mongo.dbName}
    const run = await startRun(['--upstream', upstream.url, '--stores', 'both'], env)
    logDir = run.logDir
    try {
      for (let i = 0; i < 8; i++) await request(`${run.url}/api/items/${i}`, {headers: {'x-simulate-status': i % 3 === 0 ? '500' : '200'}})
      await until(
        async () => (await mongo.client.db(mongo.dbName).collection('request_logs').countDocuments()) === 8,
        30_000,
        'the documents',
      )
    } finally {
      await run.stop()
    }
  })
  after(async () => {
    await upstream?.close()
    await mongo?.drop()
    await db?.drop()
  })

  it('lists, shows and exports the same records as from PostgreSQL', async () => {
    const ids = async (viewer: RunningViewer, cookie: string, q: string) =>
      [...(await (await get(`${viewer.url}/logs/request?${q}`, cookie)).text()).matchAll(/data-id="([^"]+)"/g)].map((m) => m[1])
    const env = {...db.env, AUDIT_LOGS_MONGO_URI: mongo.uri, AUDIT_LOGS_MONGO_DB_NAME: mongo.dbName}
    const viewers = await Promise.all([
      startViewer(env),
      startViewer(env, ['--source', 'mongo']),
      startViewer(env, ['--source', 'files', '--log-dir', logDir]),
    ])
    try {
      const cookies = await Promise.all(viewers.map((v) => loginCookie(v.url)))
      const [pgAll, mongoAll, filesAll] = await Promise.all(viewers.map((v, i) => ids(v, cookies[i], 'limit=25')))
      expect(pgAll).to.have.length(8)
      expect(mongoAll).to.deep.equal(pgAll)
      expect(filesAll).to.deep.equal(pgAll)
      for (const [i, v] of viewers.entries()) {
        expect(await ids(v, cookies[i], 'status=5xx&path=/api/**'), v.url).to.deep.equal(
          await ids(viewers[0], cookies[0], 'status=5xx&path=/api/**'),
        )
        const detail = await (await get(`${v.url}/records/${pgAll[3]}`, cookies[i])).text()
        expect(detail).to.include('/api/items/')
        const csv = await (await get(`${v.url}/export?type=request&status=5xx&format=csv`, cookies[i])).text()
        expect(csv.trim().split(/\r?\n/)).to.have.length(4)
        const stats = (await (await get(`${v.url}/api/stats?type=request&since=1h`, cookies[i])).json()) as any
        expect(stats.stats.total).to.equal(8)
        expect(stats.stats.byClass['5xx']).to.equal(3)
      }
    } finally {
      await Promise.all(viewers.map((v) => v.stop()))
    }
  })
})
