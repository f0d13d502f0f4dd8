// The exchanges the benchmarks that build records start from (bench/builder.ts, bench/chain-sql.ts): as the
// proxy hands them to the record builder for the capture benchmark's requests, bodies already tapped.
import {BodyTap} from '../src/capture/body.js'
import type {Exchange} from '../src/capture/record.js'

/** A request's method and bodies: `request` for one with a body (POST), `response` always. */
export type Shape = {method: string; request?: string; response: string}

/** The i-th exchange of a run started at `now` (ms), with `id` ('' lets the builder's caller set it). */
export function benchExchange(shape: Shape, i: number, now: number, id = ''): Exchange {
  const tap = (body: string) => {
    const t = new BodyTap(8192)
    t.push(Buffer.from(body))
    return t
  }
  return {
    id,
    start: now + i,
    method: shape.method,
    scheme: 'http',
    host: '127.0.0.1:8000',
    url: shape.request ? '/post' : '/small',
    requestHeaders: {
      host: '127.0.0.1:8000',
      'user-agent': 'wrk',
      'content-type': 'application/json',
      ...(shape.request ? {'content-length': String(Buffer.byteLength(shape.request))} : {}),
    },
    requestBody: shape.request ? tap(shape.request) : undefined,
    status: 200,
    responseHeaders: {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(shape.response)),
      date: new Date(now).toUTCString(),
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
    },
    responseBody: tap(shape.response),
    responseSize: Buffer.byteLength(shape.response),
    durationMs: 1.234,
    ip: '127.0.0.1',
  }
}
