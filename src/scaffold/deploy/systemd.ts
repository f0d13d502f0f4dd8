import path from 'node:path'
import {usageError} from '../../errors.js'

export type SystemdOptions = {
  /** ExecStart's program and its arguments before `run` (an absolute path first) */
  exec: string[]
  user: string
  workingDirectory: string
  environmentFile: string
  configFile?: string
  /** the resolved settings the unit depends on */
  bind: string
  adminBind: string
  uiBind?: string
  dataDir: string
  logDir: string
  journalDir?: string
  /** the server's own log and the access log: a file is written ('-' or unset: stderr/stdout) */
  errorLog?: string
  accessLog?: string
  /** files the service only reads, by the setting that names them (integrityKey when a path, the viewer's TLS files) */
  readFiles?: Record<string, string>
  shutdownTimeoutMs: number
}

/** How the unit's error messages name a setting of the configuration: its key and its variable. */
const SETTING_NAMES: Record<string, string> = {
  dataDir: 'dataDir (AUDIT_LOGS_DATA_DIR)',
  logDir: 'logDir (AUDIT_LOGS_LOG_DIR)',
  journalDir: 'journalDir (AUDIT_LOGS_JOURNAL_DIR)',
  errorLog: 'errorLog (AUDIT_LOGS_ERROR_LOG, GUNICORN_ERROR_LOG)',
  accessLog: 'accessLog (AUDIT_LOGS_ACCESS_LOG, GUNICORN_ACCESS_LOG)',
}

/** A log setting that names a file ('-' is stdout or stderr). */
const logFile = (value: string | undefined) => (value && value !== '-' ? value : undefined)

/**
 * Paths ReadWritePaths must not list: /dev, /proc and /sys stay as they are under ProtectSystem=strict
 * (e.g. errorLog /dev/stderr), and /tmp and /var/tmp are the service's own, empty and writable, with
 * PrivateTmp (a directory there would not exist at start; a warning says so).
 */
const notListed = (p: string) => /^\/(dev|proc|sys|tmp|var\/tmp)(\/|$)/.test(p)

const port = (hostPort: string) => Number(hostPort.slice(hostPort.lastIndexOf(':') + 1))

/**
 * One word of a unit's command line: quoted when it holds a space or quote, and systemd's
 * specifiers (%) and variable expansion ($) escaped, so a path is taken as it is.
 */
export function unitWord(word: string): string {
  const escaped = word.replaceAll('%', '%%').replaceAll('$', '$$$$')
  return /[\s"'\\;]/.test(escaped) ? `"${escaped.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"` : escaped
}

/**
 * A path or word written into the unit: refused when it holds a control character, as a newline would
 * start a directive of its own (ExecStartPre=...) and the others have no place in a path.
 */
function printable(name: string, value: string): string {
  const m = /\p{Cc}/u.exec(value)
  if (m) {
    const code = `U+${m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`
    throw usageError(
      `${name} holds a control character (${m[0] === '\n' ? 'a newline, ' : ''}${code}) at position ${m.index + 1}: ` +
        'a path or word written into the unit must be printable characters on one line',
    )
  }
  return value
}

/** Every path and word of the options the unit or its comments hold, each refused when it is not printable. */
function checkPrintable(o: SystemdOptions): void {
  for (const w of o.exec) printable('--exec', w)
  printable('--working-directory', o.workingDirectory)
  printable('--environment-file', o.environmentFile)
  if (o.configFile !== undefined) printable('--config', o.configFile)
  for (const key of ['dataDir', 'logDir', 'journalDir', 'errorLog', 'accessLog'] as const) {
    const value = o[key]
    if (value !== undefined) printable(SETTING_NAMES[key], value)
  }
  for (const [name, file] of Object.entries(o.readFiles ?? {})) printable(name, file)
}

/** The files written besides the data, log and journal directories (errorLog, accessLog), resolved. */
function writtenFiles(o: SystemdOptions): string[] {
  return [logFile(o.errorLog), logFile(o.accessLog)].filter((f) => f !== undefined).map((f) => path.resolve(o.workingDirectory, f))
}

/**
 * Paths of the unit the service does not see as they are: under /home, /root or /run/user, which
 * ProtectHome=yes hides, or /tmp and /var/tmp, which PrivateTmp=yes replaces by its own. Each one a
 * warning to print.
 */
export function systemdWarnings(o: SystemdOptions): string[] {
  const hidden = (p: string) => /^\/(home|root|run\/user)(\/|$)/.test(p)
  const privateTmp = (p: string) => /^\/(var\/)?tmp(\/|$)/.test(p)
  const wd = o.workingDirectory
  const paths = [o.exec[0] ?? '', ...o.exec.slice(1).filter((w) => path.isAbsolute(w)), wd, o.environmentFile]
  for (const d of [o.dataDir, o.logDir, ...(o.journalDir ? [o.journalDir] : []), ...(o.configFile ? [o.configFile] : [])])
    paths.push(path.resolve(wd, d))
  paths.push(...writtenFiles(o), ...Object.values(o.readFiles ?? {}).map((f) => path.resolve(wd, f)))
  const unique = [...new Set(paths)]
  return [
    ...unique
      .filter(hidden)
      .map(
        (p) =>
          `${p} is under /home, /root or /run/user, which ProtectHome=yes hides from the service: install or move it elsewhere (npm install -g puts audit-logs under /usr/local), or pass --exec`,
      ),
    ...unique
      .filter(privateTmp)
      .map(
        (p) =>
          `${p} is under /tmp or /var/tmp, which PrivateTmp=yes gives the service empty and of its own: a file read there is not found, one written there is removed when the service stops; move it elsewhere`,
      ),
  ]
}

/**
 * The systemd unit (pure). The hardening is what this program works with: it writes only its data,
 * log and journal directories (digests.jsonl is in logDir) and the errorLog and accessLog files,
 * listens on TCP and talks to PostgreSQL/MongoDB over TCP or a Unix socket, and runs Node (whose JIT
 * needs memory both written and executed). Files it only reads (integrityKey, TLS) need no directive:
 * ProtectSystem=strict leaves every path readable but those ProtectHome and PrivateTmp hide (warned of).
 */
export function renderSystemdUnit(o: SystemdOptions): string {
  checkPrintable(o)
  if (!path.isAbsolute(o.exec[0] ?? ''))
    throw usageError(`--exec must start with an absolute path (systemd runs no shell); got "${o.exec[0] ?? ''}"`)
  if (!path.isAbsolute(o.workingDirectory)) throw usageError(`--working-directory must be an absolute path; got "${o.workingDirectory}"`)
  if (!path.isAbsolute(o.environmentFile)) throw usageError(`--environment-file must be an absolute path; got "${o.environmentFile}"`)
  if (!/^[a-z_][a-z0-9_-]{0,31}\$?$/i.test(o.user))
    throw usageError(`--user must be a user name (letters, digits, _ and -); got "${o.user}"`)
  const wd = o.workingDirectory
  const under = (p: string) => path.resolve(wd, p)
  // the directories written, and those of the log files (a file's directory: logrotate makes a new file in it)
  const logDirs = writtenFiles(o).map((f) => path.dirname(f))
  const writable = [...new Set([under(o.dataDir), under(o.logDir), ...(o.journalDir ? [under(o.journalDir)] : []), ...logDirs])].filter(
    (d) => !notListed(d),
  )
  // /var/lib/NAME is made and handed to the user by StateDirectory; directories elsewhere must exist
  const state = path.dirname(wd) === '/var/lib' ? path.basename(wd) : undefined
  const outside = writable.filter((d) => !(d === wd || d.startsWith(wd + '/')) || !state)
  const privileged = [o.bind, o.adminBind, ...(o.uiBind ? [o.uiBind] : [])].some((b) => port(b) < 1024)
  const args = ['run', ...(o.configFile ? ['--config', under(o.configFile)] : [])]
  // the shutdown's own bound, then the embedded PostgreSQL's stop and the last flush
  const stopSeconds = Math.ceil(o.shutdownTimeoutMs / 1000) + 30

  return `# audit-logs: the capture server as a systemd service (written by \`audit-logs scaffold systemd\`).
# Install: useradd --system --home ${wd} ${o.user}; copy this file to /etc/systemd/system/audit-logs.service;
# put the settings (\`audit-logs scaffold env\`) in ${o.environmentFile} (mode 0640, root:${o.user});
# then: systemctl daemon-reload && systemctl enable --now audit-logs
[Unit]
Description=audit-logs capture proxy (HTTP audit logging)
Documentation=https://www.npmjs.com/package/audit-logs
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=${o.user}
Group=${o.user}
WorkingDirectory=${unitWord(wd)}
${state ? `# makes ${wd} and gives it to ${o.user}: the relative data, log and journal directories live there\nStateDirectory=${state}\nStateDirectoryMode=0750\n` : ''}EnvironmentFile=${unitWord(o.environmentFile)}
ExecStart=${o.exec.map(unitWord).join(' ')} ${args.map(unitWord).join(' ')}
# SIGHUP reopens the JSONL files (after an external logrotate)
ExecReload=/bin/kill -HUP $MAINPID

# graceful stop: SIGTERM to run only; it drains requests (shutdownTimeoutMs: ${o.shutdownTimeoutMs} ms), stops the
# app it spawned and the embedded PostgreSQL, and flushes the journal; what is left gets SIGKILL after ${stopSeconds} s
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec=${stopSeconds}
Restart=on-failure
RestartSec=2
LimitNOFILE=65536
UMask=0027

# hardening
NoNewPrivileges=yes
ProtectSystem=strict
${outside.length ? `# written to: must exist and belong to ${o.user}\nReadWritePaths=${outside.map(unitWord).join(' ')}\n` : ''}ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
# MemoryDenyWriteExecute is left off: V8's JIT maps memory writable and executable, and Node aborts under it
${
  privileged
    ? '# a port below 1024 is bound: only that capability\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\nAmbientCapabilities=CAP_NET_BIND_SERVICE'
    : '# no capabilities: every port bound is 1024 or above\nCapabilityBoundingSet=\nAmbientCapabilities='
}

[Install]
WantedBy=multi-user.target
`
}
