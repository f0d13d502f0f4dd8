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

/** Identifiers we create (database, role names): letters, digits, _ and -, at most 63 bytes. */
export function safeIdentifier(name: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/.test(value)) {
    throw usageError(
      `${name} "${value}" is not accepted: use 1-63 letters, digits, "_" or "-", starting with a letter or "_"`,
    )
  }
  return value
}

/** Quote an identifier for SQL. Used only on names that also passed safeIdentifier or come from the catalog. */
export function quoteIdent(value: string): string {
  return '"' + value.replace(/"/g, '""') + '"'
}

/** Quote a literal for the few statements that take no parameters (CREATE ROLE ... PASSWORD). */
export function quoteLiteral(value: string): string {
  return "'" + value.replace(/'/g, "''") + "'"
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let n = bytes
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`
}
