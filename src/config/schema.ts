import {z} from 'zod'

const postgresUrl = z
  .string()
  .regex(/^postgres(ql)?:\/\/\S+$/, 'a URL of the form postgres://user:password@host:port/database')

const wholeNumber = (min: number) =>
  z.coerce.number({error: `a whole number of at least ${min}`}).int(`a whole number of at least ${min}`).min(min, `a whole number of at least ${min}`)

/** A list from a config file (array) or the environment (comma-separated). */
const list = (fallback: string[]) =>
  z.preprocess(
    (v) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : v),
    z.array(z.string(), {error: 'a list (comma-separated in the environment)'}),
  ).default(fallback)

const bool = (fallback: boolean) =>
  z.preprocess(
    (v) => (typeof v === 'string' ? (/^(1|true|yes|on)$/i.test(v) ? true : /^(0|false|no|off)$/i.test(v) ? false : v) : v),
    z.boolean({error: 'true or false'}),
  ).default(fallback)

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):\d{1,5}$/, 'HOST:PORT, e.g. 0.0.0.0:8000 or 127.0.0.1:9464')
// no credentials, query or fragment: the proxy could only drop them; a path is put before every request's
const httpUrl = z.string().regex(/^https?:\/\/[^\s/@?#]+(\/[^\s?#]*)?$/, 'an http:// or https:// URL without user, query or fragment, e.g. http://127.0.0.1:3000 (a path, as in http://127.0.0.1:3000/app, is put before every request\'s)')

export const DEFAULT_SENSITIVE_FIELDS = ['password', 'passwd', 'secret', 'token', 'api_key', 'apikey', 'access_key', 'authorization', 'cookie', 'session', 'card', 'cvv', 'ssn', 'private_key']
export const DEFAULT_SENSITIVE_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']

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

  // audit-logs run: the capture server
  bind: {schema: hostPort.default('0.0.0.0:8000'), env: 'AUDIT_LOGS_BIND', alias: 'GUNICORN_BIND'},
  upstream: {schema: httpUrl.optional(), env: 'AUDIT_LOGS_UPSTREAM'},
  command: {schema: z.array(z.string()).optional(), env: '' /* config file or the arguments after -- */},
  workers: {schema: wholeNumber(1).max(64).default(1), env: 'AUDIT_LOGS_WORKERS', alias: 'GUNICORN_WORKERS'},
  adminBind: {schema: hostPort.default('127.0.0.1:9464'), env: 'AUDIT_LOGS_ADMIN_BIND'},
  capture: {schema: bool(true), env: 'AUDIT_LOGS_CAPTURE'},
  logDir: {schema: z.string().min(1).default('logs'), env: 'AUDIT_LOGS_LOG_DIR', alias: 'GUNICORN_LOG_DIR'},
  logMaxBytes: {schema: wholeNumber(1024).default(10_485_760), env: 'AUDIT_LOGS_LOG_MAX_BYTES', alias: 'GUNICORN_LOG_MAX_BYTES'},
  logBackupCount: {schema: wholeNumber(0).max(1000).default(10), env: 'AUDIT_LOGS_LOG_BACKUP_COUNT', alias: 'GUNICORN_LOG_BACKUP_COUNT'},
  fileSink: {schema: bool(true), env: 'AUDIT_LOGS_FILE_SINK'},
  databaseSink: {schema: bool(true), env: 'AUDIT_LOGS_DATABASE_SINK'},
  journalDir: {schema: z.string().min(1).optional(), env: 'AUDIT_LOGS_JOURNAL_DIR'},
  // unset: derived from the journal's file system at start (see journalBound)
  journalMaxBytes: {schema: wholeNumber(1_048_576).optional(), env: 'AUDIT_LOGS_JOURNAL_MAX_BYTES'},
  whenFull: {
    schema: z.enum(['block', 'drop'], {error: 'block (the proxy holds new requests until the sinks make room: nothing is lost) or drop (new records are dropped and counted)'}).default('block'),
    env: 'AUDIT_LOGS_WHEN_FULL',
  },
  blockTimeoutMs: {schema: wholeNumber(1).default(30_000), env: 'AUDIT_LOGS_BLOCK_TIMEOUT_MS'},
  // whenFull: block also holds new requests while a delivering sink is this far behind at its own pace (0: never)
  maxSinkLagMs: {schema: wholeNumber(0).default(5_000), env: 'AUDIT_LOGS_MAX_SINK_LAG_MS'},
  maxBodyLength: {schema: wholeNumber(0).default(8192), env: 'AUDIT_LOGGER_MAX_BODY_LENGTH'},
  saveFullBody: {schema: bool(false), env: 'AUDIT_LOGS_SAVE_FULL_BODY'},
  excludePaths: {schema: list(['/health/', '/metrics/', '/static/', '/media/']), env: 'AUDIT_LOGS_EXCLUDE_PATHS'},
  excludeExtensions: {schema: list(['.jpg', '.png', '.gif', '.css', '.js', '.svg', '.woff', '.ttf']), env: 'AUDIT_LOGS_EXCLUDE_EXTENSIONS'},
  excludeMethods: {schema: list([]), env: 'AUDIT_LOGS_EXCLUDE_METHODS'},
  sensitiveFields: {schema: list(DEFAULT_SENSITIVE_FIELDS), env: 'AUDIT_LOGS_SENSITIVE_FIELDS'},
  sensitiveHeaders: {schema: list(DEFAULT_SENSITIVE_HEADERS), env: 'AUDIT_LOGS_SENSITIVE_HEADERS'},
  trustedProxies: {schema: list([]), env: 'AUDIT_LOGS_TRUSTED_PROXIES'},
  slowMs: {schema: wholeNumber(1).default(1000), env: 'AUDIT_LOGS_SLOW_MS'},
  shutdownTimeoutMs: {schema: wholeNumber(0).default(10_000), env: 'AUDIT_LOGS_SHUTDOWN_TIMEOUT_MS'},
  instance: {schema: z.string().min(1).optional(), env: 'AUDIT_LOGS_INSTANCE'},
  backgroundNice: {schema: wholeNumber(0).max(19).default(19), env: 'AUDIT_LOGS_BACKGROUND_NICE'},
  shippingDeferMs: {schema: wholeNumber(0).default(30_000), env: 'AUDIT_LOGS_SHIPPING_DEFER_MS'},
  catchUpLagBytes: {schema: wholeNumber(65_536).default(33_554_432), env: 'AUDIT_LOGS_CATCH_UP_LAG_BYTES'},
} satisfies Record<string, {schema: z.ZodType; env: string; alias?: string; secret?: boolean}>

export type SettingKey = keyof typeof settings
export type Config = {[K in SettingKey]: z.output<(typeof settings)[K]['schema']>}
export const settingKeys = Object.keys(settings) as SettingKey[]
