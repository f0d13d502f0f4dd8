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

  // Rotating JSONL files (the seeds' GUNICORN_LOG_DIR, _MAX_BYTES, _BACKUP_COUNT).
  logDir: {{logDir}},
  logMaxBytes: {{logMaxBytes}},
  logBackupCount: {{logBackupCount}},

  // The audit database. Leave databaseUrl out to use the embedded PostgreSQL in dataDir;
  // prefer AUDIT_LOGS_DATABASE_URL in the environment to a password in this file.
  {{databaseLine}}
  {{dbNameLine}}

  // What is recorded.
  maxBodyLength: {{maxBodyLength}},
  saveFullBody: false,
  excludePaths: {{excludePaths}},
  excludeExtensions: {{excludeExtensions}},
  excludeMethods: [],
  sensitiveFields: {{sensitiveFields}},
  sensitiveHeaders: {{sensitiveHeaders}},
  trustedProxies: [], // CIDRs whose X-Forwarded-For is believed, e.g. ['10.0.0.0/8']
  slowMs: 1000,

  // Retention, applied by `audit-logs cleanup`.
  requestRetentionDays: {{requestRetentionDays}},
  accessRetentionDays: {{accessRetentionDays}},
}

// Hooks, as the seeds' USER_ID_CALLABLE, EXTRA_DATA_CALLABLE and MASK_FUNCTION.
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
