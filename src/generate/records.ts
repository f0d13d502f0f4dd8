import {v7 as uuidv7} from 'uuid'
import type {LogType} from '../stores/postgres/periods.js'

/** Small seeded PRNG (mulberry32): the same seed gives the same data set. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)]

function weighted<T>(rand: () => number, table: ReadonlyArray<readonly [T, number]>): T {
  let r = rand() * table.reduce((s, [, w]) => s + w, 0)
  for (const [value, w] of table) if ((r -= w) < 0) return value
  return table[table.length - 1][0]
}

const STATUSES = [
  [200, 70],
  [201, 6],
  [204, 3],
  [301, 2],
  [304, 4],
  [400, 4],
  [401, 3],
  [403, 2],
  [404, 4],
  [422, 1],
  [500, 0.6],
  [502, 0.2],
  [503, 0.2],
] as const
const METHODS = [
  ['GET', 70],
  ['POST', 18],
  ['PUT', 5],
  ['PATCH', 3],
  ['DELETE', 3],
  ['OPTIONS', 1],
] as const
const ROUTES = [
  '/api/v1/orders',
  '/api/v1/orders/:id',
  '/api/v1/users/:id',
  '/api/v2/payments',
  '/api/v2/payments/:id/refund',
  '/login',
  '/logout',
  '/health',
  '/static/app.js',
  '/admin/reports',
  '/api/v1/search',
]
const AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148',
  'curl/8.5.0',
  'python-requests/2.32.3',
  'sqlmap/1.8 (https://sqlmap.org)',
]

export type GenerateOptions = {
  rows: number
  days: number
  seed?: number
  now?: Date
  logType?: LogType
  users?: number
  /** 'time': ascending timestamps, as a capture server writes them; 'random' (default): any order. */
  order?: 'time' | 'random'
}

/**
 * Realistic synthetic records: a status mix dominated by 2xx, skewed paths
 * and users, log-normal durations, sizes, timestamps spread uniformly over
 * the last `days` days. Field names are the PostgreSQL columns.
 */
export function* generateRecords(options: GenerateOptions): Generator<Record<string, unknown>> {
  const rand = prng(options.seed ?? 42)
  const end = (options.now ?? new Date()).getTime()
  const span = options.days * 86_400_000
  const users = options.users ?? 500
  for (let i = 0; i < options.rows; i++) {
    const at = options.order === 'time' ? end - span + Math.floor(((i + rand()) * span) / options.rows) : end - Math.floor(rand() * span)
    const random = new Uint8Array(16)
    for (let b = 0; b < 16; b++) random[b] = Math.floor(rand() * 256)
    const id = uuidv7({msecs: at, random})
    const status = weighted(rand, STATUSES)
    const method = weighted(rand, METHODS)
    const path = pick(rand, ROUTES).replace(':id', String(1 + Math.floor(rand() * 5000)))
    const duration = Math.round(Math.exp(3 + rand() * 2.5 + (status >= 500 ? 2 : 0)) * 100) / 100
    const userId = rand() < 0.25 ? null : String(1 + Math.floor(Math.pow(rand(), 2) * users))
    const ip = `10.${Math.floor(rand() * 4)}.${Math.floor(rand() * 256)}.${1 + Math.floor(rand() * 254)}`
    const agent = pick(rand, AGENTS)
    const size = Math.floor(rand() * 6000)
    const createdAt = new Date(at).toISOString()
    if (options.logType === 'access') {
      yield {
        id,
        created_at: createdAt,
        method,
        url: path,
        status_code: status,
        duration_ms: duration,
        response_size: size,
        ip,
        user_id: userId,
        user_agent: agent,
        referer: null,
        instance: 'gen-1',
      }
      continue
    }
    const flags: string[] = []
    if (duration > 1000) flags.push('slow')
    if (agent.startsWith('sqlmap')) flags.push('suspicious:scanner')
    const requestBody =
      method === 'GET' ? null : JSON.stringify({item: Math.floor(rand() * 100), quantity: 1 + Math.floor(rand() * 5), password: '****'})
    yield {
      id,
      created_at: createdAt,
      method,
      scheme: 'https',
      host: 'app.example.com',
      path,
      query: rand() < 0.3 ? {page: String(1 + Math.floor(rand() * 20))} : {},
      request_headers: {'user-agent': agent, accept: 'application/json', authorization: '****'},
      request_body: requestBody,
      request_body_size: requestBody?.length ?? 0,
      request_body_truncated: false,
      status_code: status,
      response_headers: {'content-type': 'application/json'},
      response_body: JSON.stringify({ok: status < 400, id: Math.floor(rand() * 1e6)}),
      response_body_size: size,
      response_body_truncated: size > 8192,
      duration_ms: duration,
      ip,
      user_id: userId,
      user_agent: agent,
      session_id: null,
      trace_id: null,
      request_id: id,
      flags,
      error: status >= 500 ? 'upstream returned ' + status : null,
      extra: {},
      instance: 'gen-1',
    }
  }
}

/** The generated records as JSON lines (the journal's form), in batches of `size` (the last one shorter): what the loaders and benchmarks write. */
export function* recordBatches(options: GenerateOptions, size = 10_000): Generator<string[]> {
  let batch: string[] = []
  for (const record of generateRecords(options)) {
    batch.push(JSON.stringify(record))
    if (batch.length >= size) {
      yield batch
      batch = []
    }
  }
  if (batch.length) yield batch
}
