import {type ChildProcess, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {MongoClient} from 'mongodb'
import {freePort} from '../../src/util/process.js'

/**
 * The MongoDB-compatible server of the tests: AUDIT_LOGS_TEST_MONGO_URI when
 * set (a real MongoDB), otherwise FerretDB with its SQLite backend in a temp
 * directory, built once by test/support/ferretdb.sh (.ci/run calls it).
 */
export const FERRETDB_BIN = path.join(
  process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'),
  'audit-logs/ferretdb-v1.24.2/ferretdb',
)

/** The server's URI for this run, or undefined when there is none (the MongoDB tests skip, and fail under CI). */
export const mongoServerUri = (): string | undefined => process.env.TEST_MONGO_URI || undefined
/** Whether the tests talk to FerretDB (our own), not a real MongoDB: what each degrades to. */
export const isFerretDb = () => process.env.TEST_MONGO_KIND === 'ferretdb'

export type FerretDb = {uri: string; dir: string; stop(): Promise<void>}

/** Starts FerretDB on a free loopback port, telemetry off, its data in `dir` (a new temp directory by default). */
export async function startFerretDb(
  options: {dir?: string; port?: number; auth?: {user: string; password: string}} = {},
): Promise<FerretDb> {
  const dir = options.dir ?? mkdtempSync(path.join(os.tmpdir(), 'audit-logs-test-ferretdb-'))
  const port = options.port ?? (await freePort())
  const args = [
    '--handler=sqlite',
    `--sqlite-url=file:${dir}/`,
    `--state-dir=${dir}`,
    `--listen-addr=127.0.0.1:${port}`,
    '--debug-addr=-',
    '--telemetry=disable',
    '--log-level=error',
  ]
  if (options.auth)
    args.push(
      '--test-enable-new-auth',
      `--setup-username=${options.auth.user}`,
      `--setup-password=${options.auth.password}`,
      '--setup-database=admin',
    )
  const child: ChildProcess = spawn(FERRETDB_BIN, args, {stdio: ['ignore', 'ignore', 'pipe']})
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)))
  const credentials = options.auth ? `${options.auth.user}:${encodeURIComponent(options.auth.password)}@` : ''
  const uri = `mongodb://${credentials}127.0.0.1:${port}/`
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`FerretDB exited with code ${child.exitCode}: ${stderr}`)
    const client = new MongoClient(uri, {serverSelectionTimeoutMS: 500})
    const ok = await client
      .db('admin')
      .command({ping: 1})
      .then(
        () => true,
        () => false,
      )
    await client.close().catch(() => {})
    if (ok) break
    if (Date.now() > deadline) throw new Error(`FerretDB did not answer on ${port} within 20 s: ${stderr}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    uri,
    dir,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        await new Promise((r) => child.once('exit', r))
      }
      if (!options.dir) rmSync(dir, {recursive: true, force: true})
    },
  }
}

export const ferretDbBuilt = () => existsSync(FERRETDB_BIN)

/** Whether the server at `uri` is FerretDB (its buildInfo carries ferretdbVersion). */
export async function isFerretDbAt(uri: string): Promise<boolean> {
  const client = new MongoClient(uri, {serverSelectionTimeoutMS: 10_000})
  try {
    const info = await client.db('admin').command({buildInfo: 1})
    return info.ferretdbVersion !== undefined
  } finally {
    await client.close()
  }
}

export type TestMongo = {uri: string; dbName: string; client: MongoClient; drop(): Promise<void>}

/** A fresh database name on the test server for one test file, with a connected client; drop() removes it. */
export async function freshMongo(prefix = 't'): Promise<TestMongo> {
  const uri = mongoServerUri()
  if (!uri)
    throw new Error('no MongoDB server for the tests: build FerretDB with test/support/ferretdb.sh or set AUDIT_LOGS_TEST_MONGO_URI')
  const dbName = `${prefix}_${randomBytes(5).toString('hex')}`
  const client = new MongoClient(uri, {serverSelectionTimeoutMS: 5000})
  await client.connect()
  return {
    uri,
    dbName,
    client,
    async drop() {
      await client
        .db(dbName)
        .dropDatabase()
        .catch(() => {})
      await client.close().catch(() => {})
    },
  }
}

/**
 * A TCP relay in front of the test server: stop() closes its port and cuts
 * every connection (to a client, exactly a server that went away), start()
 * opens it again on the same port. It stands for a server stopped and
 * started, whichever server the tests use.
 */
export async function tcpRelay(uri: string): Promise<{uri: string; stop(): Promise<void>; start(): Promise<void>; close(): Promise<void>}> {
  const target = new URL(uri.replace(/^mongodb(\+srv)?:/, 'http:'))
  const port = await freePort()
  const sockets = new Set<net.Socket>()
  let server: net.Server | undefined
  const start = () =>
    new Promise<void>((resolve, reject) => {
      server = net.createServer((client) => {
        const upstream = net.connect(Number(target.port || 27017), target.hostname)
        for (const s of [client, upstream]) {
          sockets.add(s)
          s.on('error', () => {})
          s.on('close', () => {
            sockets.delete(s)
            client.destroy()
            upstream.destroy()
          })
        }
        client.pipe(upstream).pipe(client)
      })
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => resolve())
    })
  const stop = async () => {
    const s = server
    server = undefined
    for (const socket of sockets) socket.destroy()
    if (s) await new Promise((r) => s.close(r))
  }
  await start()
  const relayed = new URL(uri.replace(/^mongodb:/, 'http:'))
  relayed.host = `127.0.0.1:${port}`
  return {uri: relayed.toString().replace(/^http:/, 'mongodb:'), stop, start, close: stop}
}
