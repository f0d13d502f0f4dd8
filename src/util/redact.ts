/**
 * Secrets must never reach output, logs or errors. Connection strings have
 * their password replaced; any other known secret (role passwords, tokens)
 * is registered once and scrubbed from every message we print.
 */
const MASK = '****'
const known = new Set<string>()

export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 4) known.add(secret)
}

/** postgres://user:pass@host/db → postgres://user:****@host/db; non-URLs returned unchanged. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):([^@/?#\s]*)@/i, `$1:${MASK}@`)
}

/** Scrub every URL password and every registered secret from free text. */
export function redactText(text: string): string {
  let out = text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):([^@/?#\s]*)@/gi, `$1:${MASK}@`)
  out = out.replace(/(password=)([^\s&]+)/gi, `$1${MASK}`)
  for (const secret of known) out = out.split(secret).join(MASK)
  return out
}

export function urlPassword(url: string | undefined): string | undefined {
  try {
    return url ? decodeURIComponent(new URL(url).password) || undefined : undefined
  } catch {
    return undefined
  }
}
