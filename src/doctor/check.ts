/** One finding of `audit-logs doctor`: what was checked, how it stands, and what to run when it does not. */
export type CheckState = 'ok' | 'warn' | 'fail' | 'skip'
export type Check = {check: string; state: CheckState; message: string; fix?: string}

export const ok = (check: string, message: string): Check => ({check, state: 'ok', message})
export const warn = (check: string, message: string, fix: string): Check => ({check, state: 'warn', message, fix})
export const fail = (check: string, message: string, fix: string): Check => ({check, state: 'fail', message, fix})
export const skip = (check: string, message: string): Check => ({check, state: 'skip', message})

/** The worst state among `states`, for a check made of parts. */
export function worst(states: CheckState[]): CheckState {
  for (const s of ['fail', 'warn', 'ok'] as const) if (states.includes(s)) return s
  return 'skip'
}
