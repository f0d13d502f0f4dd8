#!/usr/bin/env node
// Runs a benchmark from the TypeScript sources (tsx), e.g.
//   node bench/run.js database --rows 1000000 --days 180
import {tsImport} from 'tsx/esm/api'

const [name = 'database', ...rest] = process.argv.slice(2)
process.argv = [process.argv[0], process.argv[1], ...rest]
await tsImport(`./${name}.ts`, import.meta.url)
