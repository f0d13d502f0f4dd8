import type {ResolvedConfig} from '../config/resolve.js'
import type {ShipperStats} from '../pipeline/shipper.js'
import {type Deadline, settledBy} from './lifecycle.js'
import {describeStores, storesOf} from '../config/stores.js'
import {type MongoTarget, mongoTarget} from '../stores/mongo/target.js'
import {integrityOptions} from '../stores/postgres/integrity.js'
import {redactUrl} from '../util/redact.js'
import {prepareDatabase} from './database.js'
import type {RunPlan} from './run-plan.js'
import {type Shipping, startShipping} from './shipping.js'

/** shipping.stop(timeoutMs) ends within timeoutMs and this much more (the thread is terminated then; see shipping.ts). */
const SHIPPING_STOP_MARGIN_MS = 5000

/** The sinks of a run and their shipping thread: the journal is the durability point, each sink has its own checkpoint. */
export type Delivery = {
  /** the sinks, for the log: files, postgres */
  names: string[]
  /** where the database stores are (when the sinks write them): run's maintenance works on them */
  databaseUrl?: string
  mongo?: MongoTarget
  /** the sinks' latest stats (none without sinks) */
  stats(): ShipperStats[]
  /** the stats while they are fresh (a second), else undefined: a busy host or a restarting thread leaves them stale */
  fresh(): ShipperStats[] | undefined
  /** whether the proxy workers are saturated now (shipping waits, within its bounds) */
  foreground(busy: boolean): void
  /** the files sink reopens its files (logrotate) */
  reopen(): void
  /** Delivers what it can by the deadline, closes the sinks, then the database. */
  stop(deadline: Deadline): Promise<void>
}

/**
 * Prepares the database (when the PostgreSQL sink is on) and starts the shipping thread (when capture
 * and a sink are on). onPace is told when the sinks begin and end catching up.
 */
export async function startDelivery(
  plan: RunPlan,
  config: ResolvedConfig,
  log: (m: string) => void,
  onPace: (catchingUp: boolean) => void,
): Promise<Delivery> {
  const names: string[] = []
  let shipping: Shipping | undefined
  let db: Awaited<ReturnType<typeof prepareDatabase>> | undefined
  let mongo: MongoTarget | undefined
  const releaseDatabase = async () => {
    db?.stop()
    await db?.target.release()
  }
  if (plan.settings.capture && (config.fileSink || config.databaseSink)) {
    const stores = storesOf(config)
    mongo = config.databaseSink && stores.mongo ? mongoTarget(config) : undefined
    if (mongo) {
      // a connection string that the driver refuses, a wrong password, a host that does not answer: said now (exit 3)
      const {connectMongo} = await import('../stores/mongo/connection.js')
      await (await connectMongo(mongo)).close()
    }
    if (config.databaseSink && stores.postgres) db = await prepareDatabase(config, log)
    if (config.databaseSink)
      log(
        describeStores(
          config,
          db ? (db.target.embedded ? `embedded, database ${db.target.dbName}` : redactUrl(db.target.databaseUrl)) : '',
        ),
      )
    const files = config.fileSink ? {dir: plan.logDir, maxBytes: config.logMaxBytes, backupCount: config.logBackupCount} : undefined
    if (files) names.push('files')
    if (db) names.push('postgres')
    if (mongo) names.push('mongo')
    try {
      shipping = await startShipping(
        {
          journalDir: plan.settings.journalDir,
          files,
          databaseUrl: db?.target.databaseUrl,
          integrity: db || mongo ? integrityOptions(config, plan.logDir) : undefined,
          mongo,
          nice: config.backgroundNice,
          catchUpBytes: plan.catchUpBytes,
          catchUpMs: config.catchUpLagMs,
          defer: {ms: config.shippingDeferMs},
        },
        log,
        onPace,
      )
    } catch (error) {
      await releaseDatabase()
      throw error
    }
  }
  const stats = () => shipping?.stats() ?? []
  return {
    names,
    databaseUrl: db?.target.databaseUrl,
    mongo,
    stats,
    fresh: () => (shipping && Date.now() - shipping.statsAt() < 1000 ? stats() : undefined),
    foreground: (busy) => shipping?.foreground(busy),
    reopen: () => shipping?.reopen(),
    async stop(deadline) {
      // the sinks deliver until shortly before the deadline; a write that hangs is cut at it
      if (shipping) await settledBy(shipping.stop(Math.max(0, deadline.left() - SHIPPING_STOP_MARGIN_MS)), deadline)
      await releaseDatabase()
    },
  }
}
