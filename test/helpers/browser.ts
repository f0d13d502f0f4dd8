import {existsSync} from 'node:fs'
import {type Browser, type BrowserContext, type Page, chromium} from 'playwright-core'

/**
 * The viewer's browser tests drive Debian's Chromium (the `chromium` package,
 * which .ci/run installs) through playwright-core: no browser is ever
 * downloaded. AUDIT_LOGS_TEST_CHROMIUM names another binary.
 */
export const CHROMIUM = process.env.AUDIT_LOGS_TEST_CHROMIUM ?? '/usr/bin/chromium'
export const hasChromium = (): boolean => existsSync(CHROMIUM)

/** Headless, without Chromium's sandbox (the tests run as root, where it cannot start). */
export const launchChromium = (): Promise<Browser> =>
  chromium.launch({executablePath: CHROMIUM, headless: true, chromiumSandbox: false, timeout: 60_000})

/** A fixed viewport, so that screenshots are the same from run to run. */
export const VIEWPORT = {width: 1280, height: 800}

export async function newContext(browser: Browser, options: {bypassCSP?: boolean} = {}): Promise<BrowserContext> {
  const context = await browser.newContext({viewport: VIEWPORT, acceptDownloads: true, bypassCSP: options.bypassCSP ?? false})
  context.setDefaultTimeout(20_000)
  context.setDefaultNavigationTimeout(30_000)
  return context
}

/**
 * What a page did that a viewer must never let it do, reported to the test as
 * it happens (so that a navigation loses nothing): a script of a record's
 * payload ran (it writes window.__xss, which this traps, or opens a dialog),
 * the Content Security Policy blocked something (an inline script, an
 * event handler, a `javascript:` URL or an image from elsewhere that got into
 * the page), a request went somewhere the viewer's own pages never go, or the
 * page threw.
 */
export type Alarms = {
  ran: string[]
  dialogs: string[]
  csp: string[]
  strangeRequests: string[]
  pageErrors: string[]
  /** all of the above, one line each */
  all(): string[]
  clear(): void
}

/** Paths the viewer's pages themselves request. */
const OWN_REQUEST =
  /^\/(static\/(ui|uplot)\.(js|css)|api\/(stats|tail)|logs\/[a-z]+|records\/[0-9a-f-]{36}|dashboard|tail|export|login|logout)$/

const TRAPS = `(() => {
  const report = (kind, detail) => { try { window.__alarm(kind, String(detail).slice(0, 300)) } catch {} }
  let hits = 0
  Object.defineProperty(window, '__xss', {
    configurable: false,
    get: () => hits,
    set: (v) => { hits++; report('ran', 'window.__xss = ' + v) },
  })
  document.addEventListener('securitypolicyviolation', (e) =>
    report('csp', e.violatedDirective + ' blocked ' + (e.blockedURI || '(inline)') + ' ' + (e.sample || '')), true)
})()`

/** Sets the traps on every page of the context; call before the first navigation. */
export async function watch(context: BrowserContext): Promise<Alarms> {
  const alarms: Alarms = {
    ran: [],
    dialogs: [],
    csp: [],
    strangeRequests: [],
    pageErrors: [],
    all() {
      return [
        ...this.ran.map((x) => `a payload's script ran: ${x}`),
        ...this.dialogs.map((x) => `a dialog opened: ${x}`),
        ...this.csp.map((x) => `the CSP blocked something: ${x}`),
        ...this.strangeRequests.map((x) => `a request the viewer never makes: ${x}`),
        ...this.pageErrors.map((x) => `the page threw: ${x}`),
      ]
    },
    clear() {
      for (const list of [this.ran, this.dialogs, this.csp, this.strangeRequests, this.pageErrors]) list.length = 0
    },
  }
  await context.exposeBinding('__alarm', (_source, kind: string, detail: string) => {
    if (kind === 'ran') alarms.ran.push(detail)
    else if (kind === 'csp') alarms.csp.push(detail)
  })
  await context.addInitScript({content: TRAPS})
  const watchPage = (page: Page) => {
    page.on('dialog', (d) => {
      alarms.dialogs.push(`${d.type()}: ${d.message()}`)
      d.dismiss().catch(() => {})
    })
    page.on('pageerror', (e) => alarms.pageErrors.push(e.message))
    page.on('request', (r) => {
      const u = new URL(r.url())
      const viewer = u.protocol === 'http:' && u.hostname === '127.0.0.1'
      if (!viewer || !OWN_REQUEST.test(u.pathname)) alarms.strangeRequests.push(`${r.method()} ${r.url()}`)
    })
  }
  context.on('page', watchPage)
  for (const p of context.pages()) watchPage(p)
  return alarms
}

/**
 * Keeps each uPlot chart the page makes in window.__charts (uPlot's script assigns its global
 * `var uPlot`, which goes through this setter), so that a test can read the scales a chart drew
 * with: its pixels alone do not say what its axes show.
 */
export async function keepCharts(context: BrowserContext): Promise<void> {
  await context.addInitScript({
    content: `(() => {
      let Real
      const charts = []
      function Kept(opts, data, el) {
        const chart = new Real(opts, data, el)
        charts.push(chart)
        return chart
      }
      Object.defineProperty(window, '__charts', {value: charts})
      Object.defineProperty(window, 'uPlot', {
        configurable: true,
        get: () => (Real ? Kept : undefined),
        set: (v) => { Real = v; Object.assign(Kept, v) },
      })
    })()`,
  })
}

/** The x scale (seconds) of each chart kept by keepCharts, and the id of the element it is in. */
export const chartScales = (page: Page): Promise<Array<{id: string; min: number; max: number}>> =>
  page.evaluate(`window.__charts.map((u) => ({id: u.root.parentElement.id, min: u.scales.x.min, max: u.scales.x.max}))`)

/** The element tags the viewer's templates, its script and uPlot make; anything else came from somewhere else. */
const OWN_TAGS = [
  'html',
  'head',
  'meta',
  'title',
  'link',
  'script',
  'body',
  'header',
  'nav',
  'main',
  'section',
  'div',
  'span',
  'a',
  'p',
  'h1',
  'h2',
  'form',
  'label',
  'input',
  'select',
  'option',
  'button',
  'details',
  'summary',
  'table',
  'thead',
  'tbody',
  'tr',
  'th',
  'td',
  'dl',
  'dt',
  'dd',
  'pre',
  'figure',
  'figcaption',
  'canvas',
  // the detail page's timing bar, inside figure#timing only
  'svg',
  'rect',
  'line',
]

/**
 * Everything in the page's DOM that a record's data could have made if it
 * had become markup: an element of a tag the viewer never makes, a script
 * not of /static/, an svg outside the timing figure, an event handler
 * attribute, a URL attribute leading off the viewer (javascript:, data:,
 * another host), a meta refresh, a base, or any attribute holding the
 * payloads' marker. One line per finding; none is the expectation.
 */
export async function injectedMarkup(page: Page, marker = '__xss'): Promise<string[]> {
  return page.evaluate(`(() => {
    const own = new Set(${JSON.stringify(OWN_TAGS)})
    const urlAttributes = ['href', 'src', 'action', 'formaction', 'xlink:href', 'srcdoc', 'data', 'poster', 'background', 'ping', 'srcset']
    const found = []
    const describe = (el) => '<' + el.localName + [...el.attributes].map((a) => ' ' + a.name + '="' + a.value.slice(0, 80) + '"').join('') + '>'
    for (const el of document.querySelectorAll('*')) {
      const tag = el.localName
      if (!own.has(tag)) found.push('an element the viewer never makes: ' + describe(el))
      if (tag === 'script' && !/^\\/static\\/(ui|uplot)\\.js$/.test(el.getAttribute('src') || '')) found.push('a script not of the viewer: ' + describe(el))
      if (tag === 'link' && !/^\\/static\\/(ui|uplot)\\.css$/.test(el.getAttribute('href') || '')) found.push('a link not of the viewer: ' + describe(el))
      if (tag === 'meta' && (el.hasAttribute('http-equiv') || el.closest('body'))) found.push('a meta not of the viewer: ' + describe(el))
      if ((tag === 'svg' || tag === 'rect' || tag === 'line') && !el.closest('figure#timing')) found.push('svg outside the timing figure: ' + describe(el))
      if (el.closest('svg') && tag === 'title' && el.childElementCount) found.push('markup inside an svg title: ' + describe(el))
      if (tag === 'title' && !el.closest('svg') && el.closest('body')) found.push('a title in the body: ' + describe(el))
      for (const a of el.attributes) {
        const name = a.name.toLowerCase()
        if (name.startsWith('on')) found.push('an event handler attribute: ' + describe(el))
        // (a filter field's value and a link to a filtered list hold what was typed, as an attribute's text)
        if (name.includes(${JSON.stringify(marker)}) || (a.value.includes(${JSON.stringify(marker)}) && name !== 'value' && name !== 'href'))
          found.push('an attribute with the payload: ' + describe(el))
        if (urlAttributes.includes(name)) {
          const value = a.value.trim()
          let url
          try { url = new URL(value, location.href) } catch { found.push('an unparsable URL: ' + describe(el)); continue }
          if (url.origin !== location.origin) found.push('a URL leading off the viewer: ' + describe(el))
        }
      }
    }
    return found
  })()`)
}

/** The page's visible text (what a user reads), whitespace as rendered. */
export const visibleText = (page: Page, selector = 'body'): Promise<string> => page.locator(selector).first().innerText()
