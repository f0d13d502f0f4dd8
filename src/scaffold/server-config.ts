import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import type {Stores} from '../config/schema.js'
import {AuditLogsError, ExitCode} from '../errors.js'

export const TEMPLATE = fileURLToPath(new URL('../../templates/audit-logs.config.mjs.tpl', import.meta.url))

export type ServerConfigAnswers = {
  bind: string
  upstream?: string
  command?: string[]
  workers: number
  adminBind: string
  logDir: string
  logMaxBytes: number
  logBackupCount: number
  databaseUrl?: string
  /** Only when configured: a written dbName would override the database named in AUDIT_LOGS_DATABASE_URL. */
  dbName?: string
  /** The MongoDB settings: each written only when it is not the default (mongoUri only from a flag or the file), else as a comment. */
  stores?: Stores
  mongoUri?: string
  mongoDbName?: string
  mongoRequestCollection?: string
  mongoAccessCollection?: string
  maxBodyLength: number
  excludePaths: string[]
  excludeExtensions: string[]
  sensitiveFields: string[]
  sensitiveHeaders: string[]
  requestRetentionDays: number
  accessRetentionDays: number
}

const js = (v: unknown) => JSON.stringify(v)
/** A setting written when it differs from its default; else the default as a comment, to show the key. */
const optional = (key: string, value: string | undefined, fallback: string) =>
  value !== undefined && value !== fallback ? `${key}: ${js(value)},` : `// ${key}: ${js(fallback)},`

/** Fills the template (pure): every value becomes a JS literal, so no answer can inject code. */
export function renderServerConfig(a: ServerConfigAnswers, template = readFileSync(TEMPLATE, 'utf8')): string {
  const values: Record<string, string> = {
    bind: js(a.bind),
    upstreamLine: a.upstream ? `upstream: ${js(a.upstream)},` : `// upstream: 'http://127.0.0.1:3000', // or spawn the app with command`,
    commandLine: a.command?.length
      ? `command: ${js(a.command)}, // spawned with a free port in PORT`
      : `// command: ['node', 'server.js'], // spawned with a free port in PORT`,
    workers: js(a.workers),
    adminBind: js(a.adminBind),
    logDir: js(a.logDir),
    logMaxBytes: js(a.logMaxBytes),
    logBackupCount: js(a.logBackupCount),
    databaseLine: a.databaseUrl
      ? `databaseUrl: ${js(a.databaseUrl)},`
      : `// databaseUrl: 'postgres://audit_logs_writer:PASSWORD@db.internal:5432/audit_logs',`,
    dbNameLine: a.dbName
      ? `dbName: ${js(a.dbName)},`
      : `// dbName: 'audit_logs', // default: the database named in databaseUrl (or AUDIT_LOGS_DATABASE_URL), else audit_logs`,
    storesLine:
      a.stores && a.stores !== 'postgres'
        ? `stores: ${js(a.stores)}, // postgres, mongo or both`
        : `// stores: 'both', // postgres (the default), mongo, or both`,
    mongoUriLine: a.mongoUri
      ? `mongoUri: ${js(a.mongoUri)},`
      : `// mongoUri: 'mongodb://audit_logs_writer:PASSWORD@mongo.internal:27017/?authSource=audit_logs',`,
    mongoDbNameLine: optional('mongoDbName', a.mongoDbName, 'audit_logs'),
    mongoRequestCollectionLine: optional('mongoRequestCollection', a.mongoRequestCollection, 'request_logs'),
    mongoAccessCollectionLine: optional('mongoAccessCollection', a.mongoAccessCollection, 'access_logs'),
    maxBodyLength: js(a.maxBodyLength),
    excludePaths: js(a.excludePaths),
    excludeExtensions: js(a.excludeExtensions),
    sensitiveFields: js(a.sensitiveFields),
    sensitiveHeaders: js(a.sensitiveHeaders),
    requestRetentionDays: js(a.requestRetentionDays),
    accessRetentionDays: js(a.accessRetentionDays),
  }
  return template.replace(/\{\{(\w+)\}\}/g, (_m, key: string) => {
    if (!(key in values)) throw new Error(`template placeholder {{${key}}} has no value`)
    return values[key]
  })
}

/** Whether `file` is there to be replaced; without `force` an existing one is refused (checked before any question is asked). */
export function existingConfig(file: string, force: boolean): boolean {
  if (!existsSync(path.resolve(file))) return false
  if (!force) throw refusal(file)
  return true
}

const refusal = (file: string) =>
  new AuditLogsError(`${file} already exists; not overwriting it: pass --force to replace it (its settings are then the defaults)`, {
    exit: ExitCode.usage,
    suggestions: [
      `audit-logs scaffold server-config --force${file === 'audit-logs.config.mjs' ? '' : ` --out ${file}`}`,
      'or --out FILE to write another file',
    ],
  })

export function writeServerConfig(file: string, text: string, force: boolean): string {
  const full = path.resolve(file)
  mkdirSync(path.dirname(full), {recursive: true})
  try {
    // without --force, made exclusively: a file that appeared while the questions were answered is not replaced either
    writeFileSync(full, text, {mode: 0o600, flag: force ? 'w' : 'wx'})
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw refusal(file)
    throw error
  }
  return full
}

/**
 * A database URL as the terminal shows it: whatever may be its password, from the ':' after the user
 * name to the last '@', is hidden (an unencoded '@', '#' or '/' in it included). While it is typed
 * (`typing`) each character is a '*', and before an '@' is typed everything after that ':' counts
 * (a port and path may still turn out to be a password); once entered, a URL without '@' has none.
 */
export function maskUrlPassword(url: string, typing = false): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*:)([^]*?)((@[^@]*)?)$/i.exec(url)
  if (!m || (!typing && !m[3])) return url
  const [, head, secret, tail] = m
  return head + (typing ? '*'.repeat(secret.length) : '****') + tail
}
