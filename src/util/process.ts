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

/** Whether a server could listen on `port` now. */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer()
    srv.unref()
    srv.once('error', () => resolve(false))
    srv.listen({port, host, exclusive: true}, () => srv.close(() => resolve(true)))
  })
}

/** IANA's dynamic and private ports: no service is registered there. */
const DYNAMIC_PORTS: [number, number] = [49_152, 65_535]

/**
 * The range the OS takes outgoing connections' local ports from: Linux's ip_local_port_range; elsewhere
 * (macOS, Windows, the BSDs) IANA's dynamic range, which leaves none above it.
 */
function ephemeralPorts(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (lo > 0 && hi >= lo) return [lo, hi]
  } catch {
    // not Linux
  }
  return DYNAMIC_PORTS
}

/** A port the OS picks (from its ephemeral range) and reports free now. */
function osPickedPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, host, () => {
      const {port} = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

/**
 * A port free now, for a server that another program binds a moment later
 * (the app `run` spawns, the embedded PostgreSQL). It is taken from IANA's
 * dynamic ports above the OS's ephemeral range (on Linux's default,
 * 61000–65535): a port the OS picks could meanwhile become the local port of
 * an outgoing connection, and the program would fail to listen. Only another
 * server choosing the same port in that moment could take it. Where no such
 * ports are left (the OS lends them all, as macOS does), the OS picks one.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [, ephemeralHigh] = ephemeralPorts()
  const from = Math.max(DYNAMIC_PORTS[0], ephemeralHigh + 1)
  const count = DYNAMIC_PORTS[1] - from + 1
  for (let i = 0; count > 0 && i < 20; i++) {
    const port = from + Math.floor(Math.random() * count)
    if (await portIsFree(port, host)) return port
  }
  return osPickedPort(host)
}
