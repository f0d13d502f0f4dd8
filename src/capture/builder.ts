import {type BodyTap, type WireBody, BodyTap as Tap, decodeBody} from './body.js'
import {type Exchange, type RecordOptions, accessLine, newRecordId, requestLine, resolveUser} from './record.js'

/** An exchange as it crosses to the builder thread: bodies as places in the batch's arena; the id is given there. */
export type WireExchange = Omit<Exchange, 'id' | 'requestBody' | 'responseBody'> & {requestBody?: WireBody; responseBody?: WireBody; full: boolean}

/**
 * Exchanges on their way to the builder thread, in batches: the exchanges
 * are cloned as plain objects and every body of the batch is copied into one
 * arena, transferred (not copied) with the batch. One transferred buffer per
 * body cost the proxy's event loop more than the rest of the hand-off.
 */
export class WireBatch {
  items: WireExchange[] = []
  arena: Uint8Array
  used = 0

  constructor(readonly arenaBytes = 64 * 1024) {
    this.arena = new Uint8Array(arenaBytes)
  }

  /** Whether the exchange's bodies fit in what is left of the arena. */
  fits(x: Omit<Exchange, 'id'>): boolean {
    return this.used + (x.requestBody?.captured ?? 0) + (x.responseBody?.captured ?? 0) <= this.arena.length
  }

  add(x: Omit<Exchange, 'id'>, full: boolean): void {
    const body = (tap: BodyTap | undefined) => {
      if (!tap) return undefined
      const w = tap.copyInto(this.arena, this.used)
      this.used += w.length
      return w
    }
    const requestBody = body(x.requestBody)
    const responseBody = body(x.responseBody)
    this.items.push({
      start: x.start, method: x.method, scheme: x.scheme, host: x.host, url: x.url, requestHeaders: x.requestHeaders, requestBody, status: x.status,
      responseHeaders: x.responseHeaders, responseBody, responseSize: x.responseSize, durationMs: x.durationMs, ip: x.ip, auditUser: x.auditUser,
      auditExtra: x.auditExtra, error: x.error, upstreamError: x.upstreamError, full,
    })
  }
}

export function fromWire(w: WireExchange, arena: Uint8Array, limit: number): {x: Exchange; full: boolean} {
  const tap = (b: WireBody | undefined): BodyTap | undefined => (b ? Tap.fromWire(b, arena, limit) : undefined)
  const x: Exchange = w as unknown as Exchange // the same fields; the id and the bodies are set here
  x.id = newRecordId(w.start)
  x.requestBody = tap(w.requestBody)
  x.responseBody = tap(w.responseBody)
  return {x, full: w.full}
}

/** Builds an exchange's records (masked, serialised once) and hands the lines to `emit`. */
export class RecordBuilder {
  building = 0

  constructor(
    private readonly options: RecordOptions,
    private readonly emit: (line: string) => void,
  ) {}

  async build(x: Exchange, full: boolean): Promise<void> {
    this.building++
    try {
      if (full) {
        // compressed bodies are decoded within the bound, asynchronously
        await decodeBody(x.requestBody, x.requestHeaders as Record<string, string>, this.options.maxBodyLength)
        await decodeBody(x.responseBody, x.responseHeaders, this.options.maxBodyLength)
      }
      const user = resolveUser(x, this.options)
      if (full) this.emit(requestLine(x, this.options, user))
      this.emit(accessLine(x, this.options, user))
    } catch (error) {
      // logging never fails the request: a record that cannot be built is reported
      process.emitWarning(`audit-logs: record not built: ${(error as Error).message}`)
    } finally {
      this.building--
    }
  }
}
