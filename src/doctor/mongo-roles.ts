import {type Collection, type Document, MongoServerError} from 'mongodb'
import type {ResolvedConfig} from '../config/resolve.js'
import {type MongoStore, connectMongo} from '../stores/mongo/connection.js'
import {isUnauthorized, isUnsupported, reason, serverName} from '../stores/mongo/plan.js'
import {withUser} from '../stores/mongo/setup.js'
import {LOG_TYPES} from '../stores/log-types.js'
import {redactText} from '../util/redact.js'
import {type Check, fail, ok, skip, warn} from './check.js'

type Action = 'find' | 'insert' | 'update' | 'delete'
const ACTIONS: Action[] = ['find', 'insert', 'update', 'delete']
const EXPECTED: Record<'writer' | 'reader', Action[]> = {writer: ['insert'], reader: ['find']}

/** The _id of the insert probe: an array, which MongoDB (and FerretDB) refuse as an _id after the privilege check. */
const PROBE_ID = ['audit-logs doctor probe: never stored']

/**
 * Whether the connected user may do `action` on `collection`, tried by an operation that changes nothing whatever
 * its rights: find, update and delete match no document ({_id: {$in: []}}), and the insert's document has an array
 * as its _id, which the server refuses (BadValue) only once the privilege check passed; a user without the privilege
 * gets Unauthorized (13) first. MongoDB checks a command's privileges before it runs it, so the error says which.
 * 'stored': the server kept the probe (none we know does); the caller removes it.
 */
async function tryAction(collection: Collection<Document>, action: Action): Promise<boolean | 'stored'> {
  const none = {_id: {$in: []}}
  try {
    if (action === 'find') await collection.find(none, {limit: 1, projection: {_id: 1}}).toArray()
    else if (action === 'update') await collection.updateOne(none, {$set: {doctorProbe: true}})
    else if (action === 'delete') await collection.deleteOne(none)
    else {
      await collection.insertOne({_id: PROBE_ID} as unknown as Document)
      return 'stored'
    }
    return true
  } catch (error) {
    if (isUnauthorized(error)) return false
    // the insert's _id refused: the privilege check had passed
    if (action === 'insert' && error instanceof MongoServerError && /_id/.test(error.message)) return true
    throw error
  }
}

/**
 * The MongoDB writer and reader users setup-db makes where the URI's user may (`<database>_writer`: insert only,
 * `<database>_reader`: find only), tried, not assumed: logged in as each with writerPassword / readerPassword, every
 * collection is tried with find, insert, update and delete by operations that change nothing (tryAction). A server
 * without users (FerretDB without authentication) is skipped with its reason; one whose users have no roles
 * (FerretDB's authentication) shows as users that may do everything, which is what they may.
 */
export async function mongoUserChecks(admin: MongoStore, config: ResolvedConfig): Promise<Check[]> {
  const {db, target} = admin
  const server = await serverName(db)
  const names = {writer: `${target.dbName}_writer`, reader: `${target.dbName}_reader`}
  let users: Document[] | undefined
  try {
    users = ((await db.command({usersInfo: Object.values(names).map((user) => ({user, db: target.dbName}))})).users ?? []) as Document[]
  } catch (error) {
    if (isUnsupported(error)) {
      const why = `${server} has no users (${reason(error)}): every connection may do everything, no user can be narrowed nor tried`
      return [skip('MongoDB writer user', why), skip('MongoDB reader user', why)]
    }
    if (!isUnauthorized(error)) {
      const why = `cannot list the users: ${redactText((error as Error).message)}`
      return [fail('MongoDB writer user', why, 'check mongoUri'), fail('MongoDB reader user', why, 'check mongoUri')]
    }
    // the URI's user may not list users: the logins are tried all the same
  }
  const out: Check[] = []
  for (const kind of ['writer', 'reader'] as const) {
    const name = `MongoDB ${kind} user`
    const user = names[kind]
    const setting = kind === 'writer' ? 'writerPassword (AUDIT_LOGS_WRITER_PASSWORD)' : 'readerPassword (AUDIT_LOGS_READER_PASSWORD)'
    const password = kind === 'writer' ? config.writerPassword : config.readerPassword
    if (users && !users.some((u) => u.user === user)) {
      out.push(
        warn(
          name,
          `no user ${user} in ${target.dbName}: the store is written and read as the URI's user, whose rights are not narrowed`,
          'audit-logs setup-db --store mongo, with a mongoUri whose user may create users and roles',
        ),
      )
      continue
    }
    if (!password) {
      out.push(
        warn(
          name,
          `cannot be checked: no ${setting} is configured to log in as ${user}`,
          `set ${setting} (the password setup-db printed or was given)`,
        ),
      )
      continue
    }
    out.push(await tryUser(admin, kind, user, password, setting))
  }
  return out
}

async function tryUser(admin: MongoStore, kind: 'writer' | 'reader', user: string, password: string, setting: string): Promise<Check> {
  const name = `MongoDB ${kind} user`
  const {target} = admin
  let store: MongoStore
  try {
    store = await connectMongo({...target, uri: withUser(target.uri, user, password, target.dbName)}, {serverSelectionTimeoutMS: 5000})
  } catch (error) {
    return fail(name, `cannot log in as ${user}: ${redactText((error as Error).message)}`, `set ${setting} to ${user}'s password`)
  }
  const excess: string[] = []
  const missing: string[] = []
  const stored: string[] = []
  try {
    for (const type of LOG_TYPES) {
      const collection = target.collections[type]
      for (const action of ACTIONS) {
        const allowed = await tryAction(store.db.collection(collection), action)
        if (allowed === 'stored') {
          // never seen: remove the probe as the URI's user, and say so
          await admin.db.collection(collection).deleteOne({_id: PROBE_ID} as unknown as Document)
          stored.push(collection)
        }
        const expected = EXPECTED[kind].includes(action)
        if (expected && !allowed) missing.push(`${action} on ${collection}`)
        if (!expected && allowed) excess.push(`${action} on ${collection}`)
      }
    }
  } catch (error) {
    return fail(name, `could not try ${user}'s privileges: ${redactText((error as Error).message)}`, 'audit-logs setup-db --store mongo')
  } finally {
    await store.close().catch(() => {})
  }
  const how = `tried as ${user} by operations that change nothing${stored.length ? `; the server stored the insert probe in ${stored.join(', ')} (removed)` : ''}`
  if (excess.length) {
    const actions = [...new Set(excess.map((e) => e.split(' ')[0]))]
    return fail(
      name,
      `${user} may ${summarise(excess)}, beyond ${EXPECTED[kind].join(', ')} (${how})`,
      `in mongosh: db.getSiblingDB(${JSON.stringify(target.dbName)}).getUser(${JSON.stringify(user)}) must hold only the role ${user}; ` +
        `revoke ${actions.join(', ')} from it (db.revokePrivilegesFromRole) or from the other roles it holds`,
    )
  }
  if (missing.length) return fail(name, `${user} may not ${summarise(missing)} (${how})`, 'audit-logs setup-db --store mongo')
  const refused = ACTIONS.filter((a) => !EXPECTED[kind].includes(a))
  return ok(name, `${user} may ${EXPECTED[kind].join(', ')}; ${refused.join(', ')} refused on every collection (${how})`)
}

/** "find, update on request_logs, access_logs, …": the actions, then the collections they were found on. */
function summarise(items: string[]): string {
  const actions = [...new Set(items.map((e) => e.split(' on ')[0]))]
  const collections = [...new Set(items.map((e) => e.split(' on ')[1]))]
  return `${actions.join(', ')} on ${collections.join(', ')}`
}
