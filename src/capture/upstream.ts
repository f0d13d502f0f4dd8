/** Where the proxy connects for an upstream URL. */
export type UpstreamTarget = {
  /** An IPv6 literal without the URL's brackets ([::1] is not a name to look up). */
  host: string
  /** The URL's port, else the scheme's. */
  port: number
  /**
   * The URL's path, put before every request's (http://app:3000/v2 sends /orders to /v2/orders); '' for
   * none. The record keeps the path the client asked for.
   */
  base: string
}

export function upstreamTarget(upstream: URL): UpstreamTarget {
  return {
    host: upstream.hostname.replace(/^\[|\]$/g, ''),
    port: Number(upstream.port || (upstream.protocol === 'https:' ? 443 : 80)),
    base: upstream.pathname.replace(/\/+$/, ''),
  }
}
