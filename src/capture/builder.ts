import {type BodyTap, type WireBody, BodyTap as Tap, decodeBody} from './body.js'
import {type Exchange, type RecordOptions, accessLine, requestLine, resolveUser} from './record.js'

/** An exchange as it crosses to the builder thread: bodies as plain transferable bytes. */
export type WireExchange = Omit<Exchange, 'requestBody' | 'responseBody'> & {requestBody?: WireBody; responseBody?: WireBody; full: boolean}

export function toWire(x: Exchange, full: boolean): {wire: WireExchange; transfer: ArrayBuffer[]} {
  const requestBody = x.requestBody?.toWire()
  const responseBody = x.responseBody?.toWire()
  const transfer = [requestBody, responseBody].filter((b): b is WireBody => Boolean(b)).map((b) => b.bytes.buffer as ArrayBuffer)
  return {wire: {...x, requestBody, responseBody, full}, transfer}
}

export function fromWire(w: WireExchange, limit: number): {x: Exchange; full: boolean} {
  const {full, requestBody, responseBody, ...rest} = w
  const tap = (b: WireBody | undefined): BodyTap | undefined => (b ? Tap.fromWire(b, limit) : undefined)
  return {x: {...rest, requestBody: tap(requestBody), responseBody: tap(responseBody)}, full}
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
