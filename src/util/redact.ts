/**
 * Secrets must never reach output, logs or errors. Connection strings have
 * their password replaced; any other known secret (role passwords, tokens)
 * is registered once and scrubbed from every message we print.
 */
const MASK = '****'
const known = new Set<string>()
const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i

export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 4) known.add(secret)
}

/**
 * Where the password of a URL-like string is, as [start, end) of the raw text, or undefined when it has none.
 * A URL that parses has its user info where the parser found it: up to the last '@' before the host's end.
 * One that does not, or has an '@' after the host (an unencoded '#', '/' or '?' in the password ended the
 * host early; no scheme), is read as a user would have meant it: from the first ':' after the scheme (or the
 * start) to the last '@'. That may hide more than the password, never less.
 */
function passwordSpan(url: string): [number, number] | undefined {
  const start = SCHEME.exec(url)?.[0].length ?? 0
  let end = url.length
  try {
    const u = new URL(url)
    // the parser's user info is the user's unless an '@' comes after the host: then an unencoded '#', '/' or '?' ended the host early
    if (!u.pathname.includes('@') && !u.search.includes('@') && !u.hash.includes('@')) end = url.slice(start).search(/[/?#]|$/) + start
  } catch {
    // not a URL the parser takes: the span is found in the text alone
  }
  const at = url.lastIndexOf('@', end - 1)
  const colon = url.indexOf(':', start)
  if (at < start || colon < 0 || colon > at) return undefined
  return [colon + 1, at]
}

/** postgres://user:pass@host/db → postgres://user:****@host/db, whether it parses or not; a string with no password is returned unchanged. */
export function redactUrl(url: string): string {
  const span = passwordSpan(url)
  return span ? url.slice(0, span[0]) + MASK + url.slice(span[1]) : url
}

/** Scrub every registered secret and every URL password from free text. */
export function redactText(text: string): string {
  let out = text
  // the known secrets first: a password with an '@' would otherwise be cut in two by the pattern below, and its tail shown
  for (const secret of [...known].sort((a, b) => b.length - a.length)) out = out.split(secret).join(MASK)
  out = out.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):([^@/?#\s]*)@/gi, `$1:${MASK}@`)
  out = out.replace(/(password=)([^\s&]+)/gi, `$1${MASK}`)
  return out
}

/** The password of a URL (decoded), or of a URL-like string that does not parse (as written). */
export function urlPassword(url: string | undefined): string | undefined {
  if (!url) return undefined
  try {
    const password = new URL(url).password
    if (password) return decodeURIComponent(password)
  } catch {
    // not a URL the parser takes (or a malformed escape): found in the text below
  }
  const span = passwordSpan(url)
  return span ? url.slice(span[0], span[1]) || undefined : undefined
}

/** Registers a URL's password, as written and decoded, so no message shows it. */
export function registerUrlPassword(url: string | undefined): void {
  registerSecret(urlPassword(url))
  const span = url ? passwordSpan(url) : undefined
  if (span) registerSecret(url!.slice(span[0], span[1]))
}

/**
 * An endpoint whose whole address may be a secret (a webhook's path often is its token): shown as
 * scheme://host only, or **** when it does not parse.
 */
export function redactEndpoint(url: string): string {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${(u.pathname === '/' || u.pathname === '') && !u.search ? '' : '/****'}`
  } catch {
    return MASK
  }
}

/** Registers an endpoint's password, its path and query and the whole URL, so no message shows them. */
export function registerEndpoint(url: string | undefined): void {
  if (!url) return
  registerUrlPassword(url)
  registerSecret(url)
  try {
    const u = new URL(url)
    if (u.pathname.length > 1) registerSecret(u.pathname)
    registerSecret(u.search.slice(1))
  } catch {
    // not a URL: the whole text is registered above
  }
}
