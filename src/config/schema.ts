import {z} from 'zod'

const postgresUrl = z
  .string()
  .regex(/^postgres(ql)?:\/\/\S+$/, 'a URL of the form postgres://user:password@host:port/database')

const wholeNumber = (min: number) =>
  z.coerce.number({error: `a whole number of at least ${min}`}).int(`a whole number of at least ${min}`).min(min, `a whole number of at least ${min}`)

/**
 * One schema for every setting. Each key names where it may come from; the
 * environment names follow the seeds where they exist.
 */
export const settings = {
  databaseUrl: {schema: postgresUrl.optional(), env: 'AUDIT_LOGS_DATABASE_URL', secret: true},
  dbName: {
    schema: z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, '1-63 letters, digits, "_" or "-", starting with a letter or "_"').optional(),
    env: 'AUDIT_LOGS_DB_NAME',
  },
  dataDir: {schema: z.string().min(1).default('.audit-logs'), env: 'AUDIT_LOGS_DATA_DIR'},
  embeddedPort: {schema: wholeNumber(1).max(65535).optional(), env: 'AUDIT_LOGS_EMBEDDED_PORT'},
  partitionInterval: {
    schema: z.enum(['month', 'week', 'day'], {error: 'one of month, week, day'}).default('month'),
    env: 'AUDIT_LOGS_PARTITION_INTERVAL',
  },
  premake: {schema: wholeNumber(0).max(120).default(3), env: 'AUDIT_LOGS_PREMAKE'},
  requestRetentionDays: {schema: wholeNumber(1).default(90), env: 'AUDIT_LOGS_REQUEST_RETENTION_DAYS'},
  accessRetentionDays: {schema: wholeNumber(1).default(120), env: 'AUDIT_LOGS_ACCESS_RETENTION_DAYS'},
  cleanupBatchSize: {schema: wholeNumber(1).default(5000), env: 'AUDIT_LOGS_CLEANUP_BATCH_SIZE'},
} satisfies Record<string, {schema: z.ZodType; env: string; secret?: boolean}>

export type SettingKey = keyof typeof settings
export type Config = {[K in SettingKey]: z.output<(typeof settings)[K]['schema']>}
export const settingKeys = Object.keys(settings) as SettingKey[]
