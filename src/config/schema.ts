import {createRequire} from 'node:module'
import {z} from 'zod'

const PERCENT_ENCODE = 'percent-encode special characters in the user name and password: # as %23, / as %2F, ? as %3F, @ as %40, % as %25'

/**
 * A URL setting, parsed here once: code that takes the value later may
 * `new URL` it without a try, and the value is never shown with its
 * password (resolve.ts redacts it). An unencoded '#', '/' or '?' in a
 * password makes the parser end the host early: the URL then fails to
 * parse, or parses into another host with the rest in a fragment, path or
 * query, which is refused here too.
 */
function urlSetting(
  form: string,
  protocols: string[],
  options: {credentials: boolean; check?: (url: URL, raw: string) => string | undefined},
) {
  return z.string({error: form}).superRefine((raw, ctx) => {
    const problem = urlProblem(raw, form, protocols, options)
    if (problem) ctx.addIssue({code: 'custom', message: problem})
  })
}

function urlProblem(
  raw: string,
  form: string,
  protocols: string[],
  options: {credentials: boolean; check?: (url: URL, raw: string) => string | undefined},
): string | undefined {
  const advice = options.credentials ? `; ${PERCENT_ENCODE}` : ''
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(raw))
    return `${form}; this one does not start with ${protocols[0]}//${options.credentials ? ` (${PERCENT_ENCODE})` : ''}`
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return `${form}; this one cannot be parsed${advice}`
  }
  if (!protocols.includes(url.protocol)) return form
  return options.check?.(url, raw)
}

const WEBHOOK_URL_FORM =
  'an http:// or https:// URL, e.g. https://hooks.slack.com/services/T000/B000/XXXX (https://user:password@host/... for Basic authentication)'

const POSTGRES_URL_FORM = 'a URL of the form postgres://user:password@host:port/database'
const postgresUrl = urlSetting(POSTGRES_URL_FORM, ['postgres:', 'postgresql:'], {
  credentials: true,
  // the parser ended the host at an unencoded '#', '/' or '?' of the password, and took the rest for a fragment, path or query
  check: (url) =>
    url.hash || /@/.test(url.pathname + url.search)
      ? `${POSTGRES_URL_FORM}; in this one the host ends early; ${PERCENT_ENCODE}`
      : undefined,
})

const MONGO_URI_FORM =
  'a MongoDB connection string: mongodb://user:password@host:port/database (several hosts separated by commas, options after ?) or mongodb+srv://user:password@cluster.example.com/'
/**
 * Parsed by the driver's own parser (mongodb-connection-string-url, which the
 * driver uses): a replica set's host list is not a WHATWG URL. The driver
 * checks the options when it connects.
 */
const mongoUri = z.string({error: MONGO_URI_FORM}).superRefine((raw, ctx) => {
  if (!/^mongodb(\+srv)?:\/\//i.test(raw)) {
    ctx.addIssue({code: 'custom', message: `${MONGO_URI_FORM}; this one does not start with mongodb:// or mongodb+srv://`})
    return
  }
  try {
    // loaded only when a MongoDB URI is configured: every command resolves the configuration
    const {ConnectionString} = createRequire(import.meta.url)(
      'mongodb-connection-string-url',
    ) as typeof import('mongodb-connection-string-url')
    new ConnectionString(raw)
  } catch (error) {
    ctx.addIssue({code: 'custom', message: `${MONGO_URI_FORM}; this one cannot be parsed (${(error as Error).message}); ${PERCENT_ENCODE}`})
  }
})
/** A MongoDB database or collection name: what every server accepts. */
const mongoName = (fallback: string) =>
  z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, '1-63 letters, digits, "_" or "-", starting with a letter or "_"')
    .default(fallback)

/** Where records are stored besides the files: PostgreSQL (the default), MongoDB, or both. */
export const STORES = ['postgres', 'mongo', 'both'] as const
export type Stores = (typeof STORES)[number]

const wholeNumber = (min: number) =>
  z.coerce
    .number({error: `a whole number of at least ${min}`})
    .int(`a whole number of at least ${min}`)
    .min(min, `a whole number of at least ${min}`)

/** A list from a config file (array) or the environment (comma-separated). */
const list = (fallback: string[]) =>
  z
    .preprocess(
      (v) =>
        typeof v === 'string'
          ? v
              .split(',')
              .map((x) => x.trim())
              .filter(Boolean)
          : v,
      z.array(z.string(), {error: 'a list (comma-separated in the environment)'}),
    )
    .default(fallback)

const bool = (fallback: boolean) =>
  z
    .preprocess(
      (v) => (typeof v === 'string' ? (/^(1|true|yes|on)$/i.test(v) ? true : /^(0|false|no|off)$/i.test(v) ? false : v) : v),
      z.boolean({error: 'true or false'}),
    )
    .default(fallback)

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):\d{1,5}$/, 'HOST:PORT, e.g. 0.0.0.0:8000 or 127.0.0.1:9464')
// no credentials, query or fragment: the proxy could only drop them; a path is put before every request's
const HTTP_URL_FORM =
  "an http:// or https:// URL without user, query or fragment, e.g. http://127.0.0.1:3000 (a path, as in http://127.0.0.1:3000/app, is put before every request's)"
const httpUrl = urlSetting(HTTP_URL_FORM, ['http:', 'https:'], {
  credentials: false,
  check: (url, raw) => (/^https?:\/\/[^\s/@?#]+(\/[^\s?#]*)?$/.test(raw) && url.host ? undefined : HTTP_URL_FORM),
})

/** gunicorn's log levels, least severe first. */
export const LOG_LEVELS = ['debug', 'info', 'warning', 'error', 'critical'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

const TIMEOUT_FORM = 'a whole number of milliseconds, 0 for no limit (GUNICORN_TIMEOUT: seconds, as gunicorn takes them)'
/** A number of seconds (gunicorn's unit) as milliseconds; anything else as it is, for the schema to refuse by name. */
const seconds = (raw: string): unknown => (/^\s*\d+(\.\d+)?\s*$/.test(raw) ? Math.round(Number(raw) * 1000) : raw)

export const DEFAULT_SENSITIVE_FIELDS = [
  'password',
  'passwd',
  'secret',
  'token',
  'api_key',
  'apikey',
  'access_key',
  'authorization',
  'cookie',
  'session',
  'card',
  'cvv',
  'ssn',
  'private_key',
]
export const DEFAULT_SENSITIVE_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']

/**
 * `exit`: the exit code of an invalid value when it is not the usage error's (2): a store's address is a database error (3).
 * `secret`: a `url` is shown with its password as ****, an `endpoint` (a webhook's URL: its path often is a token) as
 * scheme://host only, a `value` never.
 * `doc`: the setting's meaning in a few words, as `scaffold env` writes it next to the variable (optional in the type, so
 * that a setting added elsewhere compiles; a test fails for every setting without one).
 */
export type SettingSpec = {
  schema: z.ZodType
  env: string
  alias?: string
  /** turns a value given under `alias` into this setting's unit (GUNICORN_TIMEOUT is in seconds) */
  fromAlias?: (raw: string) => unknown
  secret?: 'url' | 'endpoint' | 'value'
  flag?: string
  exit?: 3
  doc?: string
}

/** A plain e-mail address (alerts): no display name, no list. */
const EMAIL = /^[^\s@<>,;"]+@[^\s@<>,;"]+$/

/** A role's password for setup-db: never shown. */
const password = z.string({error: 'a password'}).min(1, 'a password').optional()

/**
 * One schema for every setting. Each key names where it may come from (the
 * environment names follow the seeds where they exist; `flag` is the
 * command-line flag that sets it, for messages) and whether it is secret:
 * a `url` is shown with its password as ****, a `value` never.
 */
export const settings = {
  databaseUrl: {
    doc: 'PostgreSQL server of the audit database (unset: the embedded PostgreSQL in dataDir)',
    schema: postgresUrl.optional(),
    env: 'AUDIT_LOGS_DATABASE_URL',
    secret: 'url',
    flag: '--database-url',
  },
  dbName: {
    doc: 'name of the audit database (default: the one named in databaseUrl, else audit_logs)',
    schema: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, '1-63 letters, digits, "_" or "-", starting with a letter or "_"')
      .optional(),
    env: 'AUDIT_LOGS_DB_NAME',
  },
  dataDir: {
    doc: "directory of the embedded PostgreSQL's data and the journal's default place",
    schema: z.string().min(1).default('.audit-logs'),
    env: 'AUDIT_LOGS_DATA_DIR',
  },
  embeddedPort: {
    doc: 'port of the embedded PostgreSQL (unset: a free one)',
    schema: wholeNumber(1).max(65535).optional(),
    env: 'AUDIT_LOGS_EMBEDDED_PORT',
  },
  partitionInterval: {
    doc: 'period of each time partition of the audit tables: month, week or day',
    schema: z.enum(['month', 'week', 'day'], {error: 'one of month, week, day'}).default('month'),
    env: 'AUDIT_LOGS_PARTITION_INTERVAL',
  },
  premake: {doc: 'partitions created ahead of the current one', schema: wholeNumber(0).max(120).default(3), env: 'AUDIT_LOGS_PREMAKE'},
  requestRetentionDays: {
    doc: 'days request records are kept before cleanup deletes them',
    schema: wholeNumber(1).default(90),
    env: 'AUDIT_LOGS_REQUEST_RETENTION_DAYS',
  },
  accessRetentionDays: {
    doc: 'days access records are kept before cleanup deletes them',
    schema: wholeNumber(1).default(120),
    env: 'AUDIT_LOGS_ACCESS_RETENTION_DAYS',
  },
  // an audit trail of who changed what is kept longer than the traffic around it
  eventRetentionDays: {
    doc: 'days application events are kept (an audit trail outlives the traffic around it)',
    schema: wholeNumber(1).default(365),
    env: 'AUDIT_LOGS_EVENT_RETENTION_DAYS',
  },
  outboundRetentionDays: {
    doc: "days records of the app's outbound calls are kept",
    schema: wholeNumber(1).default(90),
    env: 'AUDIT_LOGS_OUTBOUND_RETENTION_DAYS',
  },
  appRetentionDays: {doc: "days the app's output lines are kept", schema: wholeNumber(1).default(30), env: 'AUDIT_LOGS_APP_RETENTION_DAYS'},
  cleanupBatchSize: {
    doc: 'rows cleanup deletes per statement, so it never holds long locks',
    schema: wholeNumber(1).default(5000),
    env: 'AUDIT_LOGS_CLEANUP_BATCH_SIZE',
  },

  /**
   * Which database stores receive the records (the files are a sink of their own). The seeds' names map
   * onto it (resolve.ts): AUDIT_LOGS_USE_MONGO=true alone is mongo, with AUDIT_LOGS_WRITE_TO_BOTH=true both.
   */
  stores: {
    doc: 'which databases receive the records: postgres, mongo or both (AUDIT_LOGS_USE_MONGO / AUDIT_LOGS_WRITE_TO_BOTH also work)',
    schema: z.enum(STORES, {error: 'postgres (PostgreSQL only), mongo (MongoDB only) or both'}).default('postgres'),
    env: 'AUDIT_LOGS_STORES',
    flag: '--stores',
  },
  mongoUri: {
    doc: 'MongoDB connection string (needed when stores is mongo or both)',
    schema: mongoUri.optional(),
    env: 'AUDIT_LOGS_MONGO_URI',
    secret: 'url',
    flag: '--mongo-uri',
    exit: 3,
  },
  mongoDbName: {doc: 'MongoDB database of the records', schema: mongoName('audit_logs'), env: 'AUDIT_LOGS_MONGO_DB_NAME'},
  mongoRequestCollection: {
    doc: 'MongoDB collection of request records',
    schema: mongoName('request_logs'),
    env: 'AUDIT_LOGS_MONGO_REQUEST_LOGS_COLLECTION',
  },
  mongoAccessCollection: {
    doc: 'MongoDB collection of access records',
    schema: mongoName('access_logs'),
    env: 'AUDIT_LOGS_MONGO_GUNICORN_LOGS_COLLECTION',
  },
  mongoEventCollection: {
    doc: 'MongoDB collection of application events',
    schema: mongoName('event_logs'),
    env: 'AUDIT_LOGS_MONGO_EVENT_LOGS_COLLECTION',
  },
  mongoOutboundCollection: {
    doc: "MongoDB collection of the app's outbound calls",
    schema: mongoName('outbound_logs'),
    env: 'AUDIT_LOGS_MONGO_OUTBOUND_LOGS_COLLECTION',
  },
  mongoAppCollection: {
    doc: "MongoDB collection of the app's output lines",
    schema: mongoName('app_logs'),
    env: 'AUDIT_LOGS_MONGO_APP_LOGS_COLLECTION',
  },

  // audit-logs setup-db: a role that may create databases and roles (default: the configured server), and the roles' passwords (default: generated)
  adminUrl: {
    doc: 'setup-db: a role that may create databases and roles (default: the configured server)',
    schema: postgresUrl.optional(),
    env: 'AUDIT_LOGS_ADMIN_URL',
    secret: 'url',
    flag: '--admin-url',
  },
  ownerPassword: {
    doc: 'setup-db: password of the owner role (default: generated, printed once)',
    schema: password,
    env: 'AUDIT_LOGS_OWNER_PASSWORD',
    secret: 'value',
    flag: '--owner-password',
  },
  writerPassword: {
    doc: 'setup-db: password of the writer role, INSERT only (default: generated, printed once)',
    schema: password,
    env: 'AUDIT_LOGS_WRITER_PASSWORD',
    secret: 'value',
    flag: '--writer-password',
  },
  readerPassword: {
    doc: 'setup-db: password of the reader role, SELECT only (default: generated, printed once)',
    schema: password,
    env: 'AUDIT_LOGS_READER_PASSWORD',
    secret: 'value',
    flag: '--reader-password',
  },

  // audit-logs run: the capture server
  bind: {
    doc: 'HOST:PORT the capture proxy listens on',
    schema: hostPort.default('0.0.0.0:8000'),
    env: 'AUDIT_LOGS_BIND',
    alias: 'GUNICORN_BIND',
  },
  upstream: {
    doc: 'URL of the app the proxy forwards to (or spawn it: run -- CMD)',
    schema: httpUrl.optional(),
    env: 'AUDIT_LOGS_UPSTREAM',
    secret: 'url',
    flag: '--upstream',
  },
  command: {
    doc: 'the app to spawn with a free port in PORT (config file or the arguments after --)',
    schema: z.array(z.string()).optional(),
    env: '' /* config file or the arguments after -- */,
  },
  workers: {doc: 'proxy worker processes', schema: wholeNumber(1).max(64).default(1), env: 'AUDIT_LOGS_WORKERS', alias: 'GUNICORN_WORKERS'},
  adminBind: {
    doc: 'HOST:PORT of the admin listener: health, metrics, the events endpoint',
    schema: hostPort.default('127.0.0.1:9464'),
    env: 'AUDIT_LOGS_ADMIN_BIND',
  },
  capture: {doc: 'record traffic at all (false: a plain proxy)', schema: bool(true), env: 'AUDIT_LOGS_CAPTURE'},
  logDir: {
    doc: 'directory of the rotating JSONL files',
    schema: z.string().min(1).default('logs'),
    env: 'AUDIT_LOGS_LOG_DIR',
    alias: 'GUNICORN_LOG_DIR',
  },
  logMaxBytes: {
    doc: 'size at which a JSONL file is rotated (backups gzipped)',
    schema: wholeNumber(1024).default(10_485_760),
    env: 'AUDIT_LOGS_LOG_MAX_BYTES',
    alias: 'GUNICORN_LOG_MAX_BYTES',
  },
  logBackupCount: {
    doc: 'rotated JSONL files kept per log type',
    schema: wholeNumber(0).max(1000).default(10),
    env: 'AUDIT_LOGS_LOG_BACKUP_COUNT',
    alias: 'GUNICORN_LOG_BACKUP_COUNT',
  },
  fileSink: {doc: 'write the JSONL files', schema: bool(true), env: 'AUDIT_LOGS_FILE_SINK'},
  databaseSink: {doc: 'write the records to the configured database stores', schema: bool(true), env: 'AUDIT_LOGS_DATABASE_SINK'},
  journalDir: {
    doc: 'directory of the durable journal every record passes through (default: in dataDir)',
    schema: z.string().min(1).optional(),
    env: 'AUDIT_LOGS_JOURNAL_DIR',
  },
  // unset: derived from the journal's file system at start (see journalBound)
  journalMaxBytes: {
    doc: "bound of the journal's size (unset: from its file system's free space)",
    schema: wholeNumber(1_048_576).optional(),
    env: 'AUDIT_LOGS_JOURNAL_MAX_BYTES',
  },
  whenFull: {
    doc: 'when the journal or handoff is full: block (hold requests, lose nothing) or drop (count dropped records)',
    schema: z
      .enum(['block', 'drop'], {
        error:
          'block (the proxy holds new requests until the sinks make room: nothing is lost) or drop (new records are dropped and counted)',
      })
      .default('block'),
    env: 'AUDIT_LOGS_WHEN_FULL',
  },
  /**
   * A response's last bytes wait until its records are written to the journal (a write, not an fsync:
   * what the kernel holds survives the process). Without it a killed run (SIGKILL, the OOM killer) loses
   * the records of the requests it answered in its last ~10 ms: the hand-off to the builder thread and
   * the journal's write buffer. With it, a client that got a whole response has its record.
   */
  recordBeforeAnswer: {
    doc: "a response's last bytes wait until its records are in the journal, so a killed server loses no answered request",
    schema: bool(true),
    env: 'AUDIT_LOGS_RECORD_BEFORE_ANSWER',
  },
  blockTimeoutMs: {
    doc: 'longest a request is held while the journal is full, then it is answered 503',
    schema: wholeNumber(1).default(30_000),
    env: 'AUDIT_LOGS_BLOCK_TIMEOUT_MS',
  },
  /**
   * Bodies a proxy worker has handed to its record builder thread and that are not built yet, at most:
   * a builder that falls behind (a host short of CPU) costs bounded memory, and past the bound new
   * requests wait (whenFull: block) or their records are dropped and counted (drop), as at the
   * journal's bound. The default absorbs a burst: at saturation with 6 KiB of bodies per request on
   * two shared cores the builder fell about 70 MiB behind in 10 s, and catches up after it.
   */
  handoffMaxBytes: {
    doc: 'bytes of bodies waiting for the record builder, at most',
    schema: wholeNumber(1).default(256 * 1024 * 1024),
    env: 'AUDIT_LOGS_HANDOFF_MAX_BYTES',
  },
  // whenFull: block also holds new requests while a delivering sink is this far behind at its own pace (0: never)
  maxSinkLagMs: {
    doc: 'whenFull block also holds requests while a sink is this far behind (0: never)',
    schema: wholeNumber(0).default(5_000),
    env: 'AUDIT_LOGS_MAX_SINK_LAG_MS',
  },
  maxBodyLength: {
    doc: "bytes of each request and response body kept (the seeds' name)",
    schema: wholeNumber(0).default(8192),
    env: 'AUDIT_LOGGER_MAX_BODY_LENGTH',
  },
  saveFullBody: {doc: 'keep whole bodies (up to 1 MiB) instead of maxBodyLength', schema: bool(false), env: 'AUDIT_LOGS_SAVE_FULL_BODY'},
  excludePaths: {
    doc: 'path prefixes with no request record (access lines are still written)',
    schema: list(['/health/', '/metrics/', '/static/', '/media/']),
    env: 'AUDIT_LOGS_EXCLUDE_PATHS',
  },
  excludeExtensions: {
    doc: 'file extensions with no request record',
    schema: list(['.jpg', '.png', '.gif', '.css', '.js', '.svg', '.woff', '.ttf']),
    env: 'AUDIT_LOGS_EXCLUDE_EXTENSIONS',
  },
  excludeMethods: {doc: 'HTTP methods with no request record', schema: list([]), env: 'AUDIT_LOGS_EXCLUDE_METHODS'},
  sensitiveFields: {
    doc: 'body, query and JSON field names whose values are masked',
    schema: list(DEFAULT_SENSITIVE_FIELDS),
    env: 'AUDIT_LOGS_SENSITIVE_FIELDS',
  },
  sensitiveHeaders: {
    doc: 'header names whose values are masked',
    schema: list(DEFAULT_SENSITIVE_HEADERS),
    env: 'AUDIT_LOGS_SENSITIVE_HEADERS',
  },
  trustedProxies: {
    doc: 'addresses or CIDRs whose X-Forwarded-For is believed for the client IP',
    schema: list([]),
    env: 'AUDIT_LOGS_TRUSTED_PROXIES',
  },
  slowMs: {doc: 'requests slower than this are flagged slow', schema: wholeNumber(1).default(1000), env: 'AUDIT_LOGS_SLOW_MS'},
  shutdownTimeoutMs: {
    doc: 'on SIGTERM, how long in-flight requests and sinks get to finish',
    schema: wholeNumber(0).default(10_000),
    env: 'AUDIT_LOGS_SHUTDOWN_TIMEOUT_MS',
  },
  instance: {
    doc: 'name of this instance in every record (default: the host name)',
    schema: z.string().min(1).optional(),
    env: 'AUDIT_LOGS_INSTANCE',
  },
  backgroundNice: {
    doc: 'nice level of the shipping threads, so they yield to the proxy',
    schema: wholeNumber(0).max(19).default(19),
    env: 'AUDIT_LOGS_BACKGROUND_NICE',
  },
  shippingDeferMs: {
    doc: 'how long shipping to the database may wait while the proxy is busy',
    schema: wholeNumber(0).default(30_000),
    env: 'AUDIT_LOGS_SHIPPING_DEFER_MS',
  },
  catchUpLagBytes: {
    doc: 'journal backlog past which shipping stops deferring to the proxy',
    schema: wholeNumber(65_536).default(33_554_432),
    env: 'AUDIT_LOGS_CATCH_UP_LAG_BYTES',
  },
  catchUpLagMs: {
    doc: 'record age past which shipping stops deferring to the proxy',
    schema: wholeNumber(0).default(2000),
    env: 'AUDIT_LOGS_CATCH_UP_LAG_MS',
  },

  // application events: POST /_audit/events on the admin listener (src/server/events.ts)
  eventsToken: {
    doc: 'bearer token the app posts events with to /_audit/events',
    schema: z.string().min(16, 'a token of at least 16 characters (e.g. `openssl rand -hex 24`)').optional(),
    env: 'AUDIT_LOGS_EVENTS_TOKEN',
    secret: 'value',
  },
  /** Events without a token: only when the admin listener is on a loopback address (anyone on this host may then write events). */
  eventsAllowNoToken: {
    doc: 'accept events without a token (only on a loopback admin listener)',
    schema: bool(false),
    env: 'AUDIT_LOGS_EVENTS_ALLOW_NO_TOKEN',
  },
  eventsMaxBatch: {doc: 'events per POST, at most', schema: wholeNumber(1).max(100_000).default(1000), env: 'AUDIT_LOGS_EVENTS_MAX_BATCH'},
  eventsMaxBatchBytes: {
    doc: 'bytes per events POST, at most',
    schema: wholeNumber(1024).default(1_048_576),
    env: 'AUDIT_LOGS_EVENTS_MAX_BATCH_BYTES',
  },
  eventsMaxEventBytes: {
    doc: 'bytes per event, at most',
    schema: wholeNumber(256).default(65_536),
    env: 'AUDIT_LOGS_EVENTS_MAX_EVENT_BYTES',
  },
  /** Events a second from one client address (a token bucket holding as many); over it, 429. */
  eventsRatePerClient: {
    doc: 'events per second from one client address (over it: 429)',
    schema: wholeNumber(1).default(20_000),
    env: 'AUDIT_LOGS_EVENTS_RATE_PER_CLIENT',
  },

  // the web viewer (audit-logs ui, run --ui): src/ui/
  ui: {doc: 'serve the web viewer from run', schema: bool(false), env: 'AUDIT_LOGS_UI', flag: '--ui'},
  uiBind: {doc: 'HOST:PORT of the web viewer', schema: hostPort.default('127.0.0.1:8081'), env: 'AUDIT_LOGS_UI_BIND', flag: '--ui-bind'},
  /** Who may log in: NAME:HASH entries, the hash from `audit-logs ui hash-password` (scrypt). */
  uiUsers: {
    doc: 'viewer logins: NAME:HASH entries from audit-logs ui hash-password',
    schema: list([]).superRefine((users, ctx) => {
      // the entry is named by its place only: one without a colon may be a password pasted by mistake
      users.forEach((u, i) => {
        if (!/^[^:\s,]{1,100}:scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]{16,}\$[A-Za-z0-9_-]{32,}$/.test(u))
          ctx.addIssue({
            code: 'custom',
            message: `NAME:HASH entries, the hash as \`audit-logs ui hash-password\` prints it (scrypt$N$r$p$salt$key); entry ${i + 1} is not one`,
          })
      })
    }),
    env: 'AUDIT_LOGS_UI_USERS',
    secret: 'value',
  },
  /** A reverse proxy's authenticated-user header (e.g. X-Forwarded-User), believed only from uiAuthProxies. */
  uiAuthHeader: {
    doc: "a reverse proxy's authenticated-user header, believed only from uiAuthProxies",
    schema: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,100}$/, 'an HTTP header name such as X-Forwarded-User')
      .optional(),
    env: 'AUDIT_LOGS_UI_AUTH_HEADER',
  },
  uiAuthProxies: {doc: 'addresses of the reverse proxies trusted for uiAuthHeader', schema: list([]), env: 'AUDIT_LOGS_UI_AUTH_PROXIES'},
  uiTlsCert: {doc: "PEM certificate file of the viewer's HTTPS", schema: z.string().min(1).optional(), env: 'AUDIT_LOGS_UI_TLS_CERT'},
  uiTlsKey: {doc: "PEM key file of the viewer's HTTPS", schema: z.string().min(1).optional(), env: 'AUDIT_LOGS_UI_TLS_KEY'},
  /** A session ends after this long without a request (and after 12 hours in any case). */
  uiSessionIdleMs: {
    doc: 'a viewer session ends after this long without a request',
    schema: wholeNumber(60_000).default(3_600_000),
    env: 'AUDIT_LOGS_UI_SESSION_IDLE_MS',
  },
  /** Failed logins allowed per user name in 15 minutes (per client address: four times as many); past it, 429. */
  uiLoginAttempts: {
    doc: 'failed viewer logins per user name in 15 minutes before 429',
    schema: wholeNumber(1).default(5),
    env: 'AUDIT_LOGS_UI_LOGIN_ATTEMPTS',
  },

  // run: an HTTP forward proxy for the app's outbound calls (src/capture/egress.ts); spawn mode points the app at it
  egressBind: {
    doc: "HOST:PORT of a forward proxy recording the app's outbound calls",
    schema: hostPort.optional(),
    env: 'AUDIT_LOGS_EGRESS_BIND',
    flag: '--egress-bind',
  },

  // run -- CMD: the app's stdout and stderr lines as `app` records (src/server/app-output.ts)
  captureOutput: {
    doc: "record the spawned app's stdout and stderr lines",
    schema: bool(false),
    env: 'AUDIT_LOGS_CAPTURE_OUTPUT',
    flag: '--capture-output',
  },
  outputMaxLineBytes: {
    doc: 'bytes of each recorded output line kept',
    schema: wholeNumber(80).max(1_048_576).default(8192),
    env: 'AUDIT_LOGS_OUTPUT_MAX_LINE_BYTES',
  },

  // login attempts seen by the proxy (src/capture/logins.ts)
  loginRoutes: {
    doc: 'login routes to watch: "METHOD /path [STATUSES]" entries',
    schema: list([]).superRefine((routes, ctx) => {
      for (const r of routes)
        if (!/^[A-Z]{1,20}\s+\/\S*(\s+\S+)?$/.test(r.trim()))
          ctx.addIssue({
            code: 'custom',
            message: `"${r}" is not "METHOD /path" or "METHOD /path STATUSES" (e.g. "POST /accounts/login/ 302")`,
          })
    }),
    env: 'AUDIT_LOGS_LOGIN_ROUTES',
  },
  loginSuccessStatus: {
    doc: 'statuses of a successful login',
    schema: z
      .string()
      .regex(/^[0-9x<>=!, -]+$/, 'statuses in the filter language, e.g. 2xx,3xx or 200,302')
      .default('2xx,3xx'),
    env: 'AUDIT_LOGS_LOGIN_SUCCESS_STATUS',
  },
  loginUsernameFields: {
    doc: 'body fields that hold the user name of a login',
    schema: list(['username', 'email', 'login']),
    env: 'AUDIT_LOGS_LOGIN_USERNAME_FIELDS',
  },
  bruteforceThreshold: {
    doc: 'failed logins from one address in the window that flag brute force',
    schema: wholeNumber(2).default(5),
    env: 'AUDIT_LOGS_BRUTEFORCE_THRESHOLD',
  },
  bruteforceWindowMs: {
    doc: 'window of the brute-force count',
    schema: wholeNumber(1000).default(300_000),
    env: 'AUDIT_LOGS_BRUTEFORCE_WINDOW_MS',
  },

  // run --maintenance: premake partitions and apply retention every maintenanceIntervalMs, one instance per
  // period under a PostgreSQL advisory lock (src/server/maintenance.ts)
  maintenance: {
    doc: 'premake partitions and apply retention inside run, one instance per period',
    schema: bool(false),
    env: 'AUDIT_LOGS_MAINTENANCE',
    flag: '--maintenance',
  },
  maintenanceIntervalMs: {
    doc: 'how often run --maintenance does its work (ms)',
    schema: wholeNumber(1000).default(3_600_000),
    env: 'AUDIT_LOGS_MAINTENANCE_INTERVAL_MS',
  },

  // tamper evidence: PostgreSQL and MongoDB batches hash-chained per instance, the head signed (src/stores/postgres/integrity.ts, src/stores/mongo/integrity.ts)
  integrity: {
    doc: 'hash-chain every PostgreSQL and MongoDB batch per instance (audit-logs verify checks it)',
    schema: bool(true),
    env: 'AUDIT_LOGS_INTEGRITY',
  },
  /** An Ed25519 private key, PEM text or a PEM file's path (`audit-logs verify keygen`); without it no digests are signed. */
  integrityKey: {
    doc: 'Ed25519 private key (PEM text or file path) that signs the chain heads; none: no digests',
    schema: z.string().min(1).optional(),
    env: 'AUDIT_LOGS_INTEGRITY_KEY',
    secret: 'value',
  },
  integrityDigestIntervalMs: {
    doc: 'how often the chain head is signed (ms)',
    schema: wholeNumber(1000).default(300_000),
    env: 'AUDIT_LOGS_INTEGRITY_DIGEST_INTERVAL_MS',
  },

  // alerts of run (src/alerts/, src/server/alerts.ts): a webhook and/or e-mail when a sink fails, records are
  // dropped or dead-lettered, the journal fills. A config file may group them: alerts: {webhookUrl, smtpUrl, ...}
  alertWebhookUrl: {
    doc: 'webhook that receives alerts (secret: its path is its token; user:password@ is sent as Basic auth)',
    schema: urlSetting(WEBHOOK_URL_FORM, ['http:', 'https:'], {
      credentials: true,
      // sent as `Authorization: Basic base64(user:password)` (src/alerts/channels.ts): each part decoded once
      check: (url) => {
        const decoded = (part: string) => {
          try {
            return decodeURIComponent(part)
          } catch {
            return undefined
          }
        }
        const user = decoded(url.username)
        if (user === undefined || decoded(url.password) === undefined)
          return `${WEBHOOK_URL_FORM}; this one's user name or password has a % that starts no %XX; ${PERCENT_ENCODE}`
        if (user.includes(':'))
          return `${WEBHOOK_URL_FORM}; this one's user name holds a ':' (as %3A), which Basic authentication cannot send: the first ':' ends the user name`
        return undefined
      },
    }).optional(),
    env: 'AUDIT_LOGS_ALERT_WEBHOOK_URL',
    secret: 'endpoint',
  },
  alertWebhookFormat: {
    doc: 'json or slack body of a webhook alert',
    schema: z
      .enum(['json', 'slack'], {
        error: 'json (the alerts as a JSON document) or slack ({"text": ...}: Slack and compatible incoming webhooks)',
      })
      .default('json'),
    env: 'AUDIT_LOGS_ALERT_WEBHOOK_FORMAT',
  },
  alertSmtpUrl: {
    doc: 'SMTP server for e-mailed alerts (smtp:// or smtps://, secret)',
    schema: urlSetting(
      'a URL of the form smtp://user:password@host:587 (STARTTLS when offered) or smtps://user:password@host:465',
      ['smtp:', 'smtps:'],
      {
        credentials: true,
      },
    ).optional(),
    env: 'AUDIT_LOGS_ALERT_SMTP_URL',
    secret: 'url',
  },
  alertEmailFrom: {
    doc: 'sender address of e-mailed alerts',
    schema: z.string().regex(EMAIL, 'an e-mail address, e.g. audit-logs@example.com').optional(),
    env: 'AUDIT_LOGS_ALERT_EMAIL_FROM',
  },
  alertEmailTo: {
    doc: 'recipients of e-mailed alerts',
    schema: list([]).superRefine((to, ctx) => {
      for (const a of to)
        if (!EMAIL.test(a))
          ctx.addIssue({code: 'custom', message: `e-mail addresses (comma-separated in the environment); "${a}" is not one`})
    }),
    env: 'AUDIT_LOGS_ALERT_EMAIL_TO',
  },
  /** A sink failing this long without a delivery is alerted. */
  alertSinkFailedMs: {
    doc: 'how long a sink fails before an alert (ms)',
    schema: wholeNumber(0).default(60_000),
    env: 'AUDIT_LOGS_ALERT_SINK_FAILED_MS',
  },
  /** What the sinks lack, in percent of the journal's bound, that is alerted (it ends below 90% of it). */
  alertJournalFillPercent: {
    doc: 'journal fill level that raises an alert (%)',
    schema: wholeNumber(1).max(100).default(80),
    env: 'AUDIT_LOGS_ALERT_JOURNAL_FILL_PERCENT',
  },
  /** While a condition lasts, a digest at most this often (fractions allowed: 0.5 is 30 s). */
  alertDigestMinutes: {
    doc: 'at most one digest per condition this often (minutes)',
    schema: z.coerce
      .number({error: 'a number of minutes of at least 0.05 (3 s)'})
      .min(0.05, 'a number of minutes of at least 0.05 (3 s)')
      .default(15),
    env: 'AUDIT_LOGS_ALERT_DIGEST_MINUTES',
  },
  alertTimeoutMs: {
    doc: 'timeout of one alert send (ms)',
    schema: wholeNumber(100).default(10_000),
    env: 'AUDIT_LOGS_ALERT_TIMEOUT_MS',
  },

  // gunicorn's settings that deployments carry over (run plays gunicorn's part): src/server/workers.ts, src/capture/proxy.ts
  /**
   * How long the app may stay silent: to accept the connection, to start its answer, and between two
   * bytes of it (0: no limit). Past it the client gets 504 (or, mid-response, its connection is cut) and
   * the record is flagged upstream_error. GUNICORN_TIMEOUT is in seconds, as gunicorn's.
   */
  upstreamTimeoutMs: {
    doc: 'how long the app may stay silent before 504 / upstream_error (ms; GUNICORN_TIMEOUT in seconds; 0: no limit)',
    schema: z.coerce.number({error: TIMEOUT_FORM}).int(TIMEOUT_FORM).min(0, TIMEOUT_FORM).default(30_000),
    env: 'AUDIT_LOGS_UPSTREAM_TIMEOUT_MS',
    alias: 'GUNICORN_TIMEOUT',
    fromAlias: seconds,
  },
  /** A worker is replaced (gracefully) after this many requests, plus a random 0..maxRequestsJitter (0: never). */
  maxRequests: {
    doc: 'replace a worker gracefully after this many requests (0: never)',
    schema: wholeNumber(0).default(0),
    env: 'AUDIT_LOGS_MAX_REQUESTS',
    alias: 'GUNICORN_MAX_REQUESTS',
  },
  maxRequestsJitter: {
    doc: 'a random 0..N added to maxRequests per worker',
    schema: wholeNumber(0).default(0),
    env: 'AUDIT_LOGS_MAX_REQUESTS_JITTER',
    alias: 'GUNICORN_MAX_REQUESTS_JITTER',
  },
  /** The server's own log: what it shows (gunicorn's levels) and where it goes ('-': stderr, else a file). */
  logLevel: {
    doc: "the server's own log level (debug, info, warning, error, critical)",
    schema: z.enum(LOG_LEVELS, {error: 'one of debug, info, warning, error, critical'}).default('info'),
    env: 'AUDIT_LOGS_LOG_LEVEL',
    alias: 'GUNICORN_LOG_LEVEL',
  },
  errorLog: {
    doc: "where the server's own log goes ('-': stderr, or a file)",
    schema: z.string().min(1, "'-' (stderr) or a file").default('-'),
    env: 'AUDIT_LOGS_ERROR_LOG',
    alias: 'GUNICORN_ERROR_LOG',
  },
  /** A human-readable access line per request, in gunicorn's default format ('-': stdout, else a file; unset: none). */
  accessLog: {
    doc: "a gunicorn-style access line per request ('-': stdout, or a file; unset: none)",
    schema: z.string().min(1, "'-' (stdout) or a file").optional(),
    env: 'AUDIT_LOGS_ACCESS_LOG',
    alias: 'GUNICORN_ACCESS_LOG',
  },
  /** Accepted so a gunicorn deployment's environment starts as it is; the proxy has one kind of worker (a note says so). */
  workerClass: {
    doc: 'accepted for gunicorn deployments and ignored (a note says so)',
    schema: z.string().optional(),
    env: 'AUDIT_LOGS_WORKER_CLASS',
    alias: 'GUNICORN_WORKER_CLASS',
  },
} satisfies Record<string, SettingSpec>

export type SettingKey = keyof typeof settings
export type Config = {[K in SettingKey]: z.output<(typeof settings)[K]['schema']>}
export const settingKeys = Object.keys(settings) as SettingKey[]
