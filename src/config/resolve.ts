import {existsSync} from 'node:fs'
import path from 'node:path'
import dotenv from 'dotenv'
import {configError, loadConfigFile} from './file.js'
import {redactUrl, registerSecret, urlPassword} from '../util/redact.js'
import {type Config, type SettingKey, settingKeys, settings} from './schema.js'

export type Overrides = Partial<Record<SettingKey, unknown>>
type Layer = {source: string; values: Overrides}

export const DEFAULT_CONFIG_FILES = ['audit-logs.config.mjs', 'audit-logs.config.js', 'audit-logs.config.json']

/** Seeds' split settings (AUDIT_LOGS_DB_HOST, _PORT, _USER, _PASSWORD) make a URL when no URL is given. */
function urlFromParts(env: NodeJS.ProcessEnv): string | undefined {
  if (!env.AUDIT_LOGS_DB_HOST) return undefined
  const user = encodeURIComponent(env.AUDIT_LOGS_DB_USER ?? 'postgres')
  const password = env.AUDIT_LOGS_DB_PASSWORD ? ':' + encodeURIComponent(env.AUDIT_LOGS_DB_PASSWORD) : ''
  const port = env.AUDIT_LOGS_DB_PORT ?? '5432'
  return `postgres://${user}${password}@${env.AUDIT_LOGS_DB_HOST}:${port}/${env.AUDIT_LOGS_DB_NAME ?? 'postgres'}`
}

function envLayer(env: NodeJS.ProcessEnv): Layer {
  const values: Overrides = {}
  for (const key of settingKeys) {
    const spec: {env: string; alias?: string} = settings[key]
    const raw = (spec.env ? env[spec.env] : undefined) ?? (spec.alias ? env[spec.alias] : undefined)
    if (raw !== undefined && raw !== '') values[key] = raw
  }
  values.databaseUrl ??= urlFromParts(env)
  return {source: 'environment', values}
}

/**
 * flags > environment (.env included) > config file > defaults, validated
 * key by key so an error names the key, the value, where it came from and
 * what is accepted.
 */
export async function resolveConfig(
  options: {flags?: Overrides; configFile?: string; env?: NodeJS.ProcessEnv; cwd?: string} = {},
): Promise<Config & {configFile?: string; extras: Record<string, unknown>}> {
  const cwd = options.cwd ?? process.cwd()
  const env = options.env ?? process.env
  if (!options.env) dotenv.config({path: path.join(cwd, '.env'), quiet: true})

  const configFile = options.configFile ?? DEFAULT_CONFIG_FILES.map((f) => path.join(cwd, f)).find((f) => existsSync(f))
  const fileValues = configFile ? await loadConfigFile(configFile) : {}
  const extras: Record<string, unknown> = {}
  const fileLayer: Layer = {source: `config file ${configFile}`, values: {}}
  for (const [key, value] of Object.entries(fileValues)) {
    if ((settingKeys as string[]).includes(key)) fileLayer.values[key as SettingKey] = value
    else if (typeof value === 'function') extras[key] = value
    else throw configError(`Unknown key "${key}" in ${configFile}. Accepted keys: ${settingKeys.join(', ')}`)
  }

  const layers: Layer[] = [
    {source: 'command-line flag', values: options.flags ?? {}},
    envLayer(env),
    fileLayer,
  ]
  const out: Record<string, unknown> = {}
  for (const key of settingKeys) {
    const layer = layers.find((l) => l.values[key] !== undefined)
    const raw = layer?.values[key]
    const parsed = settings[key].schema.safeParse(raw)
    if (!parsed.success) {
      const shown = 'secret' in settings[key] && typeof raw === 'string' ? redactUrl(raw) : JSON.stringify(raw)
      const hint = parsed.error.issues[0]?.message ?? 'a valid value'
      const where = key === 'databaseUrl' || !layer ? layer?.source : `${layer.source}${layer.source === 'environment' ? ' ' + settings[key].env : ''}`
      throw configError(`Invalid configuration: ${key} = ${shown} (from ${where}). Accepted: ${hint}`)
    }
    out[key] = parsed.data
  }
  const config = out as Config
  if (config.databaseUrl) registerSecret(urlPassword(config.databaseUrl))
  return {...config, configFile, extras}
}
