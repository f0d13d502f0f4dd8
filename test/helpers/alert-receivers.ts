import http from 'node:http'
import type {AddressInfo} from 'node:net'
import net from 'node:net'
import {SMTPServer} from 'smtp-server'

export type Hit = {at: number; path: string; body: string; authorization?: string}

/**
 * A webhook receiver on 127.0.0.1: keeps every request it gets; answers 200, 500, or never (hang,
 * until close) as `mode` says at the time the request comes.
 */
export async function webhookReceiver() {
  const hits: Hit[] = []
  const hung = new Set<http.ServerResponse>()
  const state = {mode: 'ok' as 'ok' | 500 | 'hang'}
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      hits.push({at: Date.now(), path: req.url ?? '', body: Buffer.concat(chunks).toString(), authorization: req.headers.authorization})
      if (state.mode === 'hang') hung.add(res)
      else res.writeHead(state.mode === 'ok' ? 200 : 500).end(state.mode === 'ok' ? 'ok' : 'broken')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as AddressInfo
  return {
    port,
    hits,
    state,
    async close() {
      for (const r of hung) r.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

export type Mail = {at: number; from: string; to: string[]; user?: string; raw: string; subject: string}

/** A local SMTP server (the smtp-server package) that takes mail from one user and keeps it. */
export async function smtpSink(user: string, password: string) {
  const mails: Mail[] = []
  const server = new SMTPServer({
    logger: false,
    allowInsecureAuth: true, // on 127.0.0.1, without TLS
    disabledCommands: ['STARTTLS'],
    onAuth(auth, _session, cb) {
      if (auth.username === user && auth.password === password) cb(null, {user})
      else cb(new Error('Invalid username or password'))
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString()
        const subject = /^Subject: (.*(?:\r?\n[ \t].*)*)/im.exec(raw)?.[1].replace(/\r?\n[ \t]+/g, ' ') ?? ''
        mails.push({
          at: Date.now(),
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          user: session.user as string | undefined,
          raw,
          subject,
        })
        cb()
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.server.address() as AddressInfo
  return {port, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve()))}
}

/**
 * A TCP relay to a database server: cut() makes the database unreachable (connections refused, open
 * ones cut), restore() reachable again on the same port.
 */
export async function tcpRelay(targetHost: string, targetPort: number) {
  const sockets = new Set<net.Socket>()
  let server: net.Server | undefined
  let port = 0
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      if (server) return resolve() // listening already
      const s = net.createServer((client) => {
        const upstream = net.connect(targetPort, targetHost)
        for (const s of [client, upstream]) {
          sockets.add(s)
          s.on('close', () => sockets.delete(s))
          s.on('error', () => {})
        }
        client.pipe(upstream).pipe(client)
      })
      s.once('error', reject)
      s.listen(port, '127.0.0.1', () => {
        server = s
        port = (s.address() as AddressInfo).port
        resolve()
      })
    })
  const cut = async () => {
    const s = server
    server = undefined
    for (const c of sockets) c.destroy()
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()))
  }
  await listen()
  return {
    get port() {
      return port
    },
    cut,
    restore: listen,
    close: cut,
  }
}
