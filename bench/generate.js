#!/usr/bin/env node
// Synthetic audit records for tests and benchmarks, e.g.
//   node bench/generate.js --rows 1000000 --days 180
// Runs the TypeScript sources directly (tsx), so no build is needed.
import {tsImport} from 'tsx/esm/api'

await tsImport('../src/generate/cli.ts', import.meta.url)
