import {existsSync} from 'node:fs'
import path from 'node:path'
import dotenv from 'dotenv'
import {AuditLogsError} from '../errors.js'
import {configError, loadConfigFile} from './file.js'
import {alertsFromFile} from '../alerts/settings.js'
import {redactEndpoint, redactUrl, registerEndpoint, registerSecret, registerUrlPassword} from '../util/redact.js'
import {type Config, type SettingKey, type SettingSpec, settingKeys, settings} from './schema.js'

export type Overrides = Partial<Record<SettingKey, unknown>>
/** A source of values; `names` says how the source calls each key it gave (a flag, an environment variable). */
type Layer = {source: string; values: Overrides; names: Partial<Record<SettingKey, string>>}

export const DEFAULT_CONFIG_FILES = ['audit-logs.config.mjs', 'audit-logs.config.js', 'audit-logs.config.json']

/** Seeds' split settings (AUDIT_LOGS_DB_HOST, _PORT, _USER, _PASSWORD) make a URL when no URL is given. */
function urlFromParts(env: NodeJS.ProcessEnv): string | undefined {
  if (!env.AUDIT_LOGS_DB_HOST) return undefined
  const user = encodeURIComponent(env.AUDIT_LOGS_DB_USER ?? 'postgres')
  const password = env.AUDIT_LOGS_DB_PASSWORD ? ':' + encodeURIComponent(env.AUDIT_LOGS_DB_PASSWORD) : ''
  const port = env.AUDIT_LOGS_DB_PORT ?? '5432'
  return `postgres://${user}${password}@${env.AUDIT_LOGS_DB_HOST}:${port}/${env.AUDIT_LOGS_DB_NAME ?? 'postgres'}`
}

function seedSwitch(env: NodeJS.ProcessEnv, name: string): boolean {
  const v = env[name]!.trim()
  if (/^(1|true|yes|on)$/i.test(v)) return true
  if (/^(0|false|no|off)$/i.test(v)) return false
  throw configError(`Invalid configuration: ${name} = ${JSON.stringify(v)} (from environment). Accepted: true or false`)
}

function envLayer(env: NodeJS.ProcessEnv): Layer {
  const values: Overrides = {}
  const names: Layer['names'] = {}
  for (const key of settingKeys) {
    const spec: SettingSpec = settings[key]
    const name = [spec.env, spec.alias].find((n) => n && env[n] !== undefined && env[n] !== '')
    if (name) {
      values[key] = name === spec.alias && spec.fromAlias ? spec.fromAlias(env[name]!) : env[name]
      names[key] = name
    }
  }
  // the seeds' switches: AUDIT_LOGS_USE_MONGO alone is MongoDB only, with AUDIT_LOGS_WRITE_TO_BOTH both stores
  if (values.stores === undefined && env.AUDIT_LOGS_USE_MONGO) {
    const useMongo = seedSwitch(env, 'AUDIT_LOGS_USE_MONGO')
    const both = env.AUDIT_LOGS_WRITE_TO_BOTH ? seedSwitch(env, 'AUDIT_LOGS_WRITE_TO_BOTH') : false
    values.stores = useMongo ? (both ? 'both' : 'mongo') : 'postgres'
    names.stores = env.AUDIT_LOGS_WRITE_TO_BOTH ? 'AUDIT_LOGS_USE_MONGO and AUDIT_LOGS_WRITE_TO_BOTH' : 'AUDIT_LOGS_USE_MONGO'
  }
  if (values.databaseUrl === undefined) {
    values.databaseUrl = urlFromParts(env)
    if (values.databaseUrl !== undefined) names.databaseUrl = 'AUDIT_LOGS_DB_HOST, _PORT, _USER, _PASSWORD'
  }
  return {source: 'environment', values, names}
}

const flagLayer = (values: Overrides): Layer => ({
  source: 'command-line flag',
  values,
  names: Object.fromEntries(settingKeys.map((key) => [key, (settings[key] as SettingSpec).flag])) as Layer['names'],
})

/** How a value is shown in a message: a URL without its password, a secret value never. */
export function shown(spec: SettingSpec, raw: unknown): string {
  if (spec.secret === 'value') return '****'
  if (spec.secret === 'url' && typeof raw === 'string') return redactUrl(raw)
  if (spec.secret === 'endpoint' && typeof raw === 'string') return JSON.stringify(redactEndpoint(raw))
  return JSON.stringify(raw)
}

/**
 * flags > environment (.env included) > config file > defaults, validated
 * key by key so an error names the key, the value, where it came from and
 * what is accepted.
 */
export async function resolveConfig(
  options: {
    flags?: Overrides
    configFile?: string
    noConfigFile?: boolean
    env?: NodeJS.ProcessEnv
    cwd?: string
    /** Filled, when given, with where each setting came from (doctor shows it): "defaults", or the source and its name. */
    sources?: Partial<Record<SettingKey, string>>
  } = {},
): Promise<Config & {configFile?: string; extras: Record<string, unknown>}> {
  const cwd = options.cwd ?? process.cwd()
  const env = options.env ?? process.env
  if (!options.env) dotenv.config({path: path.join(cwd, '.env'), quiet: true})

  const configFile = options.noConfigFile
    ? undefined
    : (options.configFile ?? DEFAULT_CONFIG_FILES.map((f) => path.join(cwd, f)).find((f) => existsSync(f)))
  const fileValues = configFile ? await loadConfigFile(configFile) : {}
  const extras: Record<string, unknown> = {}
  const fileLayer: Layer = {source: `config file ${configFile}`, values: {}, names: {}}
  for (const [key, value] of Object.entries(fileValues)) {
    if ((settingKeys as string[]).includes(key)) fileLayer.values[key as SettingKey] = value
    else if (typeof value === 'function') extras[key] = value
    else if (key !== 'alerts') throw configError(`Unknown key "${key}" in ${configFile}. Accepted keys: ${settingKeys.join(', ')}`)
  }
  // `alerts: {webhookUrl, ...}` groups the alert settings (alertWebhookUrl, ...)
  if (fileValues.alerts !== undefined)
    for (const a of alertsFromFile(fileValues.alerts, configFile!, settingKeys, fileLayer.values)) {
      fileLayer.values[a.key as SettingKey] = a.value
      fileLayer.names[a.key as SettingKey] = a.name
    }

  const layers: Layer[] = [flagLayer(options.flags ?? {}), envLayer(env), fileLayer]
  const out: Record<string, unknown> = {}
  for (const key of settingKeys) {
    const layer = layers.find((l) => l.values[key] !== undefined)
    const raw = layer?.values[key]
    const spec: SettingSpec = settings[key]
    const parsed = spec.schema.safeParse(raw)
    const name = layer?.names[key]
    const where = layer ? `${layer.source}${name ? ' ' + name : ''}` : 'defaults'
    if (options.sources) options.sources[key] = where
    if (!parsed.success) {
      if (spec.secret === 'url' && typeof raw === 'string') registerUrlPassword(raw) // a message about something else must not show it either
      if (spec.secret === 'value' && typeof raw === 'string') registerSecret(raw)
      if (spec.secret === 'endpoint' && typeof raw === 'string') registerEndpoint(raw)
      const hint = parsed.error.issues[0]?.message ?? 'a valid value'
      const error = configError(`Invalid configuration: ${key} = ${shown(spec, raw)} (from ${where}). Accepted: ${hint}`)
      throw spec.exit ? new AuditLogsError(error.message, {exit: spec.exit}) : error
    }
    out[key] = parsed.data
  }
  const config = out as Config
  if (config.stores !== 'postgres' && !config.mongoUri) {
    const layer = layers.find((l) => l.values.stores !== undefined)
    throw configError(
      `Invalid configuration: stores = ${JSON.stringify(config.stores)} (from ${layer?.source ?? 'defaults'}${layer?.names.stores ? ' ' + layer.names.stores : ''}) ` +
        `needs a MongoDB server: set mongoUri (AUDIT_LOGS_MONGO_URI or --mongo-uri), e.g. mongodb://user:password@127.0.0.1:27017/`,
    )
  }
  for (const key of settingKeys) {
    const spec: SettingSpec = settings[key]
    const value = config[key]
    if (typeof value !== 'string') continue
    if (spec.secret === 'url') registerUrlPassword(value)
    if (spec.secret === 'value') registerSecret(value)
    if (spec.secret === 'endpoint') registerEndpoint(value)
  }
  return {...config, configFile, extras}
}

/** The configuration every command and the capture server work from: each setting from its one source (flag, environment, .env, file, default), validated. */
export type ResolvedConfig = Awaited<ReturnType<typeof resolveConfig>>
