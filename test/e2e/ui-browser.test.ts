import {readFileSync} from 'node:fs'
import http from 'node:http'
import {setTimeout as sleep} from 'node:timers/promises'
import path from 'node:path'
import {expect} from 'chai'
import pg from 'pg'
import type {Browser, BrowserContext, Page} from 'playwright-core'
import {clientConfig, withDatabase} from '../../src/stores/postgres/connection.js'
import {
  type Alarms,
  CHROMIUM,
  chartScales,
  hasChromium,
  injectedMarkup,
  keepCharts,
  launchChromium,
  newContext,
  visibleText,
  watch,
} from '../helpers/browser.js'
import {ROOT, runCli} from '../helpers/cli.js'
import {serverUrl} from '../helpers/db.js'
import {type RunningServer, startRun, until} from '../helpers/run-server.js'
import {parseCsv} from '../helpers/csv.js'
import {skipUnless} from '../helpers/skip.js'
import {type RunningViewer, VIEWER, startViewer, viewerDatabase} from '../helpers/ui.js'
import {HOSTILE_HEADER, HOSTILE_HTML, HOSTILE_SVG, HOSTILE_USER, type Upstream, startUpstream} from '../helpers/upstream.js'

/**
 * The viewer in a real browser: Debian's Chromium driven by playwright-core,
 * against `audit-logs ui` on a real database whose records came through a
 * real `audit-logs run` in front of a real app. UPDATE_SCREENSHOTS=1 also
 * saves each page to docs/ui-*.png (the README shows them).
 */

const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === '1'

/** One request as a client sends it, the path as it is on the wire (no URL parser re-encodes it). */
type Sent = {
  method: string
  path: string
  headers?: Record<string, string>
  body?: string
  /** what the app answers (the record's status) */
  status: number
}

function send(run: RunningServer, r: Omit<Sent, 'status'>): Promise<number> {
  const u = new URL(run.url)
  return new Promise((resolve, reject) => {
    const req = http.request({host: u.hostname, port: u.port, path: r.path, method: r.method, headers: r.headers, agent: false}, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode!))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(r.body)
  })
}

/** A bearer token whose `sub` the proxy records as the user (it decodes, never verifies, a JWT). */
const bearer = (sub: string) =>
  `Bearer ${Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({sub, iat: 1_790_000_000})).toString('base64url')}.c2lnbmF0dXJl`

const BROWSER_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36'
const MOBILE_UA = 'ShopApp/4.12.0 (iPhone; iOS 18.1)'

/** Traffic of a small shop's API, as its clients send it: users in bearer tokens, addresses from the load balancer. */
function call(
  method: string,
  p: string,
  o: {user?: string; ip: string; status?: number; delayMs?: number; json?: unknown; ua?: string; headers?: Record<string, string>},
): Sent {
  const headers: Record<string, string> = {
    'user-agent': o.ua ?? BROWSER_UA,
    accept: 'application/json',
    'x-forwarded-for': o.ip,
    ...o.headers,
  }
  if (o.user) headers.authorization = bearer(o.user)
  if (o.status) headers['x-simulate-status'] = String(o.status)
  if (o.delayMs) headers['x-simulate-delay-ms'] = String(o.delayMs)
  let body: string | undefined
  if (o.json !== undefined) {
    body = JSON.stringify(o.json)
    headers['content-type'] = 'application/json'
  }
  const status = o.status ?? (p.startsWith('/status/') ? Number(p.split('/')[2]) : method === 'POST' && p.startsWith('/api/') ? 201 : 200)
  return {method, path: p, headers, body, status}
}

const MARIA = 'maria.k'
const TANAKA = 'j.tanaka'
const BOT = 'ops-bot'

/** Before the time filter's point in time. */
const FIRST: Sent[] = [
  call('GET', '/api/orders', {user: MARIA, ip: '203.0.113.24'}),
  call('GET', '/api/orders/1042', {user: MARIA, ip: '203.0.113.24'}),
  call('POST', '/api/orders', {user: MARIA, ip: '203.0.113.24', json: {sku: 'BOOT-42', quantity: 1, note: 'gift wrap, please'}}),
  call('GET', '/api/users/me', {user: TANAKA, ip: '198.51.100.7', ua: MOBILE_UA}),
  call('POST', '/api/payments', {
    user: TANAKA,
    ip: '198.51.100.7',
    ua: MOBILE_UA,
    status: 502,
    delayMs: 300,
    json: {order: 1043, amount: 89.5},
  }),
  call('GET', '/api/inventory/sku-77', {user: BOT, ip: '10.20.0.5', ua: 'inventory-sync/2.3', status: 503, delayMs: 120}),
  {...call('POST', '/login', {ip: '192.0.2.55', json: {user: 'maria.k', password: 'hunter2'}}), status: 401},
  call('POST', '/login', {ip: '203.0.113.24', json: {user: 'maria.k', password: 'right'}}),
  call('GET', '/whoami', {ip: '203.0.113.24'}),
  call('GET', '/slow?ms=1100', {user: BOT, ip: '10.20.0.5', ua: 'inventory-sync/2.3'}),
  call('GET', '/status/503', {ip: '192.0.2.55'}),
  call('GET', '/api/orders?page=2', {user: MARIA, ip: '203.0.113.24'}),
  call('DELETE', '/api/orders/1041', {user: MARIA, ip: '203.0.113.24', status: 204}),
  call('GET', '/api/reports/daily', {user: BOT, ip: '10.20.0.5', ua: 'inventory-sync/2.3', status: 404}),
  call('PUT', '/api/users/me', {user: TANAKA, ip: '198.51.100.7', ua: MOBILE_UA, json: {name: 'Jun Tanaka', newsletter: false}}),
]
/** After it. */
const SECOND: Sent[] = [
  call('GET', '/api/orders', {user: TANAKA, ip: '198.51.100.7', ua: MOBILE_UA}),
  call('POST', '/api/payments', {user: MARIA, ip: '203.0.113.24', status: 500, delayMs: 150, json: {order: 1044, amount: 23}}),
  call('GET', '/api/orders/1043', {user: BOT, ip: '10.20.0.5', ua: 'inventory-sync/2.3', status: 404}),
  call('GET', '/api/inventory/sku-12', {user: BOT, ip: '10.20.0.5', ua: 'inventory-sync/2.3'}),
  call('POST', '/login', {ip: '198.51.100.7', ua: MOBILE_UA, json: {user: 'j.tanaka', password: 'right'}}),
  call('GET', '/status/500', {ip: '192.0.2.55'}),
]

/**
 * For the screenshots only: a few minutes of traffic before the rest, one round a minute, so that the
 * dashboard's per-minute charts have a history to draw (none of it POST /api/orders, nor a 5xx of /api/*).
 */
const EARLIER: Sent[][] = SCREENSHOTS
  ? [
      [
        call('GET', '/api/products?category=boots', {ip: '192.0.2.80'}),
        call('GET', '/api/orders', {user: MARIA, ip: '203.0.113.24'}),
        call('GET', '/api/users/me', {user: TANAKA, ip: '198.51.100.7', ua: MOBILE_UA}),
      ],
      [
        call('GET', '/api/products/BOOT-42', {ip: '192.0.2.80'}),
        call('GET', '/api/orders/1039', {user: MARIA, ip: '203.0.113.24'}),
        call('POST', '/api/cart', {user: MARIA, ip: '203.0.113.24', json: {sku: 'BOOT-42', quantity: 1}}),
        call('GET', '/api/inventory/sku-31', {user: BOT, ip: '10.20.0.5', ua: 'inventory-sync/2.3', status: 503, delayMs: 200}),
        call('GET', '/api/products?category=coats', {ip: '192.0.2.80'}),
      ],
      [
        call('GET', '/api/orders', {user: BOT, ip: '10.20.0.5', ua: 'inventory-sync/2.3'}),
        call('POST', '/api/payments', {user: MARIA, ip: '203.0.113.24', json: {order: 1040, amount: 120}}),
        call('GET', '/api/orders/1040', {user: MARIA, ip: '203.0.113.24'}),
        call('GET', '/api/unknown', {ip: '192.0.2.55', status: 404}),
      ],
      [
        call('GET', '/api/products?category=boots', {ip: '198.51.100.23', ua: MOBILE_UA}),
        call('GET', '/api/products/COAT-7', {ip: '198.51.100.23', ua: MOBILE_UA}),
        call('POST', '/api/cart', {user: TANAKA, ip: '198.51.100.7', ua: MOBILE_UA, json: {sku: 'COAT-7', quantity: 2}}),
        call('GET', '/api/inventory/sku-12', {user: BOT, ip: '10.20.0.5', ua: 'inventory-sync/2.3', delayMs: 450}),
        call('GET', '/api/users/me', {user: TANAKA, ip: '198.51.100.7', ua: MOBILE_UA}),
        call('GET', '/api/orders', {user: TANAKA, ip: '198.51.100.7', ua: MOBILE_UA}),
      ],
      [
        call('GET', '/api/orders/1041', {user: MARIA, ip: '203.0.113.24'}),
        call('GET', '/api/reports/weekly', {user: BOT, ip: '10.20.0.5', ua: 'inventory-sync/2.3', delayMs: 700}),
        call('GET', '/api/products?category=coats', {ip: '192.0.2.80'}),
      ],
    ]
  : []
/** Everything sent before the time filter's point, and everything. */
const BEFORE = [...EARLIER.flat(), ...FIRST]
const ALL = [...BEFORE, ...SECOND]

/** How a list row reads: method, path (without the query, as the record keeps it) and status. */
const rowOf = (s: Sent) => `${s.method} ${s.path.split('?')[0]} ${s.status}`
const rowsOf = (list: Sent[]) => list.map(rowOf).sort()

/** The database, the app, `run` in front of it writing into the database, and the viewer reading it. */
type Stack = {
  db: Awaited<ReturnType<typeof viewerDatabase>>
  app: Upstream
  run: RunningServer
  viewer: RunningViewer
  pg: pg.Client
  requests: () => Promise<number>
  stop(): Promise<void>
}

async function startStack(): Promise<Stack> {
  const db = await viewerDatabase()
  const app = await startUpstream()
  const run = await startRun(['--upstream', app.url, '--workers', '1'], {...db.env, AUDIT_LOGS_TRUSTED_PROXIES: '127.0.0.1'})
  const viewer = await startViewer(db.env)
  const client = new pg.Client(clientConfig(withDatabase(serverUrl(), db.name)))
  await client.connect()
  return {
    db,
    app,
    run,
    viewer,
    pg: client,
    requests: async () => Number((await client.query('SELECT count(*) AS n FROM request_logs')).rows[0].n),
    async stop() {
      await client.end().catch(() => {})
      await viewer.stop()
      await run.stop()
      await app.close()
      await db.drop()
    },
  }
}

/** Sends each in turn (one at a time, so the records' times follow the list's order) and waits until all are in the database. */
async function sendAll(stack: Stack, list: Array<Omit<Sent, 'status'> & {status?: number}>): Promise<void> {
  const before = await stack.requests()
  for (const s of list) {
    const status = await send(stack.run, s)
    if (s.status !== undefined) expect(status, `${s.method} ${s.path}`).to.equal(s.status)
  }
  try {
    await until(async () => (await stack.requests()) >= before + list.length, 30_000, `${list.length} records in the database`)
  } catch (error) {
    const {rows} = await stack.pg.query('SELECT method, path FROM request_logs ORDER BY created_at')
    throw new Error(
      `${(error as Error).message}; there are ${rows.map((r) => `${r.method} ${r.path}`).join(', ')}\nrun:\n${stack.run.stderr()}`,
      {cause: error},
    )
  }
}

const shot = async (page: Page, name: string) => {
  if (SCREENSHOTS) await page.screenshot({path: path.join(ROOT, 'docs', `ui-${name}.png`), fullPage: true})
}

const pathOf = (page: Page) => new URL(page.url()).pathname

/** Logs in through the login page's form. */
async function logIn(page: Page, url: string, user = VIEWER.name, password = VIEWER.password) {
  await page.goto(`${url}/login`)
  await page.fill('#username', user)
  await page.fill('#password', password)
  const answered = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/login')
  await page.click('#login')
  const answer = await answered
  await page.waitForLoadState('load')
  return answer.status()
}

/** The list's rows as "METHOD path status". */
async function listRows(page: Page): Promise<string[]> {
  const rows = page.locator('#records tbody tr')
  const out: string[] = []
  for (const row of await rows.all()) {
    const [method, status, p] = await Promise.all(['method', 'status_code', 'path'].map((c) => row.locator(`td.c-${c}`).innerText()))
    out.push(`${method.trim()} ${p.trim()} ${status.trim()}`)
  }
  return out.sort()
}

/** Fills the filter bar (a field left out is emptied) and applies it, as a user does. */
async function filter(page: Page, fields: Record<string, string>) {
  for (const name of ['status', 'method', 'path', 'user', 'ip', 'since', 'until', 'min-duration', 'max-duration', 'flag', 'search']) {
    const input = page.locator(`#f-${name}`)
    if (await input.count()) await input.fill(fields[name] ?? '')
  }
  const navigated = page.waitForResponse((r) => r.request().isNavigationRequest() && r.request().frame() === page.mainFrame())
  await page.click('#apply')
  await navigated
  await page.waitForLoadState('load')
}

describe('audit-logs ui in a browser (Chromium, real database, records from a real run)', function () {
  this.timeout(240_000)
  let browser: Browser

  before(async function () {
    skipUnless(this, hasChromium(), `no Chromium at ${CHROMIUM} (Debian's chromium package: .ci/run installs it)`, {expectedInCi: true})
    browser = await launchChromium()
  })
  after(async () => {
    await browser?.close()
  })

  describe('a user’s session: log in, filter, a record, the dashboard, an export, the live tail, log out', function () {
    let stack: Stack
    let context: BrowserContext
    let page: Page
    let alarms: Alarms
    let between: string

    before(async function () {
      if (!browser) return this.skip()
      if (SCREENSHOTS) this.timeout(600_000)
      stack = await startStack()
      for (const [i, round] of EARLIER.entries()) {
        if (i) await sleep(60_000) // (screenshots only) one round a minute
        await sendAll(stack, round)
      }
      await sendAll(stack, FIRST)
      // the time filter's point: after every record of the first part, before any of the second
      const last = (await stack.pg.query('SELECT max(created_at) AS t FROM request_logs')).rows[0].t as Date
      between = new Date(last.getTime() + 1).toISOString()
      await until(() => Date.now() > last.getTime() + 5, 5_000, 'a millisecond')
      await sendAll(stack, SECOND)
      context = await newContext(browser)
      alarms = await watch(context)
      await keepCharts(context)
      page = await context.newPage()
    })
    after(async () => {
      await context?.close()
      await stack?.stop()
    })
    /** Each test can run on its own (mocha -g): it logs in when the one before did not leave it logged in. */
    const loggedIn = async () => {
      if (!(await context.cookies()).some((c) => c.name === 'audit_logs_session' && c.value))
        expect(await logIn(page, stack.viewer.url)).to.equal(303)
    }
    afterEach(function () {
      if (this.currentTest?.state === 'failed' && stack)
        console.log(`viewer output:\n${stack.viewer.output()}\nrun:\n${stack.run.stderr()}`)
    })

    it('logs in and out in a fresh Chromium, no request of it touched (its forms’ Origin: null, its own /favicon.ico)', async () => {
      const plain = await newContext(browser)
      try {
        const p = await plain.newPage()
        // every request the browser makes, its own included (Playwright's events leave out /favicon.ico)
        const cdp = await plain.newCDPSession(p)
        const inFlight = new Map<string, string>()
        const seen: string[] = []
        let lastActivity = Date.now()
        cdp.on('Network.requestWillBeSent', (e) => {
          inFlight.set(e.requestId, e.request.url)
          seen.push(`${e.request.method} ${new URL(e.request.url).pathname}${new URL(e.request.url).search}`)
          lastActivity = Date.now()
        })
        for (const done of ['Network.loadingFinished', 'Network.loadingFailed'] as const)
          cdp.on(done, (e) => {
            inFlight.delete(e.requestId)
            lastActivity = Date.now()
          })
        await cdp.send('Network.enable')
        // as a user: the page, a moment to type (the browser's requests settle), then the form
        const quiet = () => until(() => inFlight.size === 0 && Date.now() - lastActivity > 500, 10_000, 'the browser’s requests to settle')
        await p.goto(`${stack.viewer.url}/logs/request`)
        await quiet()
        await p.fill('#username', VIEWER.name)
        await p.fill('#password', VIEWER.password)
        const [answer] = await Promise.all([p.waitForResponse((r) => r.request().method() === 'POST'), p.click('#login')])
        expect(
          answer.status(),
          `POST /login answered: ${await p.locator('body').innerText()}\nthe browser asked for: ${seen.join(', ')}`,
        ).to.equal(303)
        await p.waitForURL((u) => u.pathname === '/logs/request')
        await quiet()
        const [out] = await Promise.all([p.waitForResponse((r) => r.request().method() === 'POST'), p.click('#logout')])
        expect(out.status(), `POST /logout answered: ${await p.locator('body').innerText()}`).to.equal(303)
        await p.waitForURL((u) => u.pathname === '/login')
      } finally {
        await plain.close()
      }
    })

    it('refuses a wrong password (the login page again, with the reason), then lets the user in', async () => {
      await page.goto(`${stack.viewer.url}/logs/request`)
      expect(pathOf(page)).to.equal('/login')
      expect(new URL(page.url()).searchParams.get('next')).to.equal('/logs/request')
      await shot(page, 'login')

      await page.fill('#username', VIEWER.name)
      await page.fill('#password', 'not the password')
      const [refused] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#login')])
      expect(refused.status()).to.equal(401)
      expect(await page.locator('#login-error').innerText()).to.equal('Wrong user name or password.')
      expect(pathOf(page)).to.equal('/login')
      expect(await page.inputValue('#username')).to.equal(VIEWER.name)
      expect((await context.cookies()).filter((c) => c.name === 'audit_logs_session' && c.value)).to.have.length(0)

      await page.fill('#password', VIEWER.password)
      await Promise.all([page.waitForURL((u) => u.pathname === '/logs/request'), page.click('#login')])
      expect(await page.locator('h1').innerText()).to.equal('request logs')
      expect(await page.locator('header .user').innerText()).to.equal(VIEWER.name)
      expect(await listRows(page)).to.deep.equal(rowsOf(ALL))
      await shot(page, 'list')
      expect(alarms.all()).to.deep.equal([])
    })

    it('filters by status, path glob and time through the filter bar; a wrong field shows the CLI’s message beside it', async () => {
      await loggedIn()
      await page.goto(`${stack.viewer.url}/logs/request`)
      const all = ALL

      await filter(page, {status: '5xx'})
      expect(new URL(page.url()).searchParams.get('status')).to.equal('5xx')
      expect(await listRows(page)).to.deep.equal(rowsOf(all.filter((s) => s.status >= 500)))
      expect(await page.locator('#records tbody tr.s5xx').count()).to.equal(all.filter((s) => s.status >= 500).length)

      // one path segment: /api/payments, not /api/inventory/sku-77
      await filter(page, {status: '5xx', path: '/api/*'})
      expect(await listRows(page)).to.deep.equal(rowsOf(all.filter((s) => s.status >= 500 && /^\/api\/[^/?]*(\?|$)/.test(s.path))))
      expect(await listRows(page)).to.deep.equal(['POST /api/payments 500', 'POST /api/payments 502'])

      await filter(page, {path: '/api/**', status: '>=400'})
      expect(await listRows(page)).to.deep.equal(rowsOf(all.filter((s) => s.status >= 400 && s.path.startsWith('/api/'))))

      await filter(page, {since: between})
      expect(await listRows(page)).to.deep.equal(rowsOf(SECOND))
      await filter(page, {until: between})
      expect(await listRows(page)).to.deep.equal(rowsOf(BEFORE))
      await filter(page, {since: '1h'})
      expect(await listRows(page)).to.deep.equal(rowsOf(all))
      await filter(page, {since: '1h', status: '404'})
      expect(await listRows(page)).to.deep.equal(rowsOf(all.filter((s) => s.status === 404)))

      await filter(page, {status: 'abc', path: '/api/*'})
      const wrong = page.locator('label.field.wrong')
      expect(await wrong.count()).to.equal(1)
      expect(await wrong.locator('#f-status').getAttribute('aria-invalid')).to.equal('true')
      const message = await wrong.locator('.problem').innerText()
      expect(message).to.equal(
        '--status "abc" is not understood. Accepted: 500, >=400, <300, 4xx, 400-499, !=200, or a list such as 401,403',
      )
      const cli = await runCli(['query', '--status', 'abc'])
      expect(cli.exitCode).to.not.equal(0)
      expect(cli.stderr).to.include(message)
      // the typed values are kept for correcting; nothing was queried
      expect(await page.inputValue('#f-status')).to.equal('abc')
      expect(await page.inputValue('#f-path')).to.equal('/api/*')
      expect(await page.locator('#records').count()).to.equal(0)
      expect(alarms.all()).to.deep.equal([])
    })

    it('opens a record: its summary, headers (a secret masked), bodies pretty-printed, and the request as curl', async () => {
      await loggedIn()
      await page.goto(`${stack.viewer.url}/logs/request?path=/api/orders&method=POST`)
      expect(await listRows(page)).to.deep.equal(['POST /api/orders 201'])
      await Promise.all([
        page.waitForURL((u) => u.pathname.startsWith('/records/')),
        page.locator('#records tbody tr td a').first().click(),
      ])
      const id = pathOf(page).split('/')[2]
      expect(id).to.match(/^[0-9a-f-]{36}$/)
      expect(await page.locator('#record-title').innerText()).to.equal(`POST ${stack.run.url}/api/orders`)
      const summary = await visibleText(page, '#summary')
      for (const text of ['201', MARIA, '203.0.113.24', BROWSER_UA]) expect(summary).to.include(text)

      const header = (section: string, name: string) =>
        page.locator(`#${section} tr`, {has: page.locator('th', {hasText: new RegExp(`^${name}$`)})}).locator('td')
      expect(await header('request-headers', 'content-type').innerText()).to.equal('application/json')
      expect(await header('request-headers', 'x-forwarded-for').innerText()).to.equal('203.0.113.24')
      // the bearer token was masked before it was stored, and is shown as masked
      expect(await header('request-headers', 'authorization').locator('.masked').count()).to.be.greaterThan(0)
      expect(await header('request-headers', 'authorization').innerText()).to.not.include(bearer(MARIA).split('.')[1])
      expect(await header('response-headers', 'content-type').innerText()).to.equal('application/json; charset=utf-8')

      const bodies = page.locator('section.body')
      expect(await bodies.count()).to.equal(2)
      expect(await bodies.nth(0).locator('h2').innerText()).to.match(/^request body json/)
      expect(await bodies.nth(0).locator('pre').innerText()).to.equal(
        JSON.stringify({sku: 'BOOT-42', quantity: 1, note: 'gift wrap, please'}, null, 2),
      )
      expect(JSON.parse(await bodies.nth(1).locator('pre').innerText())).to.deep.equal({
        ok: true,
        resource: 'orders',
        received: {sku: 'BOOT-42', quantity: 1, note: 'gift wrap, please'},
      })
      const curl = await page.locator('#curl').innerText()
      expect(curl).to.match(/^curl -X 'POST' 'http:\/\/127\.0\.0\.1:\d+\/api\/orders'/)
      expect(curl).to.include(`--data-raw '{"sku":"BOOT-42"`)
      await shot(page, 'detail')

      // the back link, and a record that does not exist
      await Promise.all([page.waitForURL((u) => u.pathname === '/logs/request'), page.click('p.crumbs a')])
      const missing = await page.goto(`${stack.viewer.url}/records/00000000-0000-7000-8000-000000000000`)
      expect(missing!.status()).to.equal(404)
      expect(await page.locator('p.problem').innerText()).to.include('no record has the id')
      expect(alarms.all()).to.deep.equal([])
    })

    it('draws the dashboard: figures, top lists and the uPlot charts', async () => {
      await loggedIn()
      await page.goto(`${stack.viewer.url}/logs/request`)
      await Promise.all([page.waitForURL((u) => u.pathname === '/dashboard'), page.click('header nav a[href="/dashboard"]')])
      // the range is written into the address
      expect(new URL(page.url()).searchParams.get('since')).to.equal('24h')
      await page.goto(`${stack.viewer.url}/dashboard?type=request&since=15m`)
      const all = ALL
      await page.locator('#chart-volume canvas').waitFor()
      expect(await page.locator('#dash-state').innerText()).to.equal('')
      const figures = Object.fromEntries(
        await Promise.all(
          (await page.locator('#figures .figure').all()).map(async (f) => [
            await f.locator('.label').innerText(),
            await f.locator('.value').innerText(),
          ]),
        ),
      )
      expect(figures.records).to.equal(String(all.length))
      expect(figures['5xx']).to.equal(String(all.filter((s) => s.status >= 500).length))
      expect(figures['4xx']).to.equal(String(all.filter((s) => s.status >= 400 && s.status < 500).length))
      expect(figures['error rate (5xx)']).to.equal(`${((100 * all.filter((s) => s.status >= 500).length) / all.length).toFixed(2)} %`)
      expect(Number(figures.slow), JSON.stringify(figures)).to.be.at.least(1) // /slow?ms=1100

      for (const id of ['chart-volume', 'chart-errors']) {
        const box = page.locator(`#${id}`)
        expect(Number(await box.getAttribute('data-points'))).to.be.at.least(1)
        const canvas = box.locator('canvas').first()
        const size = await canvas.boundingBox()
        expect(size!.width).to.be.greaterThan(100)
        expect(size!.height).to.be.greaterThan(100)
        // something is drawn on it: pixels that are not transparent
        const inked = await canvas.evaluate((c: any) => {
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data
          let n = 0
          for (let i = 3; i < d.length; i += 4) if (d[i]) n++
          return n
        })
        expect(inked).to.be.greaterThan(100)
      }
      const busiest = page.locator('section.top', {has: page.locator('h2', {hasText: 'busiest paths'})})
      const top = await busiest.locator('tbody tr').first().locator('td').allInnerTexts()
      expect(top).to.deep.equal(['/api/orders', String(all.filter((s) => s.path.split('?')[0] === '/api/orders').length)])
      // a top path links to the list filtered to it
      const href = await busiest.locator('tbody tr a').first().getAttribute('href')
      expect(new URL(href!, stack.viewer.url).searchParams.get('path')).to.equal('/api/orders')
      await shot(page, 'dashboard')
      expect(alarms.all()).to.deep.equal([])
    })

    it('draws the charts over the range asked for: with since=1h, a time axis of the last hour (not years)', async () => {
      await loggedIn()
      await page.goto(`${stack.viewer.url}/dashboard?type=request&since=1h`)
      await page.locator('#chart-errors canvas').waitFor()
      const now = Date.now() / 1000
      const scales = await chartScales(page)
      expect(scales.map((s) => s.id)).to.deep.equal(['chart-volume', 'chart-errors'])
      for (const s of scales) {
        const shown = `${s.id}: ${new Date(s.min * 1000).toISOString()} to ${new Date(s.max * 1000).toISOString()}`
        expect(s.min, shown).to.be.at.least(now - 3600 - 120)
        expect(s.max, shown).to.be.at.most(now + 120)
        expect(s.max - s.min, `${shown}: the hour asked for`).to.be.at.least(3600 - 120)
      }
    })

    it('exports the filtered records as CSV through the page’s link (an attachment), whose rows are the list’s', async () => {
      await loggedIn()
      await page.goto(`${stack.viewer.url}/logs/request`)
      await filter(page, {status: '5xx', since: '1h'})
      const link = page.locator('a.export', {hasText: /^csv$/})
      const href = await link.getAttribute('href')
      expect(new URL(href!, stack.viewer.url).searchParams.get('status')).to.equal('5xx')
      const [download] = await Promise.all([page.waitForEvent('download'), link.click()])
      expect(download.suggestedFilename()).to.match(/^audit-logs-request-[0-9TZ-]+\.csv$/)
      const file = await download.path()
      const rows = parseCsv(readFileSync(file, 'utf8'))
      const [head, ...records] = rows
      for (const c of ['id', 'created_at', 'method', 'path', 'status_code', 'duration_ms', 'user_id', 'ip']) expect(head).to.include(c)
      const col = (name: string) => head.indexOf(name)
      const expected = ALL.filter((s) => s.status >= 500)
      expect(records.map((r) => `${r[col('method')]} ${r[col('path')]} ${r[col('status_code')]}`).sort()).to.deep.equal(rowsOf(expected))
      for (const r of records) expect(r).to.have.length(head.length)
      // the headers of a download reach neither Playwright's events nor the page's DevTools network domain: the same
      // address asked again with the same session says attachment, CSV, and a name of the same form as the download's
      const again = await page.request.get(new URL(href!, stack.viewer.url).href)
      expect(again.status()).to.equal(200)
      expect(again.headers()['content-disposition']).to.match(/^attachment; filename="audit-logs-request-[0-9TZ-]+\.csv"$/)
      expect(again.headers()['content-type']).to.equal('text/csv; charset=utf-8')
      expect(parseCsv(await again.text())).to.have.length(rows.length)
      expect(alarms.all()).to.deep.equal([])
    })

    it('follows the live tail as records arrive; Pause holds them back (and says how many wait), Resume shows them', async () => {
      await loggedIn()
      await page.goto(`${stack.viewer.url}/tail`)
      await filter(page, {path: '/api/live/**'})
      expect(new URL(page.url()).searchParams.get('path')).to.equal('/api/live/**')
      const state = page.locator('#tail-state')
      await until(async () => (await state.innerText()) === 'live: 0 record(s) shown', 20_000, 'the stream to open')
      const rows = page.locator('#tail tbody tr')
      const live = (n: number) =>
        call('GET', `/api/live/orders/${n}`, {user: n % 2 ? MARIA : TANAKA, ip: '203.0.113.24', status: n === 2 ? 503 : undefined})

      await sendAll(stack, [live(1), live(2), live(3)])
      await until(async () => (await rows.count()) === 3, 20_000, 'three rows in the tail')
      // the newest on top, each row a link to its record, a 5xx marked
      expect(await rows.locator('td:nth-child(4)').allInnerTexts()).to.deep.equal([
        '/api/live/orders/3',
        '/api/live/orders/2',
        '/api/live/orders/1',
      ])
      expect(await rows.nth(1).getAttribute('class')).to.equal('s5xx')
      expect(await rows.nth(0).locator('td a').getAttribute('href')).to.match(/^\/records\/[0-9a-f-]{36}$/)
      expect(await state.innerText()).to.equal('live: 3 record(s) shown')

      await page.click('#pause')
      expect(await page.locator('#pause').innerText()).to.equal('Resume')
      await sendAll(stack, [live(4), live(5)])
      await until(async () => (await state.innerText()) === 'paused: 2 new record(s) waiting', 20_000, 'two records waiting')
      expect(await rows.count()).to.equal(3)

      await page.click('#pause')
      expect(await page.locator('#pause').innerText()).to.equal('Pause')
      expect(await rows.count()).to.equal(5)
      expect(await state.innerText()).to.equal('live: 5 record(s) shown')
      expect((await rows.locator('td:nth-child(4)').allInnerTexts()).slice(0, 2)).to.deep.equal([
        '/api/live/orders/5',
        '/api/live/orders/4',
      ])
      // and a record sent after Resume comes in live
      await sendAll(stack, [live(6)])
      await until(async () => (await rows.count()) === 6, 20_000, 'a sixth row')
      await shot(page, 'tail')
      expect(alarms.all()).to.deep.equal([])
    })

    it('logs out: back at the login page, and the old session opens nothing', async () => {
      await loggedIn()
      const session = (await context.cookies()).find((c) => c.name === 'audit_logs_session')!
      expect(session.value).to.have.length.greaterThan(20)
      await page.goto(`${stack.viewer.url}/logs/request`)
      await Promise.all([page.waitForURL((u) => u.pathname === '/login'), page.click('#logout')])
      expect(await page.locator('h1').innerText()).to.equal('Log in')
      expect((await context.cookies()).filter((c) => c.name === 'audit_logs_session' && c.value)).to.have.length(0)

      // the browser would have forgotten it; someone who kept the cookie gets the login page
      await context.addCookies([session])
      await page.goto(`${stack.viewer.url}/logs/request`)
      expect(pathOf(page)).to.equal('/login')
      const api = await page.request.get(`${stack.viewer.url}/api/stats?type=request&since=1h`)
      expect(api.status()).to.equal(401)
      const exported = await page.request.get(`${stack.viewer.url}/export?type=request&format=csv`)
      expect(exported.status()).to.equal(401)
      expect(alarms.all()).to.deep.equal([])
    })
  })
  describe('records whose path, headers and bodies are markup (XSS): shown as text on every page, nothing of them runs', function () {
    let stack: Stack
    /** The payloads, each one writing window.__xss (trapped) or opening a dialog, or loading an "xss-probe" URL. */
    const PATH = '/hostile/<script>window.__xss=1</script>/"><img/src=/xss-probe.png/onerror=window.__xss=2>'
    const QUERY = '?q=<svg/onload=window.__xss=3>&next=javascript:window.__xss=4'
    const HEADERS: Record<string, string> = {
      'user-agent': `<script>window.__xss=5</script><script>alert('xss-ua')</script>`,
      referer: 'javascript:window.__xss=6//',
      'x-note': '"><img src=/xss-probe.png onerror=window.__xss=7>',
      'x-template': `<%~ it.constructor.constructor('window.__xss=8')() %>{{constructor.constructor('window.__xss=8')()}}`,
      'x-close': `</textarea></pre></td></tr></table><script>window.__xss=9</script>`,
      'x-forwarded-for': '203.0.113.66',
    }
    const PAGE =
      '<!doctype html><html><body><script>window.__xss=10</script><img src=x onerror="window.__xss=11">' +
      `<iframe srcdoc="<script>window.__xss=12</script>"></iframe><a href="javascript:window.__xss=13">win</a></body></html>`
    const COMMENT = {
      comment: '<img src=/xss-probe.png onerror=window.__xss=14>',
      website: 'javascript:window.__xss=15',
      html: '</script><script>window.__xss=16</script>',
    }
    const FORM = 'name=%3Cscript%3Ewindow.__xss%3D17%3C%2Fscript%3E&url=javascript%3Awindow.__xss%3D18'
    const LOGIN_NAME = '<img src=/xss-probe.png onerror=window.__xss=31>'
    const livePath = (n: number) => `/hostile/live/${n}/<script>window.__xss=21</script>"><svg/onload=window.__xss=22>`

    before(async function () {
      if (!browser) return this.skip()
      stack = await startStack()
      await sendAll(stack, [
        {method: 'POST', path: PATH + QUERY, headers: {...HEADERS, 'content-type': 'text/html'}, body: PAGE, status: 200},
        {method: 'PUT', path: '/hostile/avatar?as=svg', headers: {'content-type': 'image/svg+xml'}, body: HOSTILE_SVG, status: 200},
        {method: 'POST', path: '/hostile/avatar-xml?as=xml', headers: {'content-type': 'application/xml'}, body: HOSTILE_SVG, status: 200},
        {
          method: 'POST',
          path: '/hostile/comment',
          headers: {'content-type': 'application/json'},
          body: JSON.stringify(COMMENT),
          status: 200,
        },
        {method: 'POST', path: '/hostile/form', headers: {'content-type': 'application/x-www-form-urlencoded'}, body: FORM, status: 200},
      ])
      // and the viewer's own audit trail: a failed login whose user name is markup (anyone can type one)
      const context = await newContext(browser)
      try {
        expect(await logIn(await context.newPage(), stack.viewer.url, LOGIN_NAME, 'wrong')).to.equal(401)
      } finally {
        await context.close()
      }
      await until(
        async () => Number((await stack.pg.query(`SELECT count(*) AS n FROM event_logs WHERE action = 'LOGIN_FAILED'`)).rows[0].n) > 0,
        30_000,
        'the failed login in the audit trail',
      )
    })
    after(async () => {
      await stack?.stop()
    })

    const idOf = async (where: string) =>
      String((await stack.pg.query(`SELECT id FROM request_logs WHERE ${where} ORDER BY created_at LIMIT 1`)).rows[0].id)

    it('the traps are live: the same payloads served as a page do run, are blocked by the CSP, and are found in the DOM (a control)', async () => {
      const csp = (await fetch(`${stack.viewer.url}/login`)).headers.get('content-security-policy')!
      for (const bypassCSP of [true, false]) {
        const context = await newContext(browser, {bypassCSP})
        try {
          const alarms = await watch(context)
          await context.route(`${stack.viewer.url}/control`, (route) =>
            route.fulfill({contentType: 'text/html', headers: {'content-security-policy': csp}, body: HOSTILE_HTML}),
          )
          const page = await context.newPage()
          await page.goto(`${stack.viewer.url}/control`)
          await until(() => alarms.strangeRequests.some((r) => r.includes('xss-probe')), 10_000, 'the probe image requested')
          expect(await injectedMarkup(page)).to.include.members([
            'an element the viewer never makes: <iframe src="javascript:window.__xss=105">',
            'a URL leading off the viewer: <a href="javascript:window.__xss=106">',
          ])
          if (bypassCSP) await until(() => alarms.ran.length > 0, 10_000, 'a payload to run')
          else {
            await until(() => alarms.csp.length > 0, 10_000, 'a CSP report')
            expect(alarms.ran).to.deep.equal([])
          }
        } finally {
          await context.close()
        }
      }
    })

    for (const bypassCSP of [false, true]) {
      it(
        bypassCSP
          ? 'with the Content Security Policy bypassed: the escaping alone keeps every payload text'
          : 'with the Content Security Policy as served: nothing is blocked, because nothing tries to run',
        async () => {
          const context = await newContext(browser, {bypassCSP})
          const alarms = await watch(context)
          const page = await context.newPage()
          const url = stack.viewer.url
          /** No element, attribute, script, dialog, request or CSP report of a payload; checked after each page. */
          const clean = async (where: string) => {
            expect(await injectedMarkup(page), `markup from a payload on ${where}`).to.deep.equal([])
            expect(alarms.all(), `on ${where}`).to.deep.equal([])
            expect(await page.evaluate('window.__xss'), `window.__xss on ${where}`).to.equal(0)
          }
          try {
            expect(await logIn(page, url)).to.equal(303)

            await page.goto(`${url}/logs/request`)
            const list = await visibleText(page, '#records')
            expect(list).to.include(PATH)
            expect(list).to.include(HOSTILE_USER)
            expect(await page.locator('#records td.c-path', {hasText: PATH}).count()).to.equal(1)
            await clean('the list')

            // the record with the payload in its path, query, headers and both bodies
            await page.goto(`${url}/records/${await idOf(`path LIKE '/hostile/<script>%'`)}`)
            expect(await page.locator('#record-title').innerText()).to.equal(`POST ${stack.run.url}${PATH}`)
            expect(await visibleText(page, '#summary')).to.include(HOSTILE_USER)
            const requestHeaders = await visibleText(page, '#request-headers')
            for (const v of Object.values(HEADERS)) expect(requestHeaders).to.include(v)
            expect(await visibleText(page, '#response-headers')).to.include(HOSTILE_HEADER)
            const bodies = page.locator('section.body pre.body-text')
            expect(await bodies.nth(0).innerText()).to.equal(PAGE)
            expect(await bodies.nth(1).innerText()).to.equal(HOSTILE_HTML)
            expect(await visibleText(page, 'section.other')).to.include('<svg/onload=window.__xss=3>')
            expect(await page.locator('#curl').innerText()).to.include(`${PATH}?q=`)
            await clean('the detail page of the HTML record')

            await page.goto(`${url}/records/${await idOf(`path = '/hostile/avatar-xml'`)}`)
            expect(await bodies.nth(0).innerText()).to.equal(HOSTILE_SVG)
            expect(await bodies.nth(1).innerText()).to.equal(HOSTILE_SVG)
            await clean('the detail page of the SVG record (as XML text)')
            await page.goto(`${url}/records/${await idOf(`path = '/hostile/avatar'`)}`)
            await clean('the detail page of the SVG record (image/svg+xml)')

            await page.goto(`${url}/records/${await idOf(`path = '/hostile/comment'`)}`)
            expect(await bodies.nth(0).innerText()).to.equal(JSON.stringify(COMMENT, null, 2))
            await clean('the detail page of the JSON record')
            await page.goto(`${url}/records/${await idOf(`path = '/hostile/form'`)}`)
            expect(await bodies.nth(0).innerText()).to.equal('name = <script>window.__xss=17</script>\nurl = javascript:window.__xss=18')
            await clean('the detail page of the form record')

            // the dashboard: its top lists are built by the page's script from the JSON
            await page.goto(`${url}/dashboard?type=request&since=1h`)
            await page.locator('#chart-volume canvas').waitFor()
            const busiest = page.locator('section.top', {has: page.locator('h2', {hasText: 'busiest paths'})})
            expect(await busiest.locator('td a', {hasText: PATH}).count()).to.equal(1)
            const users = page.locator('section.top', {has: page.locator('h2', {hasText: 'top users'})})
            expect(await users.locator('td', {hasText: HOSTILE_USER}).count()).to.equal(1)
            await clean('the dashboard')
            // its link lists exactly that record
            await Promise.all([page.waitForURL((u) => u.pathname === '/logs/request'), busiest.locator('td a', {hasText: PATH}).click()])
            expect(await page.locator('#records tbody tr').count()).to.equal(1)
            expect(await page.inputValue('#f-path')).to.equal(PATH)
            await clean('the list from the dashboard’s link')

            // the viewer's own trail: the failed login under the name typed
            await page.goto(`${url}/logs/event?action=LOGIN_FAILED`)
            expect(await visibleText(page, '#records')).to.include(LOGIN_NAME)
            await clean('the event list')
            await page.goto(`${url}/dashboard?type=event&since=1h`)
            const failed = page.locator('section.top', {has: page.locator('h2', {hasText: 'failed logins by actor'})})
            await failed.waitFor()
            expect(await failed.locator('td', {hasText: LOGIN_NAME}).count()).to.equal(1)
            await clean('the event dashboard')

            // a link someone sends: markup in the filter fields comes back in the fields and in the error, as text
            await page.goto(`${url}/logs/request?${new URLSearchParams({path: '"><script>window.__xss=41</script>', user: HOSTILE_USER})}`)
            expect(await page.locator('label.field.wrong .problem').innerText()).to.include('"><script>window.__xss=41</script>')
            expect(await page.inputValue('#f-user')).to.equal(HOSTILE_USER)
            await clean('a list whose address holds markup')

            // the live tail, while such a record arrives
            // (the tail starts with the last minute's records: each test follows a path of its own)
            const n = bypassCSP ? 2 : 1
            await page.goto(`${url}/tail?path=/hostile/live/${n}/**`)
            await until(async () => (await page.locator('#tail-state').innerText()) === 'live: 0 record(s) shown', 20_000, 'the stream')
            await sendAll(stack, [
              {method: 'POST', path: livePath(n), headers: {...HEADERS, 'content-type': 'text/html'}, body: PAGE, status: 200},
            ])
            const row = page.locator('#tail tbody tr')
            await row.first().waitFor()
            expect(await row.count()).to.equal(1)
            expect(await row.locator('td:nth-child(4)').innerText()).to.equal(livePath(n))
            await clean('the live tail')
          } finally {
            await context.close()
          }
        },
      )
    }
  })
})
