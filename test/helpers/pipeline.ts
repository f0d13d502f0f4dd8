import {mkdtempSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type {Sink} from '../../src/pipeline/sinks.js'

/** A fresh temporary directory. */
export const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), `audit-logs-${p}-`))

/** Waits for a condition, polling; fails only when it is never reached within `ms`. */
export const until = async (check: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** A sink that keeps what it is given in memory, and fails its first `failFirst` writes. */
export function memorySink(failFirst = 0): Sink & {got: string[]; calls: number} {
  const sink = {
    name: 'memory',
    got: [] as string[],
    calls: 0,
    async write(lines: Buffer[]) {
      sink.calls++
      if (sink.calls <= failFirst) throw new Error('sink down')
      sink.got.push(...lines.map(String))
    },
    async close() {},
  }
  return sink
}
