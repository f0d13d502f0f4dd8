import {randomBytes, scrypt as scryptCallback, timingSafeEqual} from 'node:crypto'
import {promisify} from 'node:util'
import ipaddr from 'ipaddr.js'
import {usageError} from '../errors.js'

const scrypt = promisify(scryptCallback) as (password: string, salt: Buffer, keylen: number, options: object) => Promise<Buffer>

/** scrypt's cost: 2^15 × 8 × 128 B = 32 MiB and about 0.1 s a try on one core (OWASP's minimum is 2^17 at r 8 with p 1; the login limiter bounds the tries). */
const COST = {N: 32_768, r: 8, p: 1}
const KEY_BYTES = 32
const maxmem = (N: number, r: number) => 256 * N * r

/** `scrypt$N$r$p$salt$key`, salt and key in base64url: what `audit-logs ui hash-password` prints and uiUsers holds. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await scrypt(password, salt, KEY_BYTES, {...COST, maxmem: maxmem(COST.N, COST.r)})
  return `scrypt$${COST.N}$${COST.r}$${COST.p}$${salt.toString('base64url')}$${key.toString('base64url')}`
}

type Hash = {N: number; r: number; p: number; salt: Buffer; key: Buffer}

function parseHash(text: string): Hash | undefined {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(text)
  if (!m) return undefined
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])]
  // a power of two, and bounded (128·N·r·p at most 256 MiB) so that a hash in the config cannot make a login take the machine
  if (N < 2 || (N & (N - 1)) !== 0 || r < 1 || p < 1 || 128 * N * r * p > 256 * 1024 * 1024) return undefined
  return {N, r, p, salt: Buffer.from(m[4], 'base64url'), key: Buffer.from(m[5], 'base64url')}
}

/** Compared in constant time; a user that does not exist costs the same scrypt as one that does. */
async function verify(password: string, hash: Hash): Promise<boolean> {
  const key = await scrypt(password, hash.salt, hash.key.length, {N: hash.N, r: hash.r, p: hash.p, maxmem: maxmem(hash.N, hash.r) + 1024})
  return timingSafeEqual(key, hash.key)
}

/** The viewer's accounts (uiUsers: NAME:HASH entries). */
export class Users {
  private readonly hashes = new Map<string, Hash>()
  private readonly dummy: Promise<Hash>

  constructor(entries: string[]) {
    for (const entry of entries) {
      const colon = entry.indexOf(':')
      const name = entry.slice(0, colon)
      const hash = colon > 0 ? parseHash(entry.slice(colon + 1)) : undefined
      if (!hash)
        throw usageError(`uiUsers: the entry for ${JSON.stringify(name)} is not NAME:HASH with a hash from \`audit-logs ui hash-password\``)
      if (this.hashes.has(name)) throw usageError(`uiUsers: ${JSON.stringify(name)} is listed twice`)
      this.hashes.set(name, hash)
    }
    this.dummy = hashPassword(randomBytes(12).toString('hex')).then((h) => parseHash(h)!)
  }

  get size(): number {
    return this.hashes.size
  }

  async check(name: string, password: string): Promise<boolean> {
    const hash = this.hashes.get(name)
    const ok = await verify(password, hash ?? (await this.dummy))
    return ok && hash !== undefined
  }
}

export type Session = {id: string; user: string; csrf: string; created: number; seen: number; via: 'password' | 'proxy'}

const ABSOLUTE_MS = 12 * 3_600_000
const MAX_SESSIONS = 10_000

/** Sessions in memory: a restart logs everyone out, which for a read-only viewer is the safe side. */
export class Sessions {
  private readonly map = new Map<string, Session>()
  constructor(private readonly idleMs: number) {}

  create(user: string, via: Session['via']): Session {
    if (this.map.size >= MAX_SESSIONS) this.map.delete(this.map.keys().next().value!) // the oldest: memory stays bounded
    const now = Date.now()
    const s: Session = {
      id: randomBytes(32).toString('base64url'),
      user,
      csrf: randomBytes(24).toString('base64url'),
      created: now,
      seen: now,
      via,
    }
    this.map.set(s.id, s)
    return s
  }

  get(id: string | undefined): Session | undefined {
    if (!id) return undefined
    const s = this.map.get(id)
    if (!s) return undefined
    const now = Date.now()
    if (now - s.seen > this.idleMs || now - s.created > ABSOLUTE_MS) {
      this.map.delete(id)
      return undefined
    }
    s.seen = now
    return s
  }

  delete(id: string): void {
    this.map.delete(id)
  }
}

/**
 * Login attempts counted per user name and per client address (an IPv6
 * address by its /64, which one client holds whole) in a fixed window; past
 * the limit no password is even checked until the window ends. An attempt
 * counts when it starts, before the scrypt check, so that concurrent tries
 * cannot all pass the check first; a success gives its count back. A few
 * lines of ours: a rate-limiting library would bring a store interface this
 * one process does not need.
 */
export class LoginLimiter {
  static readonly WINDOW_MS = 15 * 60_000
  static readonly MAX_KEYS = 100_000
  private readonly counts = new Map<string, {n: number; until: number}>()
  constructor(private readonly perUser: number) {}

  private keys(ip: string, user: string): [string, string] {
    let client = ip
    try {
      const a = ipaddr.process(ip)
      if (a.kind() === 'ipv6') client = (a as ipaddr.IPv6).toNormalizedString().split(':').slice(0, 4).join(':') + '::/64'
    } catch {
      // not an address: counted as it is
    }
    return [`ip:${client}`, `user:${user}`]
  }

  private limitOf(key: string) {
    return key.startsWith('ip:') ? this.perUser * 4 : this.perUser
  }

  /**
   * Starts an attempt: 0 when it may go on (it is counted), else the seconds to wait. With the table full
   * of live entries (a flood of addresses), a key not in it waits: nobody's lock is evicted to make room.
   */
  begin(ip: string, user: string): number {
    const now = Date.now()
    const keys = this.keys(ip, user)
    let wait = 0
    for (const key of keys) {
      const c = this.counts.get(key)
      if (c && c.until > now && c.n >= this.limitOf(key)) wait = Math.max(wait, Math.ceil((c.until - now) / 1000))
    }
    if (wait) return wait
    if (this.counts.size >= LoginLimiter.MAX_KEYS - 2) {
      for (const [k, c] of this.counts) if (c.until <= now) this.counts.delete(k)
      if (this.counts.size >= LoginLimiter.MAX_KEYS - 2 && keys.some((k) => !this.counts.has(k))) return 60
    }
    for (const key of keys) {
      const c = this.counts.get(key)
      if (!c || c.until <= now) this.counts.set(key, {n: 1, until: now + LoginLimiter.WINDOW_MS})
      else c.n++
    }
    return 0
  }

  /** The attempt succeeded: the user's count is cleared, the address's attempt given back. */
  succeeded(ip: string, user: string): void {
    const [client, name] = this.keys(ip, user)
    this.counts.delete(name)
    const c = this.counts.get(client)
    if (c && c.n > 0) c.n--
  }
}

/** The addresses (and CIDR ranges) whose authenticated-user header is believed. */
export class TrustedProxies {
  private readonly ranges: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>
  constructor(entries: string[]) {
    this.ranges = entries.map((e) => {
      try {
        return e.includes('/') ? ipaddr.parseCIDR(e) : ((a) => [a, a.kind() === 'ipv4' ? 32 : 128] as [typeof a, number])(ipaddr.parse(e))
      } catch {
        throw usageError(`uiAuthProxies: "${e}" is not an address or a CIDR range (127.0.0.1, 10.0.0.0/8, ::1)`)
      }
    })
  }

  get empty(): boolean {
    return this.ranges.length === 0
  }

  trusts(address: string | undefined): boolean {
    if (!address) return false
    let a: ipaddr.IPv4 | ipaddr.IPv6
    try {
      a = ipaddr.process(address) // ::ffff:127.0.0.1 is 127.0.0.1
    } catch {
      return false
    }
    return this.ranges.some(([range, bits]) => range.kind() === a.kind() && a.match(range, bits))
  }
}
