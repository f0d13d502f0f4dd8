import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {acquireEmbedded, type EmbeddedServer} from '../../src/embedded/server.js'
import {type FerretDb, ferretDbBuilt, isFerretDbAt, startFerretDb} from './mongo.js'

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
