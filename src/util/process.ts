import {readFileSync} from 'node:fs'
import net from 'node:net'

/** Whether a process runs (EPERM: it does, as another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * A process's state letter (Z: a zombie, dead but not reaped yet) and when it started (clock ticks
 * since boot, to tell it from a later process given the same pid), from Linux's /proc; undefined
 * elsewhere or when it is gone.
 */
export function procStat(pid: number): {state: string; start: string} | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // fields 3 onwards, after the command's name
    return {state: fields[0], start: fields[19]}
  } catch {
    return undefined
  }
}

/** Listens on `port` (0: one the OS picks) and closes again: the port it got, or why it could not. */
export function probePort(port: number, host = '127.0.0.1'): Promise<{port: number} | {error: NodeJS.ErrnoException}> {
  return new Promise((resolve) => {
    const srv = net.createServer()
    srv.unref()
    srv.once('error', (error: NodeJS.ErrnoException) => resolve({error}))
    srv.listen({port, host, exclusive: true}, () => {
      const got = (srv.address() as net.AddressInfo).port
      srv.close(() => resolve({port: got}))
    })
  })
}

/** Whether a server could listen on `port` now. */
export const portIsFree = async (port: number, host = '127.0.0.1'): Promise<boolean> => 'port' in (await probePort(port, host))

/** IANA's dynamic and private ports: no service is registered there. */
const DYNAMIC_PORTS: [number, number] = [49_152, 65_535]

/**
 * The last port the OS lends outgoing connections: Linux's ip_local_port_range; elsewhere (macOS,
 * Windows, the BSDs) IANA's dynamic range, which leaves none above it.
 */
function ephemeralEnd(): number {
  try {
    const end = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[1])
    if (end > 0) return end
  } catch {
    // not Linux
  }
  return DYNAMIC_PORTS[1]
}

/** Ports this process handed out lately: a caller may take two before binding either (the proxy's and the admin listener's). */
const handedOut: number[] = []

/**
 * A port free now, for a server that another program binds a moment later
 * (the app `run` spawns, the embedded PostgreSQL). It is taken from IANA's
 * dynamic ports above the OS's ephemeral range (on Linux's default,
 * 61000–65535): a port the OS picks could meanwhile become the local port of
 * an outgoing connection, and the program would fail to listen. Only another
 * server choosing the same port in that moment could take it; none of the
 * last few this process handed out is handed out again. Where no such ports
 * are left (the OS lends them all, as macOS does), the OS picks one.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const from = Math.max(DYNAMIC_PORTS[0], ephemeralEnd() + 1)
  const count = DYNAMIC_PORTS[1] - from + 1
  let port: number | undefined
  for (let i = 0; port === undefined && count > 0 && i < 20; i++) {
    const candidate = from + Math.floor(Math.random() * count)
    if (!handedOut.includes(candidate) && (await portIsFree(candidate, host))) port = candidate
  }
  if (port === undefined) {
    const picked = await probePort(0, host)
    if ('error' in picked) throw picked.error
    port = picked.port
  }
  handedOut.push(port)
  if (handedOut.length > 16) handedOut.shift()
  return port
}
