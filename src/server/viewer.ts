import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {execa} from 'execa'
import type {ResolvedConfig} from '../config/resolve.js'
import {settingKeys} from '../config/schema.js'
import {AuditLogsError, ExitCode} from '../errors.js'
import type {Stop} from './lifecycle.js'

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/run.js')

/** Settings the viewer has no use for, and that a long-running, network-facing process should not hold. */
const NOT_FOR_THE_VIEWER = new Set(['adminUrl', 'ownerPassword', 'writerPassword', 'readerPassword', 'command', 'eventsToken'])
const PATHS = ['dataDir', 'logDir', 'journalDir', 'uiTlsCert', 'uiTlsKey'] as const

/**
 * The settings run resolved (flags, environment, .env, file and defaults, already decided), as a
 * configuration file for the viewer: JSON keeps lists whole (a login route "POST /login 2xx,302" has a
 * comma), relative paths are made absolute, and the file is the child's only source (its environment
 * carries none of ours, its working directory no .env). Mode 0600 in a directory of ours.
 */
export function viewerConfigFile(config: ResolvedConfig): {file: string; remove(): void} {
  const out: Record<string, unknown> = {}
  for (const key of settingKeys) {
    const value = config[key]
    if (value === undefined || value === null || NOT_FOR_THE_VIEWER.has(key)) continue
    out[key] = (PATHS as readonly string[]).includes(key) ? path.resolve(String(value)) : value
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-ui-'))
  const file = path.join(dir, 'config.json')
  writeFileSync(file, JSON.stringify(out), {mode: 0o600})
  return {file, remove: () => rmSync(dir, {recursive: true, force: true})}
}

/** The environment without our settings' variables (the file holds them all, as run resolved them). */
function scrubbedEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {}
  for (const name of Object.keys(process.env)) if (/^(AUDIT_LOGS_|AUDIT_LOGGER_|GUNICORN_)/.test(name)) env[name] = undefined
  return env
}

/**
 * `run --ui`: the viewer as a child process of run (`audit-logs ui` with run's settings), on its own
 * listener: a slow page or a large export never shares the event loop that takes the app's events, and
 * a viewer that fails later leaves the capture running. A viewer that cannot start stops run's start
 * (its reason said), as any setting that is wrong does. Its own events go to run's events endpoint.
 * It leaves Ctrl-C to run, which stops it before the admin listener (its last events are still taken);
 * if run dies, the IPC channel closes and the viewer stops.
 */
export async function startViewer(
  config: ResolvedConfig,
  events: {url: string; token?: string},
  log: (m: string) => void,
): Promise<{url: string; stop: Stop} | undefined> {
  if (!config.ui) return undefined
  const settingsFile = viewerConfigFile(config)
  const child = execa(process.execPath, [BIN, 'ui', '--config', settingsFile.file], {
    env: {
      ...scrubbedEnv(),
      AUDIT_LOGS_EVENTS_URL: events.url,
      ...(events.token ? {AUDIT_LOGS_EVENTS_TOKEN: events.token} : {}),
      OCLIF_SKIP_NEW_VERSION_CHECK: '1',
    },
    extendEnv: true,
    cwd: path.dirname(settingsFile.file),
    stdin: 'ignore',
    reject: false,
    buffer: false,
    ipc: true,
  })
  let said = ''
  let partial = ''
  let url: string | undefined
  let stopping = false
  const lines = (chunk: Buffer) => {
    said = (said + chunk.toString()).slice(-8192)
    const text = partial + chunk.toString()
    const complete = text.split('\n')
    partial = complete.pop() ?? ''
    for (const line of complete) if (line.trim()) log(`ui: ${line.replace(/^audit-logs ui: /, '')}`)
  }
  child.stdout!.on('data', lines)
  child.stderr!.on('data', lines)
  const exited = child.then((r) => r.exitCode ?? 1)
  const end = Date.now() + 60_000
  try {
    while (!(url = /serving .* on (https?:\/\/\S+)\n/.exec(said)?.[1])) {
      if (child.exitCode !== null || Date.now() > end) {
        child.kill('SIGTERM')
        await exited
        throw new AuditLogsError(
          `The web viewer (--ui) did not start: ${said.trim().split('\n').slice(-6).join(' ') || 'no word from it'}`,
          {exit: ExitCode.usage},
        )
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  } finally {
    settingsFile.remove() // read at its start: the secrets in it stay on disk no longer
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
