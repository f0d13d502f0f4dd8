import net from 'node:net'

/** What a URI scheme can be (RFC 3986 §3.1), kept short. */
const SCHEME = /^[a-z][a-z0-9+.-]{0,15}$/

/** X-Forwarded-For (and X-Forwarded-Proto) are believed only when they come through configured trusted proxies. */
export class ClientIp {
  private readonly trusted = new net.BlockList()
  private readonly any: boolean

  constructor(trustedProxies: string[]) {
    for (const entry of trustedProxies) {
      const [addr, bits] = entry.split('/')
      const type = net.isIPv6(addr) ? 'ipv6' : 'ipv4'
      if (!net.isIP(addr)) throw new Error(`trustedProxies: "${entry}" is not an IP address or CIDR range`)
      if (bits === undefined) this.trusted.addAddress(addr, type)
      else this.trusted.addSubnet(addr, Number(bits), type)
    }
    this.any = trustedProxies.length > 0
  }

  private isTrusted(ip: string): boolean {
    return net.isIP(ip) !== 0 && this.trusted.check(ip, net.isIPv6(ip) ? 'ipv6' : 'ipv4')
  }

  /**
   * The scheme the client used, for the record: a trusted proxy's X-Forwarded-Proto (its first value),
   * else the scheme of the connection itself. Any client can send the header; as with the address, the
   * record believes it only from a proxy in trustedProxies. (It is forwarded to the app as it came.)
   */
  scheme(remote: string | undefined, forwardedProto: string | string[] | undefined, own: string): string {
    if (!this.any || !forwardedProto) return own
    const ip = normalizeIp(remote)
    if (!ip || !this.isTrusted(ip)) return own
    const first = String(forwardedProto).split(',', 1)[0].trim().toLowerCase()
    return SCHEME.test(first) ? first : own
  }

  resolve(remote: string | undefined, forwardedFor: string | string[] | undefined): string | null {
    let ip = normalizeIp(remote)
    if (!this.any || !ip || !forwardedFor || !this.isTrusted(ip)) return ip
    const hops = String(forwardedFor)
      .split(',')
      .map((h) => normalizeIp(h.trim()))
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]
      if (!hop || net.isIP(hop) === 0) break
      ip = hop
      if (!this.isTrusted(hop)) break
    }
    return ip
  }
}

export function normalizeIp(ip: string | undefined | null): string | null {
  if (!ip) return null
  let v = ip.toLowerCase().startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip
  if (!net.isIP(v)) return null
  const zone = v.indexOf('%') // a link-local IPv6 peer's zone (fe80::1%eth0): not part of the address, and PostgreSQL's inet refuses it
  if (zone > 0) v = v.slice(0, zone)
  // one spelling per address (2001:DB8:0::1 → 2001:db8::1), as PostgreSQL's host() gives it: the files and
  // the database then count one address once (the WHATWG URL parser writes IPv6 in RFC 5952's form)
  if (v.includes(':')) v = new URL(`http://[${v}]/`).hostname.slice(1, -1)
  return v
}
