/**
 * Exit codes are part of the CLI's contract and listed in the README.
 * Keep the two in step.
 */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  database: 3,
  migration: 4,
  embedded: 5,
  /** doctor: a check failed */
  unhealthy: 6,
  /** import: some lines were refused (the others were imported) */
  refused: 7,
  /** verify: a record changed, deleted or inserted, a gap in a chain, a bad digest */
  tampered: 8,
  interrupted: 130,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

/** An expected failure: its message is shown as is, without a stack trace. */
export class AuditLogsError extends Error {
  readonly exit: ExitCodeValue
  readonly suggestions: string[]

  constructor(message: string, options: {exit?: ExitCodeValue; suggestions?: string[]; cause?: unknown} = {}) {
    super(message, {cause: options.cause})
    this.name = 'AuditLogsError'
    this.exit = options.exit ?? ExitCode.failure
    this.suggestions = options.suggestions ?? []
  }
}

export const usageError = (message: string, suggestions: string[] = []) => new AuditLogsError(message, {exit: ExitCode.usage, suggestions})
