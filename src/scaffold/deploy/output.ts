import path from 'node:path'
import {Flags} from '@oclif/core'
import {type ScaffoldFile, writeScaffoldFiles} from './files.js'

/** The output flags of a scaffold that writes one file: where, or to stdout; --force to replace. */
export const oneFileFlags = (fallback: string) => ({
  out: Flags.string({description: 'file to write', default: fallback}),
  stdout: Flags.boolean({description: 'print the file instead of writing it', exclusive: ['out', 'force']}),
  force: Flags.boolean({description: 'overwrite an existing file'}),
})

/** The output flags of a scaffold that writes several files into a directory. */
export const dirFlags = {
  dir: Flags.string({description: 'directory to write the files into', default: '.'}),
  force: Flags.boolean({description: 'overwrite existing files'}),
}

export type ScaffoldResult = {files: string[]}

/** One file to `out`, or its text to stdout (then nothing is written and `files` is empty). */
export function emitOne(
  flags: {out: string; stdout: boolean; force: boolean},
  text: string,
  command: string,
  log: (line: string) => void,
): ScaffoldResult {
  if (flags.stdout) {
    process.stdout.write(text)
    return {files: []}
  }
  const files = writeScaffoldFiles(path.dirname(flags.out), [{name: path.basename(flags.out), text}], flags.force, command)
  log(`Wrote ${files[0]}`)
  return {files}
}

export function emitMany(flags: {dir: string; force: boolean}, files: ScaffoldFile[], command: string, log: (line: string) => void) {
  const written = writeScaffoldFiles(flags.dir, files, flags.force, command)
  log(`Wrote:\n${written.map((f) => `  ${f}`).join('\n')}`)
  return {files: written}
}
