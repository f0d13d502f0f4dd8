import {createWriteStream} from 'node:fs'
import type {Writable} from 'node:stream'
import type {Masker} from '../capture/masking.js'
import type {Exchange} from '../capture/record.js'

/**
 * Mode of a log file this process creates (access log, errorLog; an existing one keeps its own): not
 * readable by the host's other users, as doctor wants of the log directory.
 */
export const LOG_FILE_MODE = 0o640

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const two = (n: number) => String(n).padStart(2, '0')

/** gunicorn's %(t)s, in UTC: [07/Dec/2026:02:29:28 +0000]. */
export function accessTime(ms: number): string {
  const d = new Date(ms)
  return `[${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000]`
}

/**
 * A stranger's text in the line: quotes, backslashes and control bytes escaped (\xHH, as nginx
 * does), so that no field can end early or start a line of its own.
 */
const escape = (text: string) =>
  // eslint-disable-next-line no-control-regex
  text.replace(/["\\\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)

const header = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(', ') : v)

/**
 * One exchange as gunicorn's default access line (`%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`),
 * its URL and Referer masked by the same rules as the record's. %(u)s, which gunicorn takes from a Basic
 * Authorization header, is always "-": no part of a credential is written here.
 */
export function accessLogLine(x: Omit<Exchange, 'id'>, httpVersion: string, masker: Masker): string {
  const referer = header(x.requestHeaders.referer)
  const agent = header(x.requestHeaders['user-agent'])
  const request = `${x.method} ${masker.url(x.url)} HTTP/${httpVersion}`
  return (
    `${x.ip ?? '-'} - - ${accessTime(x.start)} "${escape(request)}" ${x.status} ${x.responseSize} ` +
    `"${referer ? escape(masker.url(referer)) : '-'}" "${agent ? escape(agent) : '-'}"\n`
  )
}

/**
 * Where a worker's access lines go: '-' for stdout, else a file, appended to (O_APPEND: the workers'
 * lines do not overwrite each other). reopen() (SIGHUP, after logrotate moved the file) opens it again.
 */
export function accessLogStream(target: string): {write(line: string): void; reopen(): void; close(): Promise<void>} {
  let failed = false
  const open = (): Writable => {
    if (target === '-') return process.stdout
    const stream = createWriteStream(target, {flags: 'a', mode: LOG_FILE_MODE}) // 0640 when created; an existing file keeps its mode
    stream.on('error', (error) => {
      // a full disk or a removed directory costs the access lines, never the requests or their records
      if (!failed) process.stderr.write(`[audit-logs] access log ${target}: ${error.message}; its lines are not written\n`)
      failed = true
    })
    return stream
  }
  let out = open()
  const end = (stream: Writable) => new Promise<void>((resolve) => (target === '-' ? resolve() : stream.end(() => resolve())))
  return {
    write: (line) => {
      if (!failed) out.write(line)
    },
    reopen() {
      if (target === '-') return
      void end(out) // its buffered lines go to the old file, the next ones to the new
      failed = false
      out = open()
    },
    close: () => (failed ? Promise.resolve() : end(out)),
  }
}
