// The baseline of the sustained benchmark (sustained.ts): audit logging as a competent developer would
// write it without our product. A node:http reverse proxy to UPSTREAM keeps one record per request in
// memory and inserts them in batches into the same request_logs table `run` writes (same partitions,
// same indexes): no masking, no files, no journal, so a crash loses what is not yet inserted.
// Env: PORT, UPSTREAM (http://host:port), DATABASE_URL, ADMIN_PORT (GET /__naive/stats: {proxied, inserted, pending, failed}).
import {randomUUID} from 'node:crypto'
import http from 'node:http'
import os from 'node:os'
import pg from 'pg'

const upstream = new URL(process.env.UPSTREAM)
const agent = new http.Agent({keepAlive: true})
// idleTimeoutMillis 0: connections are kept (a backend that exits takes its CPU time out of the measurement)
const pool = new pg.Pool({connectionString: process.env.DATABASE_URL, max: 2, idleTimeoutMillis: 0})
pool.on('error', (error) => console.error(`naive-proxy: idle connection: ${error.message}`))

const BODY_KEPT = 8192
const BATCH_ROWS = 1000
const BATCH_MS = 100
const INSTANCE = `${os.hostname()}:naive`
/** Connection-level headers: they describe one hop, not the request. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'])
const stats = {proxied: 0, inserted: 0, pending: 0, failed: 0}
let batch = []

const endToEnd = (headers) => Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP.has(name)))

/** The first BODY_KEPT bytes of a body as it streams by, and its size. */
function bodyTap() {
  const chunks = []
  let kept = 0
  let size = 0
  return {
    add(chunk) {
      size += chunk.length
      if (kept < BODY_KEPT) {
        chunks.push(chunk.subarray(0, BODY_KEPT - kept))
        kept += Math.min(chunk.length, BODY_KEPT - kept)
      }
    },
    text: () => Buffer.concat(chunks).toString('utf8'),
    size: () => size,
  }
}

/**
 * One INSERT for the whole batch: the records go as one JSON array parameter, and PostgreSQL turns
 * it into rows of request_logs' own type (keys named after its columns; absent ones are NULL).
 */
async function insert(rows) {
  try {
    await pool.query('INSERT INTO request_logs SELECT * FROM json_populate_recordset(NULL::request_logs, $1)', [JSON.stringify(rows)])
    stats.inserted += rows.length
  } catch (error) {
    stats.failed += rows.length
    console.error(`naive-proxy: insert of ${rows.length} records failed: ${error.message}`)
  } finally {
    stats.pending -= rows.length
  }
}

/** Hands the batch to the pool and starts a new one; the proxy does not wait (the pool queues queries beyond its 2 connections). */
function flush() {
  if (batch.length === 0) return
  const rows = batch
  batch = []
  void insert(rows)
}

function record(row) {
  stats.proxied++
  stats.pending++
  batch.push(row)
  if (batch.length >= BATCH_ROWS) flush()
}

setInterval(flush, BATCH_MS).unref()

const server = http.createServer((req, res) => {
  const started = Date.now()
  const url = new URL(req.url, 'http://placeholder')
  const requestBody = bodyTap()
  const responseBody = bodyTap()
  let status = 502
  let responseHeaders = {}
  let recorded = false
  // once per request, when the answer is complete or the client went away
  res.on('close', () => {
    if (recorded) return
    recorded = true
    record({
      id: randomUUID(),
      created_at: new Date(started).toISOString(),
      method: req.method,
      scheme: 'http',
      host: req.headers.host ?? null,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      request_headers: req.headers,
      request_body: requestBody.text(),
      request_body_size: requestBody.size(),
      status_code: status,
      response_headers: responseHeaders,
      response_body: responseBody.text(),
      response_body_size: responseBody.size(),
      duration_ms: Date.now() - started,
      ip: req.socket.remoteAddress ?? null,
      user_agent: req.headers['user-agent'] ?? null,
      instance: INSTANCE,
    })
  })

  const forward = http.request(
    {host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: endToEnd(req.headers), agent},
    (answer) => {
      status = answer.statusCode
      responseHeaders = answer.headers
      res.writeHead(answer.statusCode, endToEnd(answer.headers))
      answer.on('data', (chunk) => responseBody.add(chunk))
      answer.pipe(res)
    },
  )
  forward.on('error', (error) => {
    if (res.headersSent) return res.destroy()
    res.writeHead(502, {'content-type': 'text/plain'})
    res.end(`bad gateway: ${error.message}\n`)
  })
  req.on('data', (chunk) => requestBody.add(chunk))
  req.pipe(forward)
})

const admin = http.createServer((req, res) => {
  if (req.url !== '/__naive/stats') {
    res.writeHead(404).end()
    return
  }
  res.writeHead(200, {'content-type': 'application/json'})
  res.end(JSON.stringify(stats))
})

/** On SIGTERM: stop taking requests, insert what is left, exit. */
async function stop() {
  server.close()
  admin.close()
  flush()
  while (stats.pending > 0) await new Promise((r) => setTimeout(r, 20))
  await pool.end()
  process.exit(0)
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)

server.listen(Number(process.env.PORT), '127.0.0.1', () =>
  admin.listen(Number(process.env.ADMIN_PORT), '127.0.0.1', () =>
    console.error(`naive-proxy listening on 127.0.0.1:${process.env.PORT}, admin on ${process.env.ADMIN_PORT}`),
  ),
)
