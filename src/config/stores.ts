import {redactUrl} from '../util/redact.js'
import type {LogType} from '../stores/log-types.js'
import type {Config} from './schema.js'

/** How many days each log type is kept by default. */
export const retentionDays = (
  config: Pick<
    Config,
    'requestRetentionDays' | 'accessRetentionDays' | 'eventRetentionDays' | 'outboundRetentionDays' | 'appRetentionDays'
  >,
  logType: LogType,
): number =>
  ({
    request: config.requestRetentionDays,
    access: config.accessRetentionDays,
    event: config.eventRetentionDays,
    outbound: config.outboundRetentionDays,
    app: config.appRetentionDays,
  })[logType]

/** Which database stores the configuration selects (`stores`, or the seeds' AUDIT_LOGS_USE_MONGO and AUDIT_LOGS_WRITE_TO_BOTH). */
export const storesOf = (config: Pick<Config, 'stores'>) => ({postgres: config.stores !== 'mongo', mongo: config.stores !== 'postgres'})

/** The choice as `run` prints it at start: which stores, and where MongoDB is (its password shown as ****). */
export function describeStores(config: Pick<Config, 'stores' | 'mongoUri' | 'mongoDbName'>, postgres: string): string {
  const s = storesOf(config)
  const mongo = `MongoDB ${redactUrl(config.mongoUri ?? '')} database ${config.mongoDbName}`
  return `stores: ${[s.postgres ? `PostgreSQL ${postgres}` : '', s.mongo ? mongo : ''].filter(Boolean).join(' and ')} (stores = ${config.stores})`
}
