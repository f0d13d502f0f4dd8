import {fileURLToPath} from 'node:url'

/** This installation's root (package.json, bin/, migrations/) and its program, for the files that point at them. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url))
export const BIN_PATH = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
