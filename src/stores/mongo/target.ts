import type {Config} from '../../config/schema.js'
import type {LogType} from '../source.js'

// Apart from connection.ts so that code which only names the store (the primary, the configuration) does not load the driver.

/** Where the MongoDB store is: the server, the database and a collection per log type. */
export type MongoTarget = {uri: string; dbName: string; collections: Record<LogType, string>}

type MongoSettings = Pick<
  Config,
  | 'mongoUri'
  | 'mongoDbName'
  | 'mongoRequestCollection'
  | 'mongoAccessCollection'
  | 'mongoEventCollection'
  | 'mongoOutboundCollection'
  | 'mongoAppCollection'
>

export const mongoTarget = (config: MongoSettings): MongoTarget | undefined =>
  config.mongoUri
    ? {
        uri: config.mongoUri,
        dbName: config.mongoDbName,
        collections: {
          request: config.mongoRequestCollection,
          access: config.mongoAccessCollection,
          event: config.mongoEventCollection,
          outbound: config.mongoOutboundCollection,
          app: config.mongoAppCollection,
        },
      }
    : undefined

export const MONGO_URI_SETTING = 'mongoUri (AUDIT_LOGS_MONGO_URI or --mongo-uri)'
