import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {Worker} from 'node:worker_threads'
import type {ShipperStats} from '../pipeline/shipper.js'
import type {FromShipping, ShippingSettings, ToShipping} from './shipping-thread.js'

const here = fileURLToPath(import.meta.url)
const ENTRY = path.join(path.dirname(here), here.endsWith('.ts') ? 'shipping-thread.ts' : 'shipping-thread.js')

export type Shipping = {
  /** The sinks' latest stats (refreshed four times a second). */
  stats(): ShipperStats[]
  reopen(): void
  /** Delivers what it can within timeoutMs, then closes the sinks. */
  stop(timeoutMs: number): Promise<void>
}

/** Starts the shipping thread (see shipping-thread.ts); resolves once its sinks are set up. */
export async function startShipping(settings: ShippingSettings, log: (m: string) => void): Promise<Shipping> {
  const thread = new Worker(ENTRY, {workerData: settings, resourceLimits: {maxYoungGenerationSizeMb: 8}})
  let stats: ShipperStats[] = []
  let stopped: (() => void) | undefined
  let failed: Error | undefined
  thread.on('message', (msg: FromShipping) => {
    if (msg.type === 'stats') stats = msg.stats
    else if (msg.type === 'log') log(msg.message)
    else if (msg.type === 'stopped') {
      stats = msg.stats
      stopped?.()
    }
  })
  thread.on('error', (error) => {
    failed = error
    log(`shipping: ${error.message}; the journal keeps the records for the next start`)
    stopped?.()
  })
  await new Promise<void>((resolve, reject) => {
    const onMessage = (msg: FromShipping) => msg.type === 'ready' && (thread.off('message', onMessage), resolve())
    thread.on('message', onMessage)
    thread.once('error', reject)
  })
  return {
    stats: () => stats,
    reopen: () => thread.postMessage({type: 'reopen'} satisfies ToShipping),
    async stop(timeoutMs) {
      if (!failed) {
        await new Promise<void>((resolve) => {
          stopped = resolve
          thread.postMessage({type: 'stop', timeoutMs} satisfies ToShipping)
        })
      }
      await thread.terminate()
    },
  }
}
