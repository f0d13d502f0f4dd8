import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {execa} from 'execa'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const BIN = path.join(ROOT, 'bin', 'run.js')

/** oclif wraps error messages to the terminal width behind " ›   "; tests read whole sentences. */
export const unwrapOclif = (text: string) => text.replace(/[ \t]*\n ›\s+/g, ' ').replace(/^ ›\s+/, '')

export type CliResult = {exitCode: number; stdout: string; stderr: string; json: () => any}

/** Runs bin/run.js as a user would: a subprocess, its own environment, its exit code. */
export async function runCli(
  args: string[],
  options: {env?: Record<string, string | undefined>; cwd?: string; timeout?: number} = {},
): Promise<CliResult> {
  const env: Record<string, string | undefined> = {
    OCLIF_SKIP_NEW_VERSION_CHECK: '1',
    NO_COLOR: '1',
    AUDIT_LOGS_DATABASE_URL: undefined,
    AUDIT_LOGS_DB_NAME: undefined,
    ...options.env,
  }
  const result = await execa(process.execPath, [BIN, ...args], {
    env,
    extendEnv: true,
    cwd: options.cwd ?? ROOT,
    reject: false,
    timeout: options.timeout ?? 60_000,
    stdin: 'ignore',
  })
  return {
    exitCode: result.exitCode ?? -1,
    stdout: result.stdout,
    stderr: unwrapOclif(result.stderr),
    json: () => JSON.parse(result.stdout),
  }
}
