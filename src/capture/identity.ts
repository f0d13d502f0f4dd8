import type {IncomingHttpHeaders} from 'node:http'

/** The `sub` of a bearer JWT, decoded (not verified) for attribution only. */
export function jwtSubject(authorization: string | undefined): string | undefined {
  const m = /^Bearer\s+([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]*$/i.exec(authorization ?? '')
  if (!m) return undefined
  try {
    const payload = JSON.parse(Buffer.from(m[2], 'base64url').toString('utf8'))
    return payload && (typeof payload.sub === 'string' || typeof payload.sub === 'number') ? String(payload.sub) : undefined
  } catch {
    return undefined
  }
}

export function basicUser(authorization: string | undefined): string | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(authorization ?? '')
  if (!m) return undefined
  const decoded = Buffer.from(m[1], 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon > 0 ? decoded.slice(0, colon) : undefined
}

/** Headers the app sets to tell the proxy who the user is; stripped before the client sees them. */
export const USER_HEADER = 'x-audit-user'
export const EXTRA_HEADER = 'x-audit-extra'

/** User ids are kept to this many characters, wherever they come from (a client chooses its basic-auth name and, unverified, its JWT). */
export const MAX_USER_LENGTH = 256

export function userFromHeaders(request: IncomingHttpHeaders, responseUser: string | undefined): string | null {
  const auth = request.authorization
  return (responseUser || jwtSubject(auth) || basicUser(auth))?.slice(0, MAX_USER_LENGTH) ?? null
}

export function extraFromHeader(value: string | undefined): Record<string, unknown> | null {
  if (!value) return null
  try {
    const parsed = JSON.parse(value)
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {value: parsed}
  } catch {
    return {raw: value.slice(0, 1024)}
  }
}

/** W3C traceparent: version-traceid-parentid-flags. */
export function traceId(traceparent: string | string[] | undefined): string | null {
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/i.exec(String(traceparent ?? '').trim())
  return m ? m[1].toLowerCase() : null
}
