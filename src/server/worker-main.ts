// Entry point of a proxy worker process (node:cluster), forked by the primary.
import {startWorker} from './worker.js'

await startWorker(JSON.parse(process.env.AUDIT_LOGS_WORKER_SETTINGS!))
