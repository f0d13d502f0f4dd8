// audit-logs configuration, read by `audit-logs run` (and every other command).
// Written by `audit-logs scaffold server-config`. Precedence: command-line flags >
// environment (.env too) > this file > defaults. Keys not set here keep their defaults.
export default {
  // Where the capture server listens, and the app it proxies to.
  bind: {{bind}},
  {{upstreamLine}}
  {{commandLine}}
  workers: {{workers}},
  adminBind: {{adminBind}}, // /metrics and /health; keep it on 127.0.0.1

  // gunicorn's settings (the environment takes GUNICORN_TIMEOUT in seconds, GUNICORN_MAX_REQUESTS, _JITTER,
  // GUNICORN_LOG_LEVEL, GUNICORN_ERROR_LOG, GUNICORN_ACCESS_LOG too): how long the app may stay silent before
  // 504 (0: no limit), a worker replaced after maxRequests (+ 0..jitter), the server's log, an access line per request.
  upstreamTimeoutMs: 30000,
  // maxRequests: 1000,
  // maxRequestsJitter: 50,
  // logLevel: 'info', // debug, info, warning, error, critical
  // errorLog: '-', // stderr, or a file
  // accessLog: '-', // stdout, or a file; gunicorn's format, masked

  // Rotating JSONL files: GUNICORN_LOG_DIR, GUNICORN_LOG_MAX_BYTES and GUNICORN_LOG_BACKUP_COUNT
  // of django-gunicorn-audit-logs and django-audit-logger (the environment takes those names too).
  logDir: {{logDir}},
  logMaxBytes: {{logMaxBytes}},
  logBackupCount: {{logBackupCount}},

  // The audit database. Leave databaseUrl out to use the embedded PostgreSQL in dataDir;
  // prefer AUDIT_LOGS_DATABASE_URL in the environment to a password in this file.
  {{databaseLine}}
  {{dbNameLine}}

  // MongoDB, instead of PostgreSQL or beside it (AUDIT_LOGS_USE_MONGO and AUDIT_LOGS_WRITE_TO_BOTH of the
  // Django packages map onto stores). Prefer AUDIT_LOGS_MONGO_URI in the environment to a password in this file.
  {{storesLine}}
  {{mongoUriLine}}
  {{mongoDbNameLine}}
  {{mongoRequestCollectionLine}}
  {{mongoAccessCollectionLine}}

  // What is recorded: MAX_BODY_LENGTH, EXCLUDE_PATHS, EXCLUDE_EXTENSIONS and SENSITIVE_FIELDS of AUDIT_LOGS
  // (django-gunicorn-audit-logs) or AUDIT_LOGGER (django-audit-logger), and AUDIT_LOGS' SAVE_FULL_BODY.
  maxBodyLength: {{maxBodyLength}},
  saveFullBody: false,
  excludePaths: {{excludePaths}},
  excludeExtensions: {{excludeExtensions}},
  excludeMethods: [],
  sensitiveFields: {{sensitiveFields}},
  sensitiveHeaders: {{sensitiveHeaders}},
  trustedProxies: [], // CIDRs whose X-Forwarded-For is believed, e.g. ['10.0.0.0/8']
  slowMs: 1000,

  // Retention, applied by `audit-logs cleanup` (django-gunicorn-audit-logs' `manage.py cleanup_audit_logs --days`).
  requestRetentionDays: {{requestRetentionDays}},
  accessRetentionDays: {{accessRetentionDays}},
  // eventRetentionDays: 365,
  // ... or by run itself: premake partitions and apply retention every maintenanceIntervalMs, one instance
  // per period however many share the database (a PostgreSQL advisory lock): see the README, Maintenance inside run.
  // maintenance: true,
  // maintenanceIntervalMs: 3600000,

  // Application events: POST /_audit/events on the admin listener (`audit-logs scaffold django` writes an app
  // that sends them). Give the token in the environment (AUDIT_LOGS_EVENTS_TOKEN); an app that run spawns gets
  // AUDIT_LOGS_EVENTS_URL and a token made for the run.
  // Login attempts seen by the proxy (LOGIN / LOGIN_FAILED events; repeated failures flagged suspicious:bruteforce):
  // loginRoutes: ['POST /api/token', 'POST /accounts/login/ 302'],
  // The app's outbound calls through a recording proxy (spawn mode sets HTTP_PROXY), and its own output lines:
  // egressBind: '127.0.0.1:9480',
  // captureOutput: true,

  // Tamper evidence (`audit-logs verify`): PostgreSQL's batches are hash-chained per instance; with an Ed25519
  // key (`audit-logs verify keygen --out integrity.pem`) the chain's head is signed every interval, to the
  // database and <logDir>/digests.jsonl. Give the key's path here or in AUDIT_LOGS_INTEGRITY_KEY.
  // integrityKey: '/etc/audit-logs/integrity.pem',
  // integrityDigestIntervalMs: 300000,

  // Alerts (a webhook and/or e-mail) when a sink fails, records are dropped or dead-lettered, the journal fills:
  // one alert at the start, a digest at most every digestMinutes, one at the end. Keep the URLs (a webhook's path
  // is its token, an SMTP URL holds a password) in the environment: AUDIT_LOGS_ALERT_WEBHOOK_URL, AUDIT_LOGS_ALERT_SMTP_URL.
  // alerts: {
  //   webhookFormat: 'json', // or 'slack': {"text": "..."}
  //   emailTo: ['ops@example.com'],
  //   sinkFailedMs: 60000,
  //   journalFillPercent: 80,
  //   digestMinutes: 15,
  // },
}

// Hooks, in place of the Django settings AUDIT_LOGS['USER_ID_CALLABLE'], ['EXTRA_DATA_CALLABLE'] and
// ['MASK_FUNCTION'] of django-gunicorn-audit-logs (AUDIT_LOGGER's USER_ID_CALLABLE and
// EXTRA_DATA_CALLABLE in django-audit-logger).
// req: {method, url, headers}; res: {statusCode, headers}. Uncomment to use.
//
// export function userId(req, res) {
//   return res.headers['x-user-id'] ?? null
// }
//
// export function extra(req, res) {
//   return {tenant: req.headers['x-tenant'] ?? null}
// }
//
// export function mask(record) {
//   if (record.path.startsWith('/payments')) record.request_body = '[removed]'
//   return record
// }
