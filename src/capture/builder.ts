import {type BodyTap, type WireBody, BodyTap as Tap, decodeBody} from './body.js'
import {type Exchange, type RecordOptions, accessLine, newRecordId, requestLine, resolveUser} from './record.js'
import type {LoginWatch} from './logins.js'
import type {WireExchange} from './wire.js'

export type {WireExchange} from './wire.js'

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
  /** Records of the exchanges being built (2 for a full exchange, 1 for an excluded one's access record). */
  pendingRecords = 0

  constructor(
    private readonly options: RecordOptions,
    /** A line is a string, or bytes valid only until the next line is built (see requestLine). */
    private readonly emit: (line: string | Uint8Array) => void,
    /** Records of an exchange that could not be built (a bug, a broken hook): they are counted, never silently lost. */
    private readonly lost: (records: number, error: Error) => void = () => {},
    /** the login routes' watch (loginRoutes), when there are any */
    private readonly logins?: LoginWatch,
  ) {}

  async build(x: Exchange, full: boolean): Promise<void> {
    this.building++
    const records = full ? 2 : 1
    this.pendingRecords += records
    let emitted = 0
    try {
      if (full) {
        // compressed bodies are decoded within the bound, asynchronously
        await decodeBody(x.requestBody, x.requestHeaders as Record<string, string>, this.options.maxBodyLength)
        await decodeBody(x.responseBody, x.responseHeaders, this.options.maxBodyLength)
      }
      const user = resolveUser(x, this.options)
      let login: ReturnType<LoginWatch['observe']>
      try {
        login = this.logins?.observe(x, user)
      } catch (error) {
        this.lost(1, error as Error) // the login event: the exchange's own records are built all the same
      }
      if (login?.flags.length) x.flags = login.flags
      if (full) {
        this.emit(requestLine(x, this.options, user))
        emitted++
      }
      this.emit(accessLine(x, this.options, user))
      for (const line of login?.lines ?? []) this.emit(line)
    } catch (error) {
      // logging never fails the request: a record that cannot be built is counted and reported
      this.lost((full ? 2 : 1) - emitted, error as Error)
    } finally {
      this.building--
      this.pendingRecords -= records
    }
  }
}
