import {type TestDatabase, freshDatabase} from './db.js'
import {type Upstream, startUpstream} from './upstream.js'

/**
 * The test app and a fresh migrated database for one suite: made before its
 * tests, closed and dropped after them. Call it inside `describe`; the
 * fields are set once the suite's `before` hooks have run.
 */
export function appAndDatabase(): {app: Upstream; db: TestDatabase} {
  const ctx = {} as {app: Upstream; db: TestDatabase}
  before(async () => {
    ctx.app = await startUpstream()
    ctx.db = await freshDatabase({migrated: true})
  })
  after(async () => {
    await ctx.app?.close()
    await ctx.db?.drop()
  })
  return ctx
}
