import type {BodyTap, WireBody} from './body.js'
import type {Exchange} from './record.js'

// The proxy's side of the hand-off, apart from the record builder's (builder.ts): a worker's main
// thread loads this alone, not the builder's modules (the record, its ids, the JSON writer).

/** An exchange as it crosses to the builder thread: bodies as places in the batch's arena; the id is given there. */
export type WireExchange = Omit<Exchange, 'id' | 'requestBody' | 'responseBody'> & {
  requestBody?: WireBody
  responseBody?: WireBody
  full: boolean
}

/**
 * Exchanges on their way to the builder thread, in batches: the exchanges
 * are cloned as plain objects and every body of the batch is copied into one
 * arena, sized to fit when the batch is sent and transferred (not copied)
 * with it. One transferred buffer per body cost the proxy's event loop more
 * than the rest of the hand-off.
 */
export class WireBatch {
  readonly items: WireExchange[] = []
  private readonly taps: Array<[BodyTap | undefined, BodyTap | undefined]> = []
  bytes = 0

  add(x: Omit<Exchange, 'id'>, full: boolean): void {
    this.items.push({
      start: x.start,
      method: x.method,
      scheme: x.scheme,
      host: x.host,
      url: x.url,
      requestHeaders: x.requestHeaders,
      status: x.status,
      responseHeaders: x.responseHeaders,
      responseSize: x.responseSize,
      durationMs: x.durationMs,
      ip: x.ip,
      auditUser: x.auditUser,
      auditExtra: x.auditExtra,
      error: x.error,
      upstreamError: x.upstreamError,
      full,
    })
    this.taps.push([x.requestBody, x.responseBody])
    this.bytes += (x.requestBody?.captured ?? 0) + (x.responseBody?.captured ?? 0)
  }

  /** The batch as it is posted: its items, with their bodies' places in the arena. */
  seal(): {items: WireExchange[]; arena: Uint8Array} {
    const arena = Buffer.allocUnsafeSlow(this.bytes) // its own ArrayBuffer (transferable), not zero-filled: every byte is written
    let used = 0
    const place = (tap: BodyTap | undefined) => {
      if (!tap) return undefined
      const w = tap.copyInto(arena, used)
      used += w.length
      return w
    }
    for (let i = 0; i < this.items.length; i++) {
      this.items[i].requestBody = place(this.taps[i][0])
      this.items[i].responseBody = place(this.taps[i][1])
    }
    return {items: this.items, arena}
  }
}
