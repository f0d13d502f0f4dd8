#!/usr/bin/env node
// `run`'s primary lives long and only supervises, counts and ships (in its shipping thread), but V8
// grows its young generation to 16 MB per semi-space while the command starts and keeps it through a
// load: about 25 MB resident for nothing. Holding the young generation at its initial size has to be
// decided before anything is loaded. Only for `run`: an export allocates fast, and a small young
// generation made it 40% slower. The flag is V8's, checked on Node 20 (V8 11); an unknown flag is
// reported by V8 on stderr and ignored, so newer engines are left at their default.
if (process.argv[2] === 'run' && Number(process.versions.v8.split('.')[0]) <= 11) {
  const v8 = await import('node:v8')
  v8.setFlagsFromString('--semi-space-growth-factor=1')
}

const {execute} = await import('@oclif/core')
await execute({dir: import.meta.url})
