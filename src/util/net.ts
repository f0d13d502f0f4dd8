import net from 'node:net'

/** A loopback address (or localhost): only this host reaches a listener bound to it, and only this host answers one. */
export const isLoopback = (host: string) => host === 'localhost' || (net.isIP(host) !== 0 && /^(127\.|::1$|::ffff:127\.)/.test(host))
