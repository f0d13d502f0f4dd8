import type {Hooks} from '../capture/record.js'
import {loadConfigFile} from '../config/file.js'

/** userId, extra and mask from a JS config module (default export or named exports). */
export async function hooksFrom(file: string | undefined): Promise<Hooks> {
  if (!file || file.endsWith('.json')) return {}
  const mod = await loadConfigFile(file)
  const pick = (name: string) => (typeof mod[name] === 'function' ? (mod[name] as never) : undefined)
  return {userId: pick('userId'), extra: pick('extra'), mask: pick('mask')}
}
