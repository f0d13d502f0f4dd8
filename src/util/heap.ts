import v8 from 'node:v8'
import vm from 'node:vm'

/** What this thread's heap and its buffers hold (V8's own `external_memory` is not lowered when buffers are freed). */
export function heldBytes(): number {
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

/**
 * A check to call from time to time: it collects the thread's garbage once the thread holds
 * `slackBytes` more (heap and buffers) than after the last collection, rather than when V8's
 * heuristics get to it (they let a small heap grow to two or three times what it keeps alive). A
 * collection of a small heap takes a few milliseconds. Returns whether it collected.
 */
export function heapKeeper(slackBytes: number): () => boolean {
  v8.setFlagsFromString('--expose-gc')
  const collect = vm.runInNewContext('typeof gc === "function" ? gc : undefined') as (() => void) | undefined
  v8.setFlagsFromString('--no-expose-gc')
  if (!collect) return () => false // an engine that does not take the flag at run time: V8's own pace
  let floor = heldBytes()
  return () => {
    if (heldBytes() < floor + slackBytes) return false
    collect()
    floor = heldBytes()
    return true
  }
}
