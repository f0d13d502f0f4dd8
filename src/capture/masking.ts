import {formDecode} from '../util/form-decode.js'
import {CARD_SEPARATOR, CARD_START_DIGITS, CleanScan, SCHEMES, SEPARATOR, fieldScan} from './secret-scan.js'

/**
 * Masking, applied to what was captured before anything touches disk.
 * Keys match case-insensitively and by substring, ignoring "_" and "-"
 * (so `password`, `Password`, `user_password`, `access_token`, `refreshToken`,
 * `X-Api-Key`); values that look like secrets (bearer tokens, JWTs, card
 * numbers passing Luhn) are masked wherever they appear.
 */
export const MASK = '****'

export type MaskOptions = {fields: string[]; headers: string[]}

const SEPARATOR_ALL = new RegExp(SEPARATOR.source, 'g')
const normalize = (key: string) => key.toLowerCase().replace(SEPARATOR_ALL, '')

const SCHEME_WORD = new RegExp(SCHEMES.join('|'), 'i')
const BEARER = new RegExp(`\\b(${SCHEMES.join('|')})\\s+[A-Za-z0-9\\-._~+/]{4,}=*`, 'gi')
const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g
const CARD = new RegExp(`\\b\\d(?:${CARD_SEPARATOR}?\\d){12,18}\\b`, 'g')
const CARD_SEPARATOR_ALL = new RegExp(CARD_SEPARATOR, 'g')
const CARD_START = new RegExp('\\d' + `${CARD_SEPARATOR}?\\d`.repeat(CARD_START_DIGITS - 1))
const JSON_PAIR = /"((?:[^"\\]|\\.){1,200})"\s*:\s*("(?:[^"\\]|\\.)*"?|[^,}\]\s]+)/g
const FORM_PAIR = /(^|[?&;\s])([^=&;\s?]{1,200})=([^&;\s]*)/g
const XML_PAIR = /<([A-Za-z_][\w.-]{0,100})(\s[^>]*)?>([^<]*)<\/\1>/g
/** One scan that rules out most strings: nothing any rule below could match. */
const MAYBE_SECRET = new RegExp(`[=:<]|${SCHEMES.join('|')}|eyJ|\\d{4}`, 'i')
const MULTIPART_FIELD = /(name="([^"]*)"[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n)([\s\S]*?)(?=\r\n--|$)/g

export function luhn(digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (double && (d *= 2) > 9) d -= 9
    sum += d
    double = !double
  }
  return sum % 10 === 0
}

export class Masker {
  private readonly fields: string[]
  private readonly headerNames: Set<string>
  private readonly cache = new Map<string, boolean>()
  private readonly anyField: RegExp
  private readonly cleanScan: CleanScan | undefined

  /** The masker of a run's settings. */
  static of(s: {sensitiveFields: string[]; sensitiveHeaders: string[]}): Masker {
    return new Masker({fields: s.sensitiveFields, headers: s.sensitiveHeaders})
  }

  constructor(options: MaskOptions) {
    this.fields = options.fields.map(normalize).filter(Boolean)
    this.headerNames = new Set(options.headers.map((h) => h.toLowerCase()))
    this.anyField = fieldScan(this.fields)
    this.cleanScan = CleanScan.for(this.fields)
  }

  /**
   * Whether a body is ASCII text that maskBody() would return unchanged, from one scan of its bytes
   * (see CleanScan). False says only that the text rules must look; true lets the record keep the
   * bytes as they came.
   */
  isCleanAscii(bytes: Uint8Array): boolean {
    return this.cleanScan !== undefined && this.cleanScan.clean(bytes)
  }

  isSensitiveKey(key: string): boolean {
    let hit = this.cache.get(key)
    if (hit === undefined) {
      const k = normalize(key)
      hit = this.fields.some((f) => k.includes(f))
      if (this.cache.size > 10_000) this.cache.clear()
      this.cache.set(key, hit)
    }
    return hit
  }

  /** Whether a sensitive field's name occurs anywhere in the text, compared as keys are (case and separators ignored). */
  mentionsField(text: string): boolean {
    return this.anyField.test(text)
  }

  /** Secret-looking values anywhere in free text. */
  maskValues(text: string): string {
    let out = text
    if (SCHEME_WORD.test(out)) out = out.replace(BEARER, (_m, scheme) => `${scheme} ${MASK}`)
    if (out.includes('eyJ')) out = out.replace(JWT, MASK)
    if (CARD_START.test(out)) out = out.replace(CARD, (m) => (luhn(m.replace(CARD_SEPARATOR_ALL, '')) ? MASK : m))
    return out
  }

  /** Text rules: key/value shapes of JSON, forms, XML and multipart, then secret-looking values. */
  maskText(text: string): string {
    if (!MAYBE_SECRET.test(text)) return text
    let out = text
    if (out.includes('"') && out.includes(':')) {
      out = out.replace(JSON_PAIR, (m, key: string, value: string) =>
        this.isSensitiveKey(key) ? m.slice(0, m.length - value.length) + `"${MASK}"` : m,
      )
    }
    if (out.includes('='))
      out = out.replace(FORM_PAIR, (m, lead: string, key: string) => (this.isSensitiveKey(formDecode(key)) ? `${lead}${key}=${MASK}` : m))
    if (out.includes('</'))
      out = out.replace(XML_PAIR, (m, tag: string, attrs = '', _v) => (this.isSensitiveKey(tag) ? `<${tag}${attrs}>${MASK}</${tag}>` : m))
    if (out.includes('name="'))
      out = out.replace(MULTIPART_FIELD, (m, head: string, name: string) => (this.isSensitiveKey(name) ? head + MASK : m))
    return this.maskValues(out)
  }

  /** A parsed JSON value, walked without recursion (bodies may nest 10,000 deep). */
  maskJson(value: unknown): unknown {
    const root = {value}
    const stack: Array<Record<string, unknown> | unknown[]> = [root]
    while (stack.length) {
      const node = stack.pop()!
      if (Array.isArray(node)) {
        for (let i = 0; i < node.length; i++) {
          const v = node[i]
          if (typeof v === 'string') node[i] = this.maskText(v)
          else if (v && typeof v === 'object') stack.push(v as Record<string, unknown>)
        }
        continue
      }
      for (const key of Object.keys(node)) {
        const v = node[key]
        if (node !== root && this.isSensitiveKey(key)) node[key] = MASK
        else if (typeof v === 'string')
          node[key] = this.maskText(v) // a string may hold a query string, JSON or a token
        else if (v && typeof v === 'object') stack.push(v as Record<string, unknown>)
      }
    }
    return root.value
  }

  /** A body's text: JSON is parsed and masked by key when complete; anything else gets the text rules. */
  maskBody(text: string, contentType: string | undefined, complete: boolean): string {
    // Most bodies name no sensitive field; then only secret-looking values can need masking.
    // Not when keys could be spelled in escapes the app decodes (\u0070assword, pass%77ord).
    if (!text.includes('\\u') && !text.includes('%') && !this.mentionsField(text)) return this.maskValues(text)
    if (complete && /json/i.test(contentType ?? '')) {
      try {
        return JSON.stringify(this.maskJson(JSON.parse(text)))
      } catch {
        // malformed (or too deep to re-serialise): never stored raw, the text rules apply
      }
    }
    return this.maskText(text)
  }

  header(name: string, value: string): string {
    const lower = name.toLowerCase()
    if (lower === 'authorization' || lower === 'proxy-authorization') {
      const scheme = /^(\S+)\s/.exec(value)?.[1]
      return scheme ? `${scheme} ${MASK}` : MASK
    }
    if (lower === 'cookie') return value.replace(/([^=;\s]+)=[^;]*/g, `$1=${MASK}`)
    if (lower === 'set-cookie') return value.replace(/^([^=;\s]+)=[^;]*/, `$1=${MASK}`)
    if (this.headerNames.has(lower) || this.isSensitiveKey(lower)) return MASK
    return this.maskValues(value)
  }

  headers(headers: Record<string, string | string[] | number | undefined>): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {}
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined) continue
      out[name] = Array.isArray(value) ? value.map((v) => this.header(name, v)) : this.header(name, String(value))
    }
    return out
  }

  /** The query string as an object, masked by key and by value. */
  query(search: string): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {}
    for (const [key, raw] of new URLSearchParams(search)) {
      const value = this.isSensitiveKey(key) ? MASK : this.maskValues(raw)
      const prev = out[key]
      out[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value]
    }
    return out
  }

  /** A URL (path and query) with its query values masked, for access records and referers. */
  url(url: string): string {
    const q = url.indexOf('?')
    if (q < 0) return this.maskValues(url)
    return (
      this.maskValues(url.slice(0, q)) +
      '?' +
      url
        .slice(q + 1)
        .replace(/([^=&]+)=([^&]*)/g, (_m, key: string, value: string) =>
          this.isSensitiveKey(formDecode(key)) ? `${key}=${MASK}` : `${key}=${this.maskValues(value)}`,
        )
    )
  }
}
