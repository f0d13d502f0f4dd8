import {closeSync, openSync, writeSync} from 'node:fs'
import path from 'node:path'
import {LOG_LEVELS, type LogLevel} from '../config/schema.js'
import {usageError} from '../errors.js'
import {redactText} from '../util/redact.js'

/**
 * The level of one of the server's own messages. They are written as sentences (`log(m)`, everywhere),
 * so the level is read from what they say: ALERTs (records dropped) and failures are errors, a part
 * that died, stopped late or was killed is a warning, the rest (started, listening, shutting down) info.
 */
export function levelOf(message: string): LogLevel {
  if (/^ALERT:|\bfailed\b|\bcannot\b|\bcould not\b|^database: /i.test(message)) return 'error'
  if (/\bdied\b|did not stop|\bkilled\b|not caught up|exited with code [1-9]|\bended with\b|is ignored/i.test(message)) return 'warning'
  return 'info'
}

export type ServerLog = {
  log(message: string, level?: LogLevel): void
  /** the file's descriptor when the log goes to a file (the workers' stderr is pointed at it too) */
  fd?: number
  close(): void
}

/**
 * The server's own log (gunicorn's --error-logfile and --log-level): `-` is stderr, as it always was
 * ("[audit-logs] message"); a file gets the time and level too, appended to. Messages below the level
 * are left out; secrets are redacted from every line.
 */
export function serverLog(target: string, level: LogLevel): ServerLog {
  const min = LOG_LEVELS.indexOf(level)
  let fd: number | undefined
  if (target !== '-') {
    try {
      fd = openSync(path.resolve(target), 'a')
    } catch (error) {
      throw usageError(`errorLog ${target} cannot be opened for appending: ${(error as Error).message}`, [
        "Give a file in a directory that exists and this user may write, or '-' for stderr",
      ])
    }
  }
  return {
    fd,
    log(message, given) {
      const l = given ?? levelOf(message)
      if (LOG_LEVELS.indexOf(l) < min) return
      const text = redactText(message)
      if (fd === undefined) process.stderr.write(`[audit-logs] ${text}\n`)
      else writeSync(fd, `[${new Date().toISOString()}] [${process.pid}] [${l.toUpperCase()}] ${text}\n`)
    },
    close() {
      if (fd !== undefined) closeSync(fd)
      fd = undefined
    },
  }
}
