import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {execa} from 'execa'
import type {ResolvedConfig} from '../config/resolve.js'
import {type SettingSpec, settingKeys, settings} from '../config/schema.js'
import {AuditLogsError, ExitCode} from '../errors.js'
import type {Stop} from './lifecycle.js'

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/run.js')

/**
 * The resolved configuration as the environment that gives it back: the viewer
 * resolves exactly the settings run resolved (flags included), however they
 * were given. Lists go comma-separated, as the environment takes them.
 */
export function settingsAsEnv(config: ResolvedConfig): Record<string, string> {
  const env: Record<string, string> = {}
  for (const key of settingKeys) {
    const spec: SettingSpec = settings[key]
    const value = config[key]
    if (!spec.env || value === undefined || value === null) continue
    env[spec.env] = Array.isArray(value) ? value.join(',') : String(value)
  }
  return env
}

/**
 * `run --ui`: the viewer as a child process of run (`audit-logs ui` with run's
 * settings), on its own listener: a slow page or a large export never shares
 * the event loop that takes the app's events, and a viewer that fails leaves
 * the capture running. Its own events go to run's events endpoint. Stopped
 * before the admin listener, so that its last events are still taken.
 */
export async function startViewer(
  config: ResolvedConfig,
  events: {url: string; token?: string},
  log: (m: string) => void,
): Promise<{url: string; stop: Stop} | undefined> {
  if (!config.ui) return undefined
  const args = [BIN, 'ui', ...(config.configFile ? ['--config', config.configFile] : [])]
  const child = execa(process.execPath, args, {
    env: {
      ...settingsAsEnv(config),
      // a command line's word for the dialect of AUDIT_LOGS_USE_MONGO is already resolved into AUDIT_LOGS_STORES
      AUDIT_LOGS_USE_MONGO: undefined,
      AUDIT_LOGS_WRITE_TO_BOTH: undefined,
      AUDIT_LOGS_EVENTS_URL: events.url,
      ...(events.token ? {AUDIT_LOGS_EVENTS_TOKEN: events.token} : {}),
      OCLIF_SKIP_NEW_VERSION_CHECK: '1',
    },
    extendEnv: true,
    stdin: 'ignore',
    reject: false,
    buffer: false,
  })
  let said = ''
  let url: string | undefined
  let stopping = false
  const lines = (chunk: Buffer) => {
    said = (said + chunk.toString()).slice(-8192)
    for (const line of chunk.toString().split('\n')) if (line.trim()) log(`ui: ${line.replace(/^audit-logs ui: /, '')}`)
  }
  child.stdout!.on('data', lines)
  child.stderr!.on('data', lines)
  const exited = child.then((r) => r.exitCode ?? 1)
  const end = Date.now() + 60_000
  while (!(url = /serving .* on (https?:\/\/\S+)/.exec(said)?.[1])) {
    if (child.exitCode !== null || Date.now() > end) {
      child.kill('SIGTERM')
      await exited
      throw new AuditLogsError(`The web viewer (--ui) did not start: ${said.trim().split('\n').slice(-6).join(' ') || 'no word from it'}`, {
        exit: ExitCode.usage,
      })
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  void exited.then((code) => {
    if (!stopping) log(`the web viewer exited (code ${code}); the capture goes on without it`)
  })
  return {
    url,
    async stop(deadline) {
      stopping = true
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), Math.max(0, deadline.left()))
      await exited
      clearTimeout(t)
    },
  }
}
