import {randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import {createRequire} from 'node:module'
import type {AddressInfo} from 'node:net'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {Eta} from 'eta'
import type {ResolvedConfig} from '../config/resolve.js'
import type {EventInput} from '../events/record.js'
import {usageError} from '../errors.js'
import {parseHostPort} from '../server/settings.js'
import {exportRecords} from '../render/export.js'
import {DEFAULT_COLUMNS, cellText} from '../render/records.js'
import {LOG_TYPE, LOG_TYPES, type LogType} from '../stores/log-types.js'
import {EXPORT_FORMATS, type ExportFormat, RECORD_ID, type Row, columnsOf, cursorOf} from '../stores/source.js'
import {redactText} from '../util/redact.js'
import type {ViewerAudit} from './audit.js'
import {sameSecret} from '../util/secrets.js'
import {LoginLimiter, type Session, Sessions, TrustedProxies, Users} from './auth.js'
import {detailView} from './record-view.js'
import {type View, PAGE_SIZES, cursorText, filterQuery, readView, viewHref} from './params.js'
import {type SourcePool, use} from './sources.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../templates/ui')
const require = createRequire(import.meta.url)

/** Served from the package: the viewer works offline (no CDN, no build step). */
const STATIC: Record<string, {file: string; type: string}> = {
  '/static/ui.js': {file: path.join(ROOT, 'static/ui.js'), type: 'text/javascript; charset=utf-8'},
  '/static/ui.css': {file: path.join(ROOT, 'static/ui.css'), type: 'text/css; charset=utf-8'},
  '/static/uplot.js': {file: require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8'},
  '/static/uplot.css': {file: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8'},
}

/**
 * Every byte shown was written by a stranger: no inline script or style, no
 * eval, nothing from elsewhere, no framing, no referrer.
 */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), clipboard-write=(self)',
}

const SESSION_COOKIE = 'audit_logs_session'
const LOGIN_COOKIE = 'audit_logs_login'
const TYPES_WITH_STATS: LogType[] = ['request', 'access', 'outbound']
/** Live tails and exports at once (each holds a database connection while it lasts), in all and per user: pages keep the rest of the pool. */
const MAX_STREAMS = 6
const MAX_STREAMS_PER_USER = 3
/** scrypt checks at once (libuv's thread pool has 4 threads) */
const MAX_CHECKS = 2

export type UiOptions = {
  config: ResolvedConfig
  sources: SourcePool
  audit: ViewerAudit
  version: string
  log: (message: string) => void
}

export type RunningUi = {url: string; close(): Promise<void>}

type Ctx = {
  req: http.IncomingMessage
  res: http.ServerResponse
  url: URL
  ip: string
  user?: string
  session?: Session
}

/**
 * The viewer's own cookies only, as they were set (base64url: nothing to decode). Cookies ignore ports:
 * an app on the same host may set any other, malformed ones included, and they must not matter here.
 */
function cookies(req: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=')
    const name = part.slice(0, eq).trim()
    if (eq > 0 && (name === SESSION_COOKIE || name === LOGIN_COOKIE)) out[name] = part.slice(eq + 1).trim()
  }
  return out
}

async function readForm(req: http.IncomingMessage, max = 16_384): Promise<URLSearchParams> {
  const type = String(req.headers['content-type'] ?? '')
    .split(';')[0]
    .trim()
  if (type !== 'application/x-www-form-urlencoded') throw new HttpError(415, 'a form (application/x-www-form-urlencoded) is expected')
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > max) throw new HttpError(413, `a form of at most ${max} bytes is expected`)
    chunks.push(chunk as Buffer)
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** `next` after login: a path of this viewer only (never another site, never `//host`), percent-encoded as a header needs. */
function safeNext(next: string | null): string {
  if (!next || !/^\/(?![/\\])[^\s]*$/.test(next)) return '/logs/request'
  const u = new URL(next, 'http://viewer.invalid')
  return u.origin === 'http://viewer.invalid' ? u.pathname + u.search : '/logs/request'
}

export async function startUi(options: UiOptions): Promise<RunningUi> {
  const {config} = options
  const users = new Users(config.uiUsers)
  const proxies = new TrustedProxies(config.uiAuthProxies)
  if (!users.size && !config.uiAuthHeader)
    throw usageError('The viewer lets no one in: set uiUsers (AUDIT_LOGS_UI_USERS: NAME:HASH entries) or uiAuthHeader with uiAuthProxies', [
      'Make a hash with `audit-logs ui hash-password` (it reads the password from stdin)',
    ])
  if (config.uiAuthHeader && proxies.empty)
    throw usageError('uiAuthHeader is set but uiAuthProxies is empty: the header would be believed from no one', [
      'Give the reverse proxy’s address: AUDIT_LOGS_UI_AUTH_PROXIES=127.0.0.1',
    ])
  const sessions = new Sessions(config.uiSessionIdleMs)
  const limiter = new LoginLimiter(config.uiLoginAttempts)
  const throttled = new Map<string, number>()
  let checking = 0
  if (Boolean(config.uiTlsCert) !== Boolean(config.uiTlsKey))
    throw usageError('uiTlsCert and uiTlsKey go together: give both (PEM files) to serve TLS, or neither for plain HTTP')
  const tls = Boolean(config.uiTlsCert && config.uiTlsKey)
  const eta = new Eta({views: ROOT, cache: true, autoEscape: true, autoTrim: false})

  const audit = (ctx: Ctx, event: Omit<EventInput, 'ip'>) => {
    try {
      options.audit.record({...event, ip: ctx.ip} as EventInput)
    } catch (error) {
      options.log(`warning: the viewer's own event was not recorded: ${(error as Error).message}`)
    }
  }

  const send = (ctx: Ctx, status: number, type: string, body: string | Buffer, headers: Record<string, string | string[]> = {}) => {
    ctx.res.writeHead(status, {...SECURITY_HEADERS, 'content-type': type, 'cache-control': 'no-store', ...headers})
    ctx.res.end(ctx.req.method === 'HEAD' ? undefined : body)
  }

  const page = (ctx: Ctx, status: number, template: string, data: Record<string, unknown>) => {
    const html = eta.render(template, {
      user: ctx.user,
      csrf: ctx.session?.csrf,
      proxyUser: ctx.session === undefined && ctx.user !== undefined,
      types: LOG_TYPES,
      ...data,
    })
    send(ctx, status, 'text/html; charset=utf-8', html)
  }

  const cookie = (name: string, value: string, options: {path?: string; maxAge?: number} = {}) =>
    `${name}=${encodeURIComponent(value)}; Path=${options.path ?? '/'}; HttpOnly; SameSite=Strict${tls ? '; Secure' : ''}` +
    (options.maxAge !== undefined ? `; Max-Age=${options.maxAge}` : '')

  /**
   * A form post from this viewer's own page: the token (checked by the caller), and the browser's word
   * that it came from here. Sec-Fetch-Site says it where the browser sends it; Origin otherwise, except
   * that under Referrer-Policy: no-referrer a browser may send `Origin: null` for its own forms (Chromium
   * does), which then proves nothing either way and leaves the token and the SameSite cookie to decide.
   */
  const checkOrigin = (ctx: Ctx) => {
    const site = ctx.req.headers['sec-fetch-site']
    const origin = ctx.req.headers.origin
    if (site !== undefined) {
      if (site !== 'same-origin') throw new HttpError(403, 'a form from another site is refused')
    } else if (origin !== undefined && origin !== 'null' && origin !== `${tls ? 'https' : 'http'}://${ctx.req.headers.host}`)
      throw new HttpError(403, 'a form from another site is refused')
  }

  const loginPage = (ctx: Ctx, status: number, message?: string, name = '') => {
    // the browser's login token is kept while it lasts: a second tab, or a request the browser makes on its
    // own that lands here, must not make the form already on screen stale
    const held = cookies(ctx.req)[LOGIN_COOKIE]
    const token = held && /^[A-Za-z0-9_-]{32}$/.test(held) ? held : randomBytes(24).toString('base64url')
    ctx.res.setHeader('set-cookie', cookie(LOGIN_COOKIE, token, {path: '/login'}))
    page(ctx, status, 'login', {title: 'Log in', token, message, name, next: safeNext(ctx.url.searchParams.get('next'))})
  }

  async function login(ctx: Ctx) {
    checkOrigin(ctx)
    const form = await readForm(ctx.req)
    if (!sameSecret(form.get('csrf') ?? undefined, cookies(ctx.req)[LOGIN_COOKIE]))
      throw new HttpError(403, 'the login form expired; load it again')
    const name = (form.get('username') ?? '').slice(0, 100)
    const password = (form.get('password') ?? '').slice(0, 1024)
    ctx.url.searchParams.set('next', form.get('next') ?? '')
    const actor = name ? {id: name} : undefined
    const wait = limiter.begin(ctx.ip, name)
    if (wait) {
      ctx.res.setHeader('retry-after', String(wait))
      // once a minute per address: a flood of refused tries must not crowd the trail (nor cost a scrypt)
      if ((throttled.get(ctx.ip) ?? 0) < Date.now() - 60_000) {
        if (throttled.size >= 10_000) throttled.clear()
        throttled.set(ctx.ip, Date.now())
        audit(ctx, {action: 'LOGIN_FAILED', actor, target: {type: 'audit-logs.ui'}, reason: 'too many failed logins', severity: 'SECURITY'})
      }
      return loginPage(ctx, 429, `Too many failed logins: try again in ${Math.ceil(wait / 60)} minute(s).`, name)
    }
    // scrypt runs on libuv's thread pool: a few checks at a time, so that a flood of tries cannot take the host
    if (checking >= MAX_CHECKS) {
      ctx.res.setHeader('retry-after', '1')
      return loginPage(ctx, 503, 'The viewer is busy checking other logins: try again in a moment.', name)
    }
    checking++
    let ok: boolean
    try {
      ok = Boolean(name) && (await users.check(name, password))
    } finally {
      checking--
    }
    if (!ok) {
      audit(ctx, {action: 'LOGIN_FAILED', actor, target: {type: 'audit-logs.ui'}, severity: 'SECURITY'})
      return loginPage(ctx, 401, 'Wrong user name or password.', name)
    }
    limiter.succeeded(ctx.ip, name)
    const s = sessions.create(name, 'password')
    audit(ctx, {action: 'LOGIN', actor: {id: name}, target: {type: 'audit-logs.ui'}})
    send(ctx, 303, 'text/plain; charset=utf-8', '', {
      location: safeNext(form.get('next')),
      'set-cookie': [cookie(SESSION_COOKIE, s.id), cookie(LOGIN_COOKIE, '', {path: '/login', maxAge: 0})],
    })
  }

  async function logout(ctx: Ctx) {
    checkOrigin(ctx)
    const form = await readForm(ctx.req)
    if (!ctx.session || !sameSecret(form.get('csrf') ?? undefined, ctx.session.csrf))
      throw new HttpError(403, 'the logout form is not from this session')
    sessions.delete(ctx.session.id)
    audit(ctx, {action: 'LOGOUT', actor: {id: ctx.session.user}, target: {type: 'audit-logs.ui'}})
    send(ctx, 303, 'text/plain; charset=utf-8', '', {location: '/login', 'set-cookie': cookie(SESSION_COOKIE, '', {maxAge: 0})})
  }

  const viewed = (ctx: Ctx, what: string, id?: string, extra: Record<string, unknown> = {}) =>
    audit(ctx, {
      action: 'VIEW',
      actor: {id: ctx.user!},
      target: id ? {type: `audit-logs.${what}`, id} : {type: `audit-logs.${what}`},
      extra: {page: ctx.url.pathname, query: ctx.url.search.slice(0, 2000), ...extra},
    })

  const common = (view: View, active: string) => ({
    view,
    active,
    logType: view.logType,
    links: {
      list: `/logs/${view.logType}?${filterQuery(view, {}, {withType: false})}`.replace(/\?$/, ''),
      dashboard: `/dashboard?${filterQuery(view)}`,
      tail: `/tail?${filterQuery(view)}`,
    },
    exports: EXPORT_FORMATS.filter((f) => f !== 'json' && (f !== 'har' || LOG_TYPE[view.logType].columns.includes('request_headers'))).map(
      (f) => ({
        format: f,
        href: `/export?${filterQuery(view, {format: f})}`,
      }),
    ),
  })

  async function list(ctx: Ctx, type: string) {
    const view = readView(ctx.url.searchParams, type)
    let rows: Row[] = []
    let newer: string | undefined
    let older: string | undefined
    if (view.filter) {
      const f = view.filter
      const {limit} = view
      await use(options.sources, async (source) => {
        if (view.before) {
          const got = await source.query(f, {limit: limit + 1, order: 'oldest', after: view.before})
          rows = got.slice(0, limit).reverse()
          if (got.length > limit) newer = cursorText(cursorOf(rows[0]))
          if (rows.length) older = cursorText(cursorOf(rows.at(-1)!))
        } else {
          const got = await source.query(f, {limit: limit + 1, after: view.after})
          rows = got.slice(0, limit)
          if (got.length > limit) older = cursorText(cursorOf(rows.at(-1)!))
          if (view.after && rows.length) newer = cursorText(cursorOf(rows[0]))
        }
      })
    }
    const base = `/logs/${view.logType}`
    viewed(ctx, view.logType, undefined, {rows: rows.length})
    page(ctx, view.filter ? 200 : 400, 'list', {
      title: `${view.logType} logs`,
      ...common(view, 'list'),
      columns: view.columns,
      allColumns: columnsOf(view.logType).filter((c) => c !== 'id'),
      pageSizes: PAGE_SIZES,
      rows: rows.map((r) => ({
        id: String(r.id),
        status: typeof r.status_code === 'number' ? `s${String(r.status_code)[0]}xx` : '',
        cells: view.columns.map((c) => ({column: c, text: cell(c, r[c])})),
      })),
      first: view.after || view.before ? viewHref(base, view) : undefined,
      newerHref: newer ? viewHref(base, view, {before: newer, after: undefined}) : undefined,
      olderHref: older ? viewHref(base, view, {after: older, before: undefined}) : undefined,
      formAction: base,
    })
  }

  async function detail(ctx: Ctx, id: string) {
    if (!RECORD_ID.test(id)) throw new HttpError(404, 'a record id is a UUID')
    const found = await use(options.sources, async (source) => {
      const got = await source.get(id.toLowerCase())
      if (!got) return undefined
      const requestId = got.record.request_id
      const events =
        got.logType !== 'event' && typeof requestId === 'string' && requestId
          ? await source.query({logType: 'event', requestId}, {limit: 200, order: 'oldest'}).catch(() => [])
          : []
      // an event's request: the record it happened in
      const request =
        got.logType === 'event' && typeof requestId === 'string' && requestId
          ? (await source.query({logType: 'request', requestId}, {limit: 1}).catch(() => []))[0]
          : undefined
      return {...got, events, request}
    })
    if (!found) throw new HttpError(404, `no record has the id ${id}`)
    viewed(ctx, found.logType, id)
    page(ctx, 200, 'detail', {
      title: `${found.logType} ${id}`,
      d: detailView(found.logType, found.record, {slowMs: config.slowMs, events: found.events}),
      events: found.events.map((e) => ({
        id: String(e.id),
        cells: DEFAULT_COLUMNS.event.map((c) => cellText(c, e[c])),
      })),
      eventColumns: DEFAULT_COLUMNS.event,
      request: found.request
        ? {
            id: String(found.request.id),
            text: `${found.request.method ?? ''} ${found.request.path ?? ''} → ${found.request.status_code ?? ''}`,
          }
        : undefined,
      back: `/logs/${found.logType}`,
    })
  }

  /** The dashboard's range defaults to the last 24 hours, written into the address so the view can be linked. */
  async function dashboard(ctx: Ctx) {
    if (!ctx.url.searchParams.has('since') && !ctx.url.searchParams.has('until')) {
      ctx.url.searchParams.set('since', '24h')
      return send(ctx, 303, 'text/plain; charset=utf-8', '', {location: `/dashboard?${ctx.url.searchParams}`})
    }
    const view = readView(ctx.url.searchParams)
    viewed(ctx, `${view.logType}.dashboard`)
    const supported = TYPES_WITH_STATS.includes(view.logType) || view.logType === 'event'
    page(ctx, view.filter ? 200 : 400, 'dashboard', {
      title: `${view.logType} dashboard`,
      ...common(view, 'dashboard'),
      supported,
      formAction: '/dashboard',
      dataHref: `/api/stats?${filterQuery(view)}`,
    })
  }

  const bucketOf = (view: View): 'minute' | 'hour' | 'day' => {
    const from = view.filter?.since?.getTime()
    const to = view.filter?.until?.getTime() ?? Date.now()
    if (from === undefined) return 'day'
    const span = to - from
    return span <= 6 * 3_600_000 ? 'minute' : span <= 8 * 86_400_000 ? 'hour' : 'day'
  }

  async function statsJson(ctx: Ctx) {
    const view = readView(ctx.url.searchParams)
    if (!view.filter) {
      const errors = view.fields.filter((f) => f.error).map((f) => ({field: f.name, error: f.error}))
      return send(ctx, 400, 'application/json', JSON.stringify({error: problemOf(view), errors}))
    }
    const f = view.filter
    viewed(ctx, `${view.logType}.stats`)
    if (view.logType === 'event') {
      const summary = await use(options.sources, (s) => s.eventSummary(f, {top: 10}))
      return send(ctx, 200, 'application/json', JSON.stringify({logType: 'event', summary}))
    }
    if (!TYPES_WITH_STATS.includes(view.logType)) throw new HttpError(400, `there is no dashboard of ${view.logType} logs`)
    const bucket = bucketOf(view)
    const stats = await use(options.sources, (s) => s.stats(f, {bucket, top: 10}), {parallel: 3})
    // the chart's time axis is the range asked for: periods with no records are zeros, not gaps
    stats.histogram = fillPeriods(stats.histogram, bucket, f.since, f.until ?? new Date())
    send(ctx, 200, 'application/json', JSON.stringify({logType: view.logType, bucket, stats}))
  }

  /** A live view has no time range: it follows from now. */
  const liveView = (ctx: Ctx) => {
    const params = new URLSearchParams(ctx.url.searchParams)
    params.delete('since')
    params.delete('until')
    return readView(params)
  }

  async function tailPage(ctx: Ctx) {
    const view = liveView(ctx)
    viewed(ctx, `${view.logType}.tail`)
    page(ctx, view.filter ? 200 : 400, 'tail', {
      title: `${view.logType} live`,
      ...common(view, 'tail'),
      columns: view.columns,
      formAction: '/tail',
      streamHref: `/api/tail?${filterQuery(view, view.columns.join(',') === DEFAULT_COLUMNS[view.logType].join(',') ? {} : {cols: view.columns.join(',')})}`,
    })
  }

  /** A tail or an export: counted before anything is awaited, so that concurrent requests cannot all pass the bound. */
  const streams = {all: 0, byUser: new Map<string, number>()}
  function beginStream(user: string): () => void {
    const mine = streams.byUser.get(user) ?? 0
    if (streams.all >= MAX_STREAMS)
      throw new HttpError(503, `at most ${MAX_STREAMS} live tails and exports at once; try again when one ends`)
    if (mine >= MAX_STREAMS_PER_USER) throw new HttpError(429, `at most ${MAX_STREAMS_PER_USER} live tails and exports at once per user`)
    streams.all++
    streams.byUser.set(user, mine + 1)
    let done = false
    return () => {
      if (done) return
      done = true
      streams.all--
      const left = (streams.byUser.get(user) ?? 1) - 1
      if (left) streams.byUser.set(user, left)
      else streams.byUser.delete(user)
    }
  }

  /** Server-sent events: each new record's shown columns as JSON (the page puts them in as text). */
  async function tailStream(ctx: Ctx) {
    if (ctx.req.method !== 'GET') throw new HttpError(405, 'GET')
    const view = liveView(ctx)
    if (!view.filter) throw new HttpError(400, problemOf(view))
    const f = view.filter
    const end = beginStream(ctx.user!)
    const controller = new AbortController()
    ctx.res.on('close', () => controller.abort()) // before any await: a client gone while we wait is seen
    let lease: Awaited<ReturnType<SourcePool['lease']>>
    try {
      lease = await options.sources.lease()
    } catch (error) {
      end()
      throw error
    }
    if (controller.signal.aborted) {
      lease.release()
      return end()
    }
    viewed(ctx, `${view.logType}.tail-stream`)
    ctx.res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    })
    // a reader that stops reading: wait a while for it, then end the stream rather than buffer without bound
    const write = async (text: string) => {
      if (ctx.res.write(text)) return
      const drained = await Promise.race([
        new Promise<boolean>((r) => ctx.res.once('drain', () => r(true))),
        new Promise<boolean>((r) => setTimeout(r, 30_000, false).unref()),
      ])
      if (!drained) controller.abort()
    }
    const beat = setInterval(() => {
      // a session that ended (logout, idle) ends its tails too
      if (ctx.session && !sessions.get(ctx.session.id)) controller.abort()
      else void write(': beat\n\n')
    }, 15_000)
    let broken = false
    try {
      await write(`: ${view.logType}\n\n`)
      for await (const r of lease.source.follow(f, {intervalMs: 1000, signal: controller.signal})) {
        const shown = {id: String(r.id), status: r.status_code ?? null, cells: view.columns.map((c) => cell(c, r[c]))}
        await write(`event: record\ndata: ${JSON.stringify(shown)}\n\n`)
        if (controller.signal.aborted) break
      }
    } catch (error) {
      broken = !controller.signal.aborted
      if (broken) ctx.res.write(`event: failure\ndata: ${JSON.stringify(redactText((error as Error).message))}\n\n`)
    } finally {
      clearInterval(beat)
      lease.release(broken)
      end()
      ctx.res.end()
    }
  }

  async function exportFile(ctx: Ctx) {
    if (ctx.req.method !== 'GET') throw new HttpError(405, 'GET')
    const format = ctx.url.searchParams.get('format') ?? 'csv'
    if (!(EXPORT_FORMATS as readonly string[]).includes(format))
      throw new HttpError(400, `format "${format}" is not one of ${EXPORT_FORMATS.join(', ')}`)
    const view = readView(ctx.url.searchParams)
    if (!view.filter) throw new HttpError(400, problemOf(view))
    const f = view.filter
    const ext = format === 'har' ? 'har' : format
    const name = `audit-logs-${view.logType}-${new Date().toISOString().replace(/[:.]/g, '-')}.${ext}`
    const end = beginStream(ctx.user!)
    const controller = new AbortController()
    ctx.res.on('close', () => {
      if (!ctx.res.writableFinished) controller.abort()
    })
    let lease: Awaited<ReturnType<SourcePool['lease']>>
    try {
      lease = await options.sources.lease({long: true}) // before the answer starts: a store that is down is a plain error
    } catch (error) {
      end()
      throw error
    }
    ctx.res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': {csv: 'text/csv; charset=utf-8', ndjson: 'application/x-ndjson', json: 'application/json', har: 'application/json'}[
        format as ExportFormat
      ],
      'content-disposition': `attachment; filename="${name}"`,
      'cache-control': 'no-store',
    })
    let broken = false
    let result: {rows: number; bytes: number} | undefined
    try {
      result = await exportRecords({
        source: lease.source,
        filter: f,
        format: format as ExportFormat,
        out: ctx.res,
        gzip: false,
        version: options.version,
        signal: controller.signal,
      })
    } catch (error) {
      broken = true
      if (!controller.signal.aborted) options.log(`warning: an export failed: ${redactText((error as Error).message)}`)
      ctx.res.destroy()
    } finally {
      lease.release(broken)
      end()
      // an export cut short is an export too: what was asked for, and that it did not finish
      audit(ctx, {
        action: 'EXPORT',
        actor: {id: ctx.user!},
        target: {type: `audit-logs.${view.logType}`},
        extra: {
          format,
          ...(result ? {record_count: result.rows, bytes: result.bytes} : {completed: false}),
          query: ctx.url.search.slice(0, 2000),
        },
      })
    }
  }

  function serveStatic(ctx: Ctx, file: {file: string; type: string}) {
    send(ctx, 200, file.type, readFileSync(file.file), {'cache-control': 'private, max-age=3600'})
  }

  /** The user: a reverse proxy's header from a trusted address, else the session's. */
  function identify(ctx: Ctx) {
    if (config.uiAuthHeader && proxies.trusts(ctx.req.socket.remoteAddress)) {
      const name = ctx.req.headers[config.uiAuthHeader.toLowerCase()]
      if (typeof name === 'string' && name.trim()) {
        ctx.user = name.trim().slice(0, 200)
        return
      }
    }
    ctx.session = sessions.get(cookies(ctx.req)[SESSION_COOKIE])
    ctx.user = ctx.session?.user
  }

  async function route(ctx: Ctx) {
    const p = ctx.url.pathname
    const method = ctx.req.method ?? 'GET'
    const file = STATIC[p]
    if (file && (method === 'GET' || method === 'HEAD')) return serveStatic(ctx, file)
    // browsers ask for it after every page: an empty answer, never a redirect to the login page
    if (p === '/favicon.ico') return send(ctx, 204, 'image/x-icon', '', {'cache-control': 'private, max-age=86400'})
    identify(ctx)
    if (p === '/login') {
      if (method === 'POST') return login(ctx)
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'GET or POST')
      if (ctx.user) return send(ctx, 303, 'text/plain; charset=utf-8', '', {location: safeNext(ctx.url.searchParams.get('next'))})
      return loginPage(ctx, 200)
    }
    if (p === '/logout') {
      if (method !== 'POST') throw new HttpError(405, 'log out with the button (POST)')
      return logout(ctx)
    }
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'the viewer only reads: GET')
    if (!ctx.user) {
      if (p.startsWith('/api/') || p === '/export') return send(ctx, 401, 'application/json', JSON.stringify({error: 'log in first'}))
      return send(ctx, 303, 'text/plain; charset=utf-8', '', {location: `/login?${new URLSearchParams({next: p + ctx.url.search})}`})
    }
    if (p === '/') return send(ctx, 303, 'text/plain; charset=utf-8', '', {location: '/logs/request'})
    let m: RegExpExecArray | null
    if ((m = /^\/logs\/([a-z]+)$/.exec(p))) return list(ctx, m[1])
    if ((m = /^\/records\/([^/]+)$/.exec(p))) return detail(ctx, m[1])
    if (p === '/dashboard') return dashboard(ctx)
    if (p === '/api/stats') return statsJson(ctx)
    if (p === '/tail') return tailPage(ctx)
    if (p === '/api/tail') return tailStream(ctx)
    if (p === '/export') return exportFile(ctx)
    throw new HttpError(404, 'no such page')
  }

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const ctx: Ctx = {req, res, url: new URL(req.url ?? '/', 'http://viewer'), ip: req.socket.remoteAddress ?? ''}
    route(ctx).catch((error: unknown) => {
      // a page's statement past its timeout (sources.ts): a range too wide, said as such
      if ((error as {code?: string}).code === '57014')
        error = new HttpError(503, 'The query took longer than a page may (60 s): narrow the range (since, until) or the filter')
      const status = error instanceof HttpError ? error.status : 500
      const message = error instanceof HttpError ? error.message : 'the viewer failed to answer; see its log'
      if (!(error instanceof HttpError))
        options.log(`error: ${req.method} ${ctx.url.pathname}: ${redactText((error as Error).stack ?? String(error))}`)
      if (res.headersSent) return res.destroy()
      if (ctx.url.pathname.startsWith('/api/') || ctx.url.pathname === '/export')
        return send(ctx, status, 'application/json', JSON.stringify({error: message}))
      try {
        page(ctx, status, 'error', {title: `Error ${status}`, status, message})
      } catch {
        send(ctx, status, 'text/plain; charset=utf-8', message)
      }
    })
  }

  const server = tls
    ? https.createServer({cert: readFileSync(config.uiTlsCert!), key: readFileSync(config.uiTlsKey!)}, handler)
    : http.createServer(handler)
  server.headersTimeout = 20_000
  server.requestTimeout = 30_000 // receiving a request (not answering it: tails and exports last)
  server.maxConnections = 512
  const {host, port} = parseHostPort('uiBind', config.uiBind)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const address = server.address() as AddressInfo
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return {
    url: `${tls ? 'https' : 'http'}://${shownHost}:${address.port}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await options.audit.close()
    },
  }
}

const PERIOD_MS = {minute: 60_000, hour: 3_600_000, day: 86_400_000} as const
const MAX_PERIODS = 10_000

/** The histogram with every period of the range, the empty ones as zeros (UTC periods, as the stores make them). */
export function fillPeriods(
  histogram: Array<{period: string; count: number; errors: number}>,
  bucket: keyof typeof PERIOD_MS,
  since: Date | undefined,
  until: Date,
): Array<{period: string; count: number; errors: number}> {
  const step = PERIOD_MS[bucket]
  const first = since?.getTime() ?? (histogram.length ? Date.parse(histogram[0].period) : undefined)
  if (first === undefined) return histogram
  const from = Math.floor(first / step) * step
  const to = Math.max(Math.floor((until.getTime() - 1) / step) * step, histogram.length ? Date.parse(histogram.at(-1)!.period) : from)
  if ((to - from) / step > MAX_PERIODS) return histogram
  const byPeriod = new Map(histogram.map((h) => [Date.parse(h.period), h]))
  const out: Array<{period: string; count: number; errors: number}> = []
  for (let t = from; t <= to; t += step) out.push(byPeriod.get(t) ?? {period: new Date(t).toISOString(), count: 0, errors: 0})
  return out
}

/** Why a view has no filter: its own error, or its fields' errors. */
export const problemOf = (view: View): string =>
  view.error ??
  (view.fields
    .filter((f) => f.error)
    .map((f) => f.error)
    .join('; ') ||
    'a filter field is wrong')

/** A list or tail cell: at most 300 characters, the cut marked. */
export function cell(column: string, value: unknown): string {
  const text = cellText(column, value)
  return text.length > 300 ? `${text.slice(0, 299)}…` : text
}
