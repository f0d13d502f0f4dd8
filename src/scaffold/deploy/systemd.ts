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
  shutdownTimeoutMs: number
}

const port = (hostPort: string) => Number(hostPort.slice(hostPort.lastIndexOf(':') + 1))

/**
 * One word of a unit's command line: quoted when it holds a space or quote, and systemd's
 * specifiers (%) and variable expansion ($) escaped, so a path is taken as it is.
 */
export function unitWord(word: string): string {
  const escaped = word.replaceAll('%', '%%').replaceAll('$', '$$$$')
  return /[\s"'\\;]/.test(escaped) ? `"${escaped.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"` : escaped
}

/** A unit value that must be one line: a newline in it would start a directive of its own. */
function oneLine(name: string, value: string): string {
  if (/[\n\r]/.test(value)) throw usageError(`${name} must be one line`)
  return value
}

/** Paths of the unit that ProtectHome=yes hides from the service (/home, /root, /run/user): each one a warning to print. */
export function systemdWarnings(o: SystemdOptions): string[] {
  const hidden = (p: string) => /^\/(home|root|run\/user)(\/|$)/.test(p)
  const wd = o.workingDirectory
  const paths = [o.exec[0] ?? '', ...o.exec.slice(1).filter((w) => path.isAbsolute(w)), wd, o.environmentFile]
  for (const d of [o.dataDir, o.logDir, ...(o.journalDir ? [o.journalDir] : []), ...(o.configFile ? [o.configFile] : [])])
    paths.push(path.resolve(wd, d))
  return [...new Set(paths.filter(hidden))].map(
    (p) =>
      `${p} is under /home, /root or /run/user, which ProtectHome=yes hides from the service: install or move it elsewhere (npm install -g puts audit-logs under /usr/local), or pass --exec`,
  )
}

/**
 * The systemd unit (pure). The hardening is what this program works with: it writes only its data,
 * log and journal directories, listens on TCP and talks to PostgreSQL/MongoDB over TCP or a Unix
 * socket, and runs Node (whose JIT needs memory both written and executed).
 */
export function renderSystemdUnit(o: SystemdOptions): string {
  if (!path.isAbsolute(o.exec[0] ?? ''))
    throw usageError(`--exec must start with an absolute path (systemd runs no shell); got "${o.exec[0] ?? ''}"`)
  if (!path.isAbsolute(o.workingDirectory)) throw usageError(`--working-directory must be an absolute path; got "${o.workingDirectory}"`)
  if (!path.isAbsolute(o.environmentFile)) throw usageError(`--env-file must be an absolute path; got "${o.environmentFile}"`)
  if (!/^[a-z_][a-z0-9_-]{0,31}\$?$/i.test(o.user))
    throw usageError(`--user must be a user name (letters, digits, _ and -); got "${o.user}"`)
  const wd = oneLine('--working-directory', o.workingDirectory)
  const under = (p: string) => path.resolve(wd, p)
  const writable = [...new Set([under(o.dataDir), under(o.logDir), ...(o.journalDir ? [under(o.journalDir)] : [])])]
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
${state ? `# makes ${wd} and gives it to ${o.user}: the relative data, log and journal directories live there\nStateDirectory=${state}\nStateDirectoryMode=0750\n` : ''}EnvironmentFile=${unitWord(oneLine('--env-file', o.environmentFile))}
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
