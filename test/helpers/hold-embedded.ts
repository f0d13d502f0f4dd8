// Holds the embedded server of AUDIT_LOGS_DATA_DIR until killed: stands in for a
// long-running audit-logs process in the embedded-server tests.
import {acquireEmbedded} from '../../src/embedded/server.js'

const server = await acquireEmbedded(process.env.AUDIT_LOGS_DATA_DIR!)
process.stdout.write(JSON.stringify({started: server.started, port: server.port}) + '\n')
process.on('SIGTERM', async () => {
  await server.release()
  process.exit(0)
})
setInterval(() => {}, 1000)
