import {readFileSync, readdirSync} from 'node:fs'
import path from 'node:path'
import {gunzipSync} from 'node:zlib'

/**
 * Every non-empty line of the JSONL files in `dir` whose names start with
 * `prefix`, rotated (gzipped) backups included, as raw text: a torn line
 * stays in, for the test to trip over.
 */
export function jsonlLines(dir: string, prefix = ''): string[] {
  return readdirSync(dir)
    .filter((name) => name.startsWith(prefix))
    .flatMap((name) => {
      const raw = readFileSync(path.join(dir, name))
      return (name.endsWith('.gz') ? gunzipSync(raw) : raw).toString().split('\n').filter(Boolean)
    })
}
