import {parseArgs} from 'node:util'
import {resolveConfig} from '../config/resolve.js'
import {connect, resolveTarget} from '../stores/postgres/connection.js'
import {assertMigrated} from '../stores/postgres/partitions.js'
import type {LogType} from '../stores/postgres/periods.js'
import {positiveInt} from '../util/parse.js'
import {redactText} from '../util/redact.js'
import {mongoTarget} from '../stores/mongo/target.js'
import {loadIntoDatabase, loadIntoMongo, writeNdjson} from './load.js'

const USAGE = `usage: node bench/generate.js [--rows N] [--days N] [--log-type request|access] [--seed N] [--out FILE.ndjson | --stdout] [--database-url URL]
       [--mongo | --mongo-uri URI] [--mongo-db NAME]
Writes N synthetic records spread over the last N days into the configured audit database (embedded by default),
into MongoDB with --mongo (the configured mongoUri) or --mongo-uri (through the MongoDB sink's writer, in
batches of 10,000; set the store up first with \`audit-logs setup\` for its indexes), or as JSON lines to FILE / stdout.`

export async function main(argv: string[]): Promise<void> {
  const {values} = parseArgs({
    args: argv,
    options: {
      rows: {type: 'string', default: '10000'},
      days: {type: 'string', default: '30'},
      'log-type': {type: 'string', default: 'request'},
      seed: {type: 'string', default: '42'},
      out: {type: 'string'},
      stdout: {type: 'boolean', default: false},
      'database-url': {type: 'string'},
      mongo: {type: 'boolean', default: false},
      'mongo-uri': {type: 'string'},
      'mongo-db': {type: 'string'},
      help: {type: 'boolean', default: false},
    },
  })
  if (values.help) return console.log(USAGE)
  const logType = values['log-type'] as LogType
  if (logType !== 'request' && logType !== 'access') throw new Error(`--log-type must be request or access, got "${logType}"`)
  const options = {
    rows: positiveInt('--rows', values.rows),
    days: positiveInt('--days', values.days),
    seed: positiveInt('--seed', values.seed),
    logType,
  }
  if (values.out || values.stdout) {
    const rows = await writeNdjson(values.out, options)
    if (values.out) console.error(`wrote ${rows} records to ${values.out}`)
    return
  }
  if (values.mongo || values['mongo-uri']) {
    const config = await resolveConfig({flags: {mongoUri: values['mongo-uri'], mongoDbName: values['mongo-db']}})
    const target = mongoTarget(config)
    if (!target) throw new Error('--mongo needs a MongoDB connection string: --mongo-uri or mongoUri (AUDIT_LOGS_MONGO_URI)')
    const {connectMongo} = await import('../stores/mongo/connection.js') // the driver only when MongoDB is loaded
    const store = await connectMongo(target)
    try {
      const result = await loadIntoMongo(store, {
        ...options,
        onBatch: (n) => process.stderr.isTTY && process.stderr.write(`\r${n} rows`),
      })
      console.error(
        `\n${result.rows} records generated, ${result.inserted} inserted (${result.duplicates} already there, ${result.rejected} refused) into MongoDB database ${target.dbName} in ${result.seconds.toFixed(1)} s (${Math.round(result.rows / result.seconds)} records/s)`,
      )
    } finally {
      await store.close()
    }
    return
  }
  const target = await resolveTarget(await resolveConfig({flags: {databaseUrl: values['database-url']}}))
  try {
    const client = await connect(target.databaseUrl)
    try {
      await assertMigrated(client)
      const result = await loadIntoDatabase(client, {
        ...options,
        onBatch: (n) => process.stderr.isTTY && process.stderr.write(`\r${n} rows`),
      })
      console.error(
        `\n${result.rows} records generated, ${result.inserted} inserted into ${target.dbName} in ${result.seconds.toFixed(1)} s (${Math.round(result.rows / result.seconds)} records/s)`,
      )
    } finally {
      await client.end()
    }
  } finally {
    await target.release()
  }
}

main(process.argv.slice(2)).catch((error) => {
  console.error(redactText(`generate: ${(error as Error).message}`))
  process.exitCode = 1
})
