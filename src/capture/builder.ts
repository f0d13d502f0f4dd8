import {type BodyTap, type WireBody, BodyTap as Tap, decodeBody} from './body.js'
import {type Exchange, type RecordOptions, accessLine, newRecordId, requestLine, resolveUser} from './record.js'

/** An exchange as it crosses to the builder thread: bodies as places in the batch's arena; the id is given there. */
export type WireExchange = Omit<Exchange, 'id' | 'requestBody' | 'responseBody'> & {requestBody?: WireBody; responseBody?: WireBody; full: boolean}

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
      start: x.start, method: x.method, scheme: x.scheme, host: x.host, url: x.url, requestHeaders: x.requestHeaders, status: x.status,
      responseHeaders: x.responseHeaders, responseSize: x.responseSize, durationMs: x.durationMs, ip: x.ip, auditUser: x.auditUser,
      auditExtra: x.auditExtra, error: x.error, upstreamError: x.upstreamError, full,
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
    /** A line is a string, or bytes valid only until the next line is built (see requestLine). */
    private readonly emit: (line: string | Uint8Array) => void,
    /** Records of an exchange that could not be built (a bug, a broken hook): they are counted, never silently lost. */
    private readonly lost: (records: number, error: Error) => void = () => {},
  ) {}

  async build(x: Exchange, full: boolean): Promise<void> {
    this.building++
    let emitted = 0
    try {
      if (full) {
        // compressed bodies are decoded within the bound, asynchronously
        await decodeBody(x.requestBody, x.requestHeaders as Record<string, string>, this.options.maxBodyLength)
        await decodeBody(x.responseBody, x.responseHeaders, this.options.maxBodyLength)
      }
      const user = resolveUser(x, this.options)
      if (full) {
        this.emit(requestLine(x, this.options, user))
        emitted++
      }
      this.emit(accessLine(x, this.options, user))
    } catch (error) {
      // logging never fails the request: a record that cannot be built is counted and reported
      this.lost((full ? 2 : 1) - emitted, error as Error)
    } finally {
      this.building--
    }
  }
}
