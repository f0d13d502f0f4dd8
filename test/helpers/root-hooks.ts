import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {acquireEmbedded, type EmbeddedServer} from '../../src/embedded/server.js'
import {type FerretDb, ferretDbBuilt, isFerretDbAt, startFerretDb} from './mongo.js'
import {childPids} from './run-server.js'

/**
 * One real PostgreSQL for the whole run: AUDIT_LOGS_TEST_DATABASE_URL when
 * set, otherwise the product's own embedded server in a temp directory.
 * Test files make their own databases on it (test/helpers/db.ts).
 */
let server: EmbeddedServer | undefined
let dir: string | undefined
let ferret: FerretDb | undefined

/**
 * And one MongoDB-compatible server: AUDIT_LOGS_TEST_MONGO_URI when set, otherwise FerretDB (test/helpers/mongo.ts)
 * when built; without either the MongoDB tests skip (and fail under CI).
 */
async function startMongo(): Promise<void> {
  if (process.env.AUDIT_LOGS_TEST_MONGO_URI) {
    process.env.TEST_MONGO_URI = process.env.AUDIT_LOGS_TEST_MONGO_URI
    // a FerretDB given by URI is still FerretDB: the tests of what it lacks must know (buildInfo names it)
    process.env.TEST_MONGO_KIND = (await isFerretDbAt(process.env.AUDIT_LOGS_TEST_MONGO_URI)) ? 'ferretdb' : 'mongodb'
  } else if (ferretDbBuilt()) {
    ferret = await startFerretDb()
    process.env.TEST_MONGO_URI = ferret.uri
    process.env.TEST_MONGO_KIND = 'ferretdb'
  }
}

export async function mochaGlobalSetup(): Promise<void> {
  process.env.OCLIF_SKIP_NEW_VERSION_CHECK = '1'
  await startMongo()
  if (process.env.AUDIT_LOGS_TEST_DATABASE_URL) {
    process.env.TEST_SERVER_URL = process.env.AUDIT_LOGS_TEST_DATABASE_URL
    return
  }
  dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-test-pg-'))
  server = await acquireEmbedded(dir)
  process.env.TEST_SERVER_URL = server.adminUrl
}

export async function mochaGlobalTeardown(): Promise<void> {
  await ferret?.stop()
  await server?.release()
  if (dir) rmSync(dir, {recursive: true, force: true})
}

/**
 * What the run's own servers are (FerretDB, the embedded PostgreSQL's processes): any other child of this process
 * still alive once every test and its hooks have run is a leak. A test that failed before stopping what it started
 * (a `run` server, an app) would keep mocha waiting for ever, and CI past its time limit: the last root hook kills
 * each leftover's process group and fails, naming them.
 */
let ownChildren = new Set<number>()

/** The descendants of `pid`, children first. */
const descendants = (pid: number): number[] => childPids(pid).flatMap((c) => [c, ...descendants(c)])

const liveChildren = (): {pid: number; command: string}[] =>
  childPids(process.pid).flatMap((pid) => {
    try {
      if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return [] // exited, not yet reaped
      return [{pid, command: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 200)}]
    } catch {
      return [] // gone meanwhile
    }
  })

export const mochaHooks = {
  beforeAll(): void {
    ownChildren = new Set(liveChildren().map((c) => c.pid))
  },
  async afterAll(): Promise<void> {
    // tsx's esbuild service may start on a transform a test made first: it is the loader's, not a test's
    const left = () => liveChildren().filter((c) => !ownChildren.has(c.pid) && !/\besbuild\b.*--service/.test(c.command))
    // a child stopped by the last test's hooks may still be exiting: a few seconds' grace before it counts as left behind
    const end = Date.now() + 5000
    while (left().length > 0 && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 100))
    const leftovers = left()
    for (const {pid} of leftovers) {
      // its whole tree (a child in our group may have children of its own holding its pipes), then its group (a detached `run`)
      for (const target of [...descendants(pid).reverse(), pid, -pid]) {
        try {
          process.kill(target, 'SIGKILL')
        } catch {
          // gone, or not a group leader
        }
      }
    }
    if (leftovers.length > 0)
      throw new Error(
        `processes a test started were still running after the last test, now killed: ${leftovers.map((c) => `${c.pid} ${c.command}`).join('; ')}`,
      )
  },
}
