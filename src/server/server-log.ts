import {closeSync, openSync, writeSync} from 'node:fs'
import path from 'node:path'
import {LOG_LEVELS, type LogLevel} from '../config/schema.js'
import {usageError} from '../errors.js'
import {redactText} from '../util/redact.js'
import {LOG_FILE_MODE} from './access-log.js'

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
  /** whether the log goes to a file (the workers' stderr is then passed to worker() rather than inherited) */
  toFile: boolean
  /** text a worker wrote on its stderr, as it came (its lines are "[audit-logs] …" already) */
  worker(text: Buffer): void
  /** opens the file again (SIGHUP, after logrotate moved it): the next lines, the workers' too, go to the new one */
  reopen(): void
  close(): void
}

/**
 * The server's own log (gunicorn's --error-logfile and --log-level): `-` is stderr, as it always was
 * ("[audit-logs] message"); a file gets the time and level too, appended to. Messages below the level
 * are left out; secrets are redacted from every line.
 */
export function serverLog(target: string, level: LogLevel): ServerLog {
  const min = LOG_LEVELS.indexOf(level)
  const open = () => openSync(path.resolve(target), 'a', LOG_FILE_MODE)
  let fd: number | undefined
  if (target !== '-') {
    try {
      fd = open()
    } catch (error) {
      throw usageError(`errorLog ${target} cannot be opened for appending: ${(error as Error).message}`, [
        "Give a file in a directory that exists and this user may write, or '-' for stderr",
      ])
    }
  }
  const line = (l: LogLevel, text: string) => {
    if (fd === undefined) process.stderr.write(`[audit-logs] ${text}\n`)
    else writeSync(fd, `[${new Date().toISOString()}] [${process.pid}] [${l.toUpperCase()}] ${text}\n`)
  }
  return {
    toFile: fd !== undefined,
    worker(text) {
      if (fd === undefined) process.stderr.write(text)
      else writeSync(fd, text)
    },
    reopen() {
      if (fd === undefined) return
      let next: number
      try {
        next = open()
      } catch (error) {
        // the old file goes on receiving the lines: better there than nowhere
        line(
          'error',
          redactText(`errorLog ${target} cannot be opened again (SIGHUP): ${(error as Error).message}; its lines go on to the old file`),
        )
        return
      }
      closeSync(fd)
      fd = next
    },
    log(message, given) {
      const l = given ?? levelOf(message)
      if (LOG_LEVELS.indexOf(l) < min) return
      line(l, redactText(message))
    },
    close() {
      if (fd !== undefined) closeSync(fd)
      fd = undefined
    },
  }
}
