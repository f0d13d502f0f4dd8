import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {acquireEmbedded, type EmbeddedServer} from '../../src/embedded/server.js'

/**
 * One real PostgreSQL for the whole run: AUDIT_LOGS_TEST_DATABASE_URL when
 * set, otherwise the product's own embedded server in a temp directory.
 * Test files make their own databases on it (test/helpers/db.ts).
 */
let server: EmbeddedServer | undefined
let dir: string | undefined

export async function mochaGlobalSetup(): Promise<void> {
  process.env.OCLIF_SKIP_NEW_VERSION_CHECK = '1'
  if (process.env.AUDIT_LOGS_TEST_DATABASE_URL) {
    process.env.TEST_SERVER_URL = process.env.AUDIT_LOGS_TEST_DATABASE_URL
    return
  }
  dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-test-pg-'))
  server = await acquireEmbedded(dir)
  process.env.TEST_SERVER_URL = server.adminUrl
}

export async function mochaGlobalTeardown(): Promise<void> {
  await server?.release()
  if (dir) rmSync(dir, {recursive: true, force: true})
}
