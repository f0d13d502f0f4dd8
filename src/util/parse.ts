import {usageError} from '../errors.js'

/** A positive whole number, or a usage error naming the flag and what is accepted. */
export function positiveInt(name: string, value: unknown): number {
  const text = String(value).trim()
  const n = Number(text)
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n <= 0) {
    throw usageError(`${name} must be a whole number greater than 0, got "${String(value)}"`)
  }
  return n
}
