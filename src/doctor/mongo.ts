import type {ResolvedConfig} from '../config/resolve.js'
import {mongoTarget} from '../stores/mongo/target.js'
import {redactText} from '../util/redact.js'
import {type Check, fail, ok, skip, warn} from './check.js'

const FIX = 'audit-logs setup-db --store mongo'

/** MongoDB's checks: reachable; each collection there with its indexes and validator, as setup-db makes them. */
export async function mongoChecks(config: ResolvedConfig): Promise<Check[]> {
  const target = mongoTarget(config)
  if (!target) return [skip('MongoDB', 'no mongoUri is configured')]
  // the driver is loaded only when MongoDB is configured
  const {connectMongo} = await import('../stores/mongo/connection.js')
  const {mongoState} = await import('../stores/mongo/status.js')
  let store
  try {
    store = await connectMongo(target, {serverSelectionTimeoutMS: 5000})
  } catch (error) {
    return [
      fail('MongoDB', redactText((error as Error).message), 'check the server runs, then mongoUri (AUDIT_LOGS_MONGO_URI or --mongo-uri)'),
      skip('MongoDB collections and indexes', 'MongoDB is not reachable'),
      skip('MongoDB validators', 'MongoDB is not reachable'),
      skip('MongoDB writer user', 'MongoDB is not reachable'),
      skip('MongoDB reader user', 'MongoDB is not reachable'),
    ]
  }
  try {
    const state = await mongoState(store)
    const out: Check[] = [ok('MongoDB', `reachable: database ${state.database} on ${state.server}`)]
    const absent = state.collections.filter((c) => !c.exists).map((c) => c.collection)
    const noIndex = state.collections.flatMap((c) =>
      c.indexes.filter((i) => i.state === 'missing').map((i) => `${c.collection} (${i.fields})`),
    )
    if (absent.length || noIndex.length)
      out.push(
        fail(
          'MongoDB collections and indexes',
          [absent.length && `missing collections: ${absent.join(', ')}`, noIndex.length && `missing indexes: ${noIndex.join('; ')}`]
            .filter(Boolean)
            .join('; '),
          FIX,
        ),
      )
    else out.push(ok('MongoDB collections and indexes', `${state.collections.length} collections, every index present`))
    const missing = state.collections.filter((c) => c.validator !== 'present')
    // FerretDB implements no validators: setup-db skips them there, and so does this check
    if (missing.length && state.server.startsWith('FerretDB'))
      out.push(skip('MongoDB validators', `${state.server} implements no validators`))
    else if (missing.length)
      out.push(
        warn(
          'MongoDB validators',
          `${missing.map((c) => `${c.collection}: ${c.validator}`).join(', ')} (a second guard on what the writer stores)`,
          FIX,
        ),
      )
    else out.push(ok('MongoDB validators', 'present on every collection'))
    // the writer and reader users, tried as themselves (mongo-roles.ts)
    const {mongoUserChecks} = await import('./mongo-roles.js')
    out.push(...(await mongoUserChecks(store, config)))
    return out
  } finally {
    await store.close()
  }
}
