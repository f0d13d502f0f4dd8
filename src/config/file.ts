// The config file's reading, apart from the settings' schema: the builder threads load the
// file's hooks with it and need none of the validation (and its libraries) in their heaps.
import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {pathToFileURL} from 'node:url'
import {AuditLogsError, ExitCode} from '../errors.js'

export const configError = (message: string) => new AuditLogsError(message, {exit: ExitCode.usage})

/** Reads a config file: JSON, or an ES module whose default export is the settings object. */
export async function loadConfigFile(file: string): Promise<Record<string, unknown>> {
  const full = path.resolve(file)
  if (!existsSync(full)) throw configError(`Config file not found: ${file}`)
  try {
    if (full.endsWith('.json')) return JSON.parse(await readFile(full, 'utf8'))
    const mod = await import(pathToFileURL(full).href)
    // the settings object is the default export; hooks may also be named exports
    const named = Object.fromEntries(Object.entries(mod).filter(([k]) => k !== 'default'))
    return {...(mod.default ?? {}), ...named} as Record<string, unknown>
  } catch (error) {
    throw configError(`Config file ${file} could not be read: ${(error as Error).message}`)
  }
}
