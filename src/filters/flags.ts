import {Flags} from '@oclif/core'
import {LOG_TYPE_NAMES} from '../stores/log-types.js'
import {SOURCES} from '../stores/source.js'
import type {FilterInput} from './parse.js'

/** Where a reading command reads: the flags of every command that reads records. */
export const sourceFlags = {
  source: Flags.option({
    description:
      'where to read: postgres, mongo, or the JSONL files of run [default: the configured stores: mongo when stores = mongo, else postgres]',
    options: SOURCES,
  })(),
  'log-dir': Flags.string({description: 'directory of the JSONL files (--source files) [default: the configured logDir]'}),
}

/** The filter flags shared by query, export, stats and tail. */
export const filterFlags = {
  status: Flags.string({description: 'status: 500, >=400, <300, 4xx, 400-499, !=200, 401,403'}),
  method: Flags.string({description: 'methods, e.g. GET,POST'}),
  path: Flags.string({description: 'path glob (/api/*, /api/**) or ~REGEX'}),
  user: Flags.string({description: 'user id'}),
  ip: Flags.string({description: 'client address or CIDR range'}),
  since: Flags.string({description: 'from: 15m, 24h, 7d or an ISO date/time (UTC)'}),
  until: Flags.string({description: 'until: 15m, 24h, 7d or an ISO date/time (UTC)'}),
  'min-duration': Flags.string({description: 'at least this long: 500ms, 2s'}),
  'max-duration': Flags.string({description: 'at most this long: 500ms, 2s'}),
  flag: Flags.string({description: 'slow, suspicious, upstream_error or suspicious:sqli|xss|traversal|scanner'}),
  search: Flags.string({description: 'text in the request or response body (case-insensitive)'}),
  'request-id': Flags.string({description: 'the request id (X-Request-Id) of request and event records'}),
  action: Flags.string({description: 'event actions: UPDATE, LOGIN,LOGIN_FAILED (--log-type event)'}),
  actor: Flags.string({description: 'event actor id (--log-type event)'}),
  target: Flags.string({description: 'event target TYPE or TYPE:ID, e.g. shop.Order:17 (--log-type event)'}),
  severity: Flags.string({description: 'event severity: INFO, WARNING, ERROR, SECURITY, PERFORMANCE (--log-type event)'}),
  'log-type': Flags.option({
    description: 'which records (gunicorn is an alias of access)',
    options: LOG_TYPE_NAMES,
    default: 'request',
  })(),
  ...sourceFlags,
}

export function filterInput(f: Record<string, unknown>): FilterInput {
  const s = (k: string) => f[k] as string | undefined
  return {
    status: s('status'),
    method: s('method'),
    path: s('path'),
    user: s('user'),
    ip: s('ip'),
    since: s('since'),
    until: s('until'),
    minDuration: s('min-duration'),
    maxDuration: s('max-duration'),
    flag: s('flag'),
    search: s('search'),
    logType: s('log-type'),
    requestId: s('request-id'),
    action: s('action'),
    actor: s('actor'),
    target: s('target'),
    severity: s('severity'),
  }
}
