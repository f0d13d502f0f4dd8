import {execFileSync, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import dotenv from 'dotenv'
import pg from 'pg'
import {parse as parseYaml} from 'yaml'
import {resolveConfig} from '../../src/config/resolve.js'
import {type SettingSpec, settingKeys, settings} from '../../src/config/schema.js'
import {LOG_TYPE, LOG_TYPES, type LogType} from '../../src/stores/log-types.js'
import {clientConfig, withDatabase} from '../../src/stores/postgres/connection.js'
import {freePort} from '../../src/util/process.js'
import {BIN, runCli} from '../helpers/cli.js'
import {type TestDatabase, count, dropDatabase, dropRoles, freshDatabase, serverUrl} from '../helpers/db.js'
import {jsonlLines} from '../helpers/jsonl.js'
import {type RunningServer, request, startRun, until} from '../helpers/run-server.js'
import {skipUnless} from '../helpers/skip.js'
import {type Upstream, startUpstream} from '../helpers/upstream.js'

const tmp = (name: string) => mkdtempSync(path.join(os.tmpdir(), `audit-logs-${name}-`))

/** The env of a scaffold run: none of this machine's settings, so the defaults are what is written. */
const clean = {AUDIT_LOGS_DATA_DIR: undefined, AUDIT_LOGS_LOG_DIR: undefined, AUDIT_LOGS_BIND: undefined}

/** A unit file's directives, in order ([Section] headers as section), comments left out. */
function unitDirectives(text: string): Array<{section: string; key: string; value: string}> {
  let section = ''
  const out: Array<{section: string; key: string; value: string}> = []
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue
    const header = /^\[(\w+)\]$/.exec(line)
    if (header) section = header[1]
    else {
      const m = /^([A-Za-z]+)=(.*)$/.exec(line)
      if (!m) throw new Error(`not a directive: ${line}`)
      out.push({section, key: m[1], value: m[2]})
    }
  }
  return out
}

/** CREATE TABLE blocks of a ClickHouse DDL: table name, columns with types, and the clauses after. */
function ddlTables(sql: string) {
  const tables = new Map<string, {columns: Map<string, string>; tail: string}>()
  for (const m of sql.matchAll(/CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)\s*\(([^;]*?)\n\)\n([^;]*);/g)) {
    const columns = new Map<string, string>()
    for (const line of m[3].split(',\n')) {
      const c = /^\s*(\w+)\s+(.+?)\s*$/.exec(line)
      if (!c) throw new Error(`not a column: ${line}`)
      columns.set(c[1], c[2])
    }
    tables.set(m[2], {columns, tail: m[4]})
  }
  return tables
}

/** Whether a JSON value (after Vector's remap) goes into a ClickHouse column of `type` as JSONEachRow. */
function fits(value: unknown, type: string): boolean {
  const nullable = /Nullable\(/.test(type)
  const base = type.replace(/^LowCardinality\((.*)\)$/, '$1').replace(/^Nullable\((.*)\)$/, '$1')
  if (value === null) return nullable
  if (base === 'UUID') return typeof value === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value)
  if (base.startsWith('DateTime64')) return typeof value === 'string' && !Number.isNaN(Date.parse(value))
  if (base === 'String') return typeof value === 'string'
  if (base === 'Int32' || base === 'Int64') return Number.isInteger(value)
  if (base === 'Float64') return typeof value === 'number'
  if (base === 'Bool') return typeof value === 'boolean'
  if (base === 'Array(String)') return Array.isArray(value) && value.every((v) => typeof v === 'string')
  throw new Error(`no check for the type ${type}`)
}

/** A glob of Vector's include (only `*`) as a regex over a whole path. */
const globRegex = (glob: string) =>
  new RegExp(
    `^${glob
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('[^/]*')}$`,
  )

/**
 * Grafana's PostgreSQL macros, expanded as Grafana expands them for a one-hour range and a one-minute
 * interval; anything else left with a $ fails the test (a macro the dashboard uses and this does not know).
 */
function expandMacros(sql: string, from: Date, to: Date): string {
  const f = `'${from.toISOString()}'`
  const t = `'${to.toISOString()}'`
  const out = sql
    .replace(/\$__timeFilter\((\w+)\)/g, `$1 BETWEEN ${f} AND ${t}`)
    .replace(/\$__timeGroupAlias\((\w+),\s*\$__interval\)/g, 'floor(extract(epoch from $1)/60)*60 AS "time"')
    .replace(/\$__timeGroup\((\w+),\s*\$__interval\)/g, 'floor(extract(epoch from $1)/60)*60')
    .replace(/\$__timeFrom\(\)/g, f)
    .replace(/\$__timeTo\(\)/g, t)
    .replace(/\$__interval_ms/g, '60000')
  expect(out, 'a macro left unexpanded').not.to.match(/\$/)
  return out
}

describe('scaffold env', function () {
  this.timeout(60_000)

  it('every setting has a doc string: its meaning in .env.example (add `doc` to a new setting)', () => {
    const missing = settingKeys.filter((k) => !(settings[k] as SettingSpec).doc?.trim())
    expect(missing, `settings without a doc in src/config/schema.ts`).to.deep.equal([])
  })

  it('writes every variable with its default and meaning, commented out; uncommented it changes nothing; secrets empty; refuses to overwrite', async () => {
    const dir = tmp('env')
    const file = path.join(dir, '.env.example')
    // a secret in this process's environment must not reach the file
    const r = await runCli(['scaffold', 'env', '--out', file, '--json'], {
      env: {...clean, AUDIT_LOGS_DATABASE_URL: 'postgres://u:leak-me-123@db:5432/x', AUDIT_LOGS_EVENTS_TOKEN: 'token-leak-me-0123456789'},
    })
    expect(r.exitCode, r.stderr).to.equal(0)
    expect(r.json().files).to.deep.equal([file])
    const text = readFileSync(file, 'utf8')
    expect(text).not.to.contain('leak-me')
    // nothing is set as written (the environment would override the config file); uncommented, every line parses
    expect(dotenv.parse(text)).to.deep.equal({})
    const parsed = dotenv.parse(text.replace(/^# ([A-Z][A-Z0-9_]+=)/gm, '$1'))

    for (const key of settingKeys) {
      const spec = settings[key] as SettingSpec
      if (!spec.env) continue
      expect(parsed, spec.env).to.have.property(spec.env)
      const block = text.slice(0, text.indexOf(`\n# ${spec.env}=`))
      const comment = block.slice(block.lastIndexOf('\n\n'))
      expect(comment, spec.env).to.contain(spec.doc!).and.contain(`setting ${key}`)
      if (spec.secret) expect(parsed[spec.env], spec.env).to.equal('')
      if (spec.alias) expect(comment, spec.env).to.contain(`also read as ${spec.alias}`)
    }
    const names = settingKeys.map((k) => (settings[k] as SettingSpec).env).filter(Boolean)
    expect(Object.keys(parsed).sort()).to.deep.equal(names.sort())
    expect(parsed.AUDIT_LOGS_BIND).to.equal('0.0.0.0:8000')
    expect(parsed.AUDIT_LOGS_LOG_MAX_BYTES).to.equal('10485760')
    expect(parsed.AUDIT_LOGS_SENSITIVE_HEADERS).to.equal('authorization,proxy-authorization,cookie,set-cookie,x-api-key')
    expect(text).to.contain('also read as GUNICORN_WORKERS')
    expect(parsed).not.to.have.property('') // the spawned command has no env name: not listed

    // its values are the defaults: uncommented, as the environment, it resolves to what no environment does
    const asEnv = await resolveConfig({env: parsed, noConfigFile: true, cwd: dir})
    const none = await resolveConfig({env: {}, noConfigFile: true, cwd: dir})
    expect(asEnv).to.deep.equal(none)

    const again = await runCli(['scaffold', 'env', '--out', file])
    expect(again.exitCode).to.equal(2)
    expect(again.stderr).to.contain('already exists').and.contain('--force')
    writeFileSync(file, 'old')
    expect((await runCli(['scaffold', 'env', '--out', file, '--force'])).exitCode).to.equal(0)
    expect(readFileSync(file, 'utf8')).to.equal(text)
    const printed = await runCli(['scaffold', 'env', '--stdout'], {cwd: dir})
    expect(printed.exitCode).to.equal(0)
    expect(printed.stdout + '\n').to.equal(text) // execa trims the last newline
  })
})

describe('scaffold systemd', function () {
  this.timeout(60_000)

  it('a unit with the hardening that applies, graceful stop above shutdownTimeoutMs, the directories writable, no capabilities unless a port < 1024', async () => {
    const dir = tmp('systemd')
    const file = path.join(dir, 'audit-logs.service')
    const r = await runCli(['scaffold', 'systemd', '--out', file], {
      env: {...clean, AUDIT_LOGS_SHUTDOWN_TIMEOUT_MS: '25000', AUDIT_LOGS_LOG_DIR: '/srv/audit/logs'},
    })
    expect(r.exitCode, r.stderr).to.equal(0)
    const text = readFileSync(file, 'utf8')
    const d = unitDirectives(text)
    const get = (key: string) => d.filter((x) => x.key === key).map((x) => x.value)
    const one = (key: string) => {
      expect(get(key), key).to.have.length(1)
      return get(key)[0]
    }
    expect(d.find((x) => x.key === 'ExecStart')?.section).to.equal('Service')
    expect(one('ExecStart')).to.equal(`${process.execPath} ${BIN} run`)
    for (const [k, v] of Object.entries({
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectKernelLogs: 'yes',
      ProtectControlGroups: 'yes',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
      LockPersonality: 'yes',
      SystemCallArchitectures: 'native',
      CapabilityBoundingSet: '',
      KillSignal: 'SIGTERM',
      Restart: 'on-failure',
      EnvironmentFile: '/etc/audit-logs/audit-logs.env',
      WorkingDirectory: '/var/lib/audit-logs',
      StateDirectory: 'audit-logs',
    }))
      expect(one(k), k).to.equal(v)
    // V8's JIT needs writable and executable memory: off, and the unit says why
    expect(get('MemoryDenyWriteExecute')).to.deep.equal([])
    expect(text).to.match(/# MemoryDenyWriteExecute is left off: V8's JIT/)
    expect(Number(one('TimeoutStopSec'))).to.be.greaterThan(25)
    // the log directory outside the working directory is writable; the relative data dir is under StateDirectory
    expect(one('ReadWritePaths')).to.equal('/srv/audit/logs')

    // a port below 1024: that capability and no other
    const low = await runCli(['scaffold', 'systemd', '--stdout'], {env: {...clean, AUDIT_LOGS_BIND: '0.0.0.0:80'}})
    expect(low.exitCode, low.stderr).to.equal(0)
    const lowD = unitDirectives(low.stdout)
    expect(lowD.find((x) => x.key === 'CapabilityBoundingSet')?.value).to.equal('CAP_NET_BIND_SERVICE')
    expect(lowD.find((x) => x.key === 'AmbientCapabilities')?.value).to.equal('CAP_NET_BIND_SERVICE')

    // a program under /home is hidden by ProtectHome: said, and the unit still written
    const home = await runCli(['scaffold', 'systemd', '--stdout', '--exec', '/home/ops/.npm-global/bin/audit-logs'], {env: clean})
    expect(home.exitCode).to.equal(0)
    expect(home.stderr).to.contain('/home/ops/.npm-global/bin/audit-logs is under /home').and.contain('ProtectHome=yes hides')
    expect(home.stdout).to.contain('ExecStart=/home/ops/.npm-global/bin/audit-logs run')
    const bad = await runCli(['scaffold', 'systemd', '--stdout', '--exec', 'audit-logs'])
    expect(bad.exitCode).to.equal(2)
    expect(bad.stderr).to.contain('--exec must start with an absolute path')
    const badUser = await runCli(['scaffold', 'systemd', '--stdout', '--user', 'root\nExecStartPre=/bin/sh'])
    expect(badUser.exitCode).to.equal(2)
    expect(badUser.stderr).to.contain('--user must be a user name')
    expect((await runCli(['scaffold', 'systemd', '--out', file])).exitCode).to.equal(2)
  })

  it('the directories of errorLog and accessLog files are writable; read files hidden by ProtectHome or PrivateTmp are warned of; systemd-analyze verify accepts it', async function () {
    const dir = tmp('systemd')
    const file = path.join(dir, 'audit-logs.service')
    const pem = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIpem-secret-0123456789\n-----END PRIVATE KEY-----\n'
    const r = await runCli(['scaffold', 'systemd', '--out', file], {
      env: {
        ...clean,
        GUNICORN_ERROR_LOG: '/var/log/audit-logs/error.log',
        GUNICORN_ACCESS_LOG: '/srv/access/access.log',
        AUDIT_LOGS_INTEGRITY_KEY: pem,
      },
    })
    expect(r.exitCode, r.stderr).to.equal(0)
    expect(r.stdout + r.stderr).not.to.contain('pem-secret') // PEM text is no path: neither checked nor shown
    const text = readFileSync(file, 'utf8')
    const rw = unitDirectives(text).filter((x) => x.key === 'ReadWritePaths')
    expect(rw.map((x) => x.value)).to.deep.equal(['/var/log/audit-logs /srv/access'])
    expect(text).not.to.contain('pem-secret')

    // '-' is stderr/stdout, a file under the working directory is in StateDirectory, /dev/stderr is writable as it is
    for (const [errorLog, accessLog] of [
      ['-', '-'],
      ['server.log', 'logs/access.log'],
      ['/dev/stderr', '-'],
    ]) {
      const u = await runCli(['scaffold', 'systemd', '--stdout'], {
        env: {...clean, AUDIT_LOGS_ERROR_LOG: errorLog, AUDIT_LOGS_ACCESS_LOG: accessLog},
      })
      expect(u.exitCode, u.stderr).to.equal(0)
      expect(
        unitDirectives(u.stdout).filter((x) => x.key === 'ReadWritePaths'),
        `${errorLog} ${accessLog}`,
      ).to.deep.equal([])
    }
    // outside StateDirectory (another working directory), a relative file's directory is listed too
    const srv = await runCli(['scaffold', 'systemd', '--stdout', '--working-directory', '/srv/audit'], {
      env: {...clean, AUDIT_LOGS_ERROR_LOG: 'server/error.log'},
    })
    expect(srv.exitCode, srv.stderr).to.equal(0)
    expect(unitDirectives(srv.stdout).find((x) => x.key === 'ReadWritePaths')?.value).to.equal(
      '/srv/audit/.audit-logs /srv/audit/logs /srv/audit/server',
    )

    // a key file ProtectHome hides, a log PrivateTmp makes the service's own: warned of, the unit still written
    const hidden = await runCli(['scaffold', 'systemd', '--stdout'], {
      env: {...clean, AUDIT_LOGS_INTEGRITY_KEY: '/home/ops/integrity.pem', AUDIT_LOGS_ERROR_LOG: '/tmp/audit/error.log'},
    })
    expect(hidden.exitCode, hidden.stderr).to.equal(0)
    expect(hidden.stderr).to.contain('/home/ops/integrity.pem is under /home').and.contain('ProtectHome=yes hides')
    expect(hidden.stderr).to.contain('/tmp/audit/error.log is under /tmp or /var/tmp').and.contain('PrivateTmp=yes')
    // the service's own /tmp is writable and empty at start: not listed (a directory there would not exist)
    expect(unitDirectives(hidden.stdout).filter((x) => x.key === 'ReadWritePaths')).to.deep.equal([])

    const analyze = '/usr/bin/systemd-analyze'
    skipUnless(this, existsSync(analyze), `${analyze} is not installed`, {expectedInCi: false})
    const v = spawnSync(analyze, ['verify', file], {encoding: 'utf8'})
    const about = (v.stderr + v.stdout).split('\n').filter((l) => l.includes(path.basename(file)))
    expect(about, about.join('\n')).to.deep.equal([])
    expect(v.status).to.equal(0)
  })

  it('a control character in a path or word of the unit is refused, naming the setting or flag, and nothing is written', async () => {
    const dir = tmp('systemd')
    const file = path.join(dir, 'audit-logs.service')
    const inject = '\nExecStartPre=/bin/sh -c id'
    const config = path.join(dir, 'audit\nExecStartPre=sh.json') // a file that exists: the name alone is refused
    writeFileSync(config, '{}')
    const cases: Array<{args?: string[]; env?: Record<string, string>; named: string}> = [
      {
        env: {AUDIT_LOGS_JOURNAL_DIR: `/srv/journal${inject}`},
        named: 'journalDir (AUDIT_LOGS_JOURNAL_DIR) holds a control character (a newline, U+000A)',
      },
      {env: {AUDIT_LOGS_LOG_DIR: `/srv/logs${inject}`}, named: 'logDir (AUDIT_LOGS_LOG_DIR) holds a control character'},
      {env: {AUDIT_LOGS_DATA_DIR: `/srv/data\r`}, named: 'dataDir (AUDIT_LOGS_DATA_DIR) holds a control character (U+000D)'},
      {env: {GUNICORN_ERROR_LOG: `/var/log/a${inject}/error.log`}, named: 'errorLog (AUDIT_LOGS_ERROR_LOG, GUNICORN_ERROR_LOG) holds'},
      {
        env: {AUDIT_LOGS_ACCESS_LOG: `/var/log/\u001b[31m/access.log`},
        named: 'accessLog (AUDIT_LOGS_ACCESS_LOG, GUNICORN_ACCESS_LOG) holds a control character (U+001B)',
      },
      {env: {AUDIT_LOGS_INTEGRITY_KEY: `/etc/audit-logs/key.pem${inject}`}, named: 'integrityKey (AUDIT_LOGS_INTEGRITY_KEY) holds'},
      {args: ['--config', config], named: '--config holds a control character (a newline, U+000A)'},
      {args: ['--exec', `/usr/bin/node${inject}`], named: '--exec holds a control character (a newline, U+000A)'},
      {args: ['--exec', `/usr/bin/node\t/opt/audit-logs/bin/run.js`], named: '--exec holds a control character (U+0009)'},
      {args: ['--working-directory', `/srv/audit${inject}`], named: '--working-directory holds a control character'},
      {args: ['--environment-file', `/etc/audit-logs/x.env${inject}`], named: '--environment-file holds a control character'},
    ]
    for (const c of cases) {
      const r = await runCli(['scaffold', 'systemd', '--out', file, ...(c.args ?? [])], {env: {...clean, ...c.env}})
      expect(r.exitCode, `${c.named}: ${r.stderr}`).to.equal(2)
      expect(r.stderr, c.named).to.contain(c.named).and.contain('must be printable characters on one line')
      expect(existsSync(file), c.named).to.equal(false)
    }
    // the same settings without the control character: written
    expect(
      (await runCli(['scaffold', 'systemd', '--out', file], {env: {...clean, AUDIT_LOGS_JOURNAL_DIR: '/srv/journal'}})).exitCode,
    ).to.equal(0)
    // the environment file's flag reaches the unit (it is not --env-file, which Node 20 takes for its own option)
    const unit = await runCli(['scaffold', 'systemd', '--stdout', '--environment-file', '/etc/audit-logs/x.env'], {env: clean})
    expect(unit.exitCode, unit.stderr).to.equal(0)
    expect(unit.stdout).to.match(/^EnvironmentFile=-?\/etc\/audit-logs\/x\.env$/m)
  })

  it('systemd-analyze verify accepts the unit, and reports a broken one', async function () {
    const dir = tmp('systemd')
    const file = path.join(dir, 'audit-logs.service')
    expect((await runCli(['scaffold', 'systemd', '--out', file], {env: clean})).exitCode).to.equal(0)
    const text = readFileSync(file, 'utf8')
    const analyze = '/usr/bin/systemd-analyze'
    skipUnless(this, existsSync(analyze), `${analyze} is not installed`, {expectedInCi: false})
    // what verify says of this unit (it also speaks of the host's other units, which are not ours)
    const verify = (unit: string) => {
      const v = spawnSync(analyze, ['verify', unit], {encoding: 'utf8'})
      return {status: v.status, about: (v.stderr + v.stdout).split('\n').filter((l) => l.includes(path.basename(unit)))}
    }
    const ok = verify(file)
    expect(ok.about, ok.about.join('\n')).to.deep.equal([])
    expect(ok.status).to.equal(0)
    // the check can fail: a misspelt directive is reported
    const broken = path.join(dir, 'broken.service')
    writeFileSync(broken, text.replace('LockPersonality=yes', 'LockPersonalty=yes'))
    expect(verify(broken).about.join('\n')).to.contain('LockPersonalty')
  })
})

describe('scaffold docker', function () {
  this.timeout(60_000)

  it('a Dockerfile (node:20-slim, production dependencies, a user without privileges) and a compose file: app, run in front, PostgreSQL, setup-db first', async () => {
    const dir = tmp('docker')
    const r = await runCli([
      'scaffold',
      'docker',
      '--dir',
      dir,
      '--app-image',
      'registry.example.com/shop:1.4',
      '--app-port',
      '5000',
      '--json',
    ])
    expect(r.exitCode, r.stderr).to.equal(0)
    expect(r.json().files.map((f: string) => path.basename(f))).to.deep.equal(['Dockerfile', 'compose.yaml', 'Dockerfile.dockerignore'])

    const dockerfile = readFileSync(path.join(dir, 'Dockerfile'), 'utf8')
    const froms = dockerfile.match(/^FROM .*/gm)!
    expect(froms.every((f) => f.startsWith('FROM node:20-slim'))).to.equal(true)
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
    expect(runtime).to.match(/^RUN npm ci --omit=dev/m)
    const user = /^USER (\S+)$/m.exec(runtime)
    expect(user?.[1])
      .to.be.a('string')
      .and.not.match(/^(root|0)$/)
    expect(runtime).to.match(/^ENTRYPOINT \["audit-logs"\]$/m)

    // read as YAML 1.1 (PyYAML, docker-compose v1) reads it: there an unquoted `no` is false, not the restart policy
    const compose = parseYaml(readFileSync(path.join(dir, 'compose.yaml'), 'utf8'), {version: '1.1'})
    const s = compose.services
    expect(Object.keys(s).sort()).to.deep.equal(['app', 'audit', 'postgres', 'setup-db'])
    expect(s.app.image).to.equal('registry.example.com/shop:1.4')
    expect(s.app.ports, 'the app is reached only through audit').to.equal(undefined)
    expect(s.audit.environment.AUDIT_LOGS_UPSTREAM).to.equal('http://app:5000')
    expect(s.audit.ports).to.deep.equal(['8000:8000'])
    // the postgres service, never the embedded PostgreSQL: a database URL on the service's host
    expect(new URL(s.audit.environment.AUDIT_LOGS_DATABASE_URL.replace('${AUDIT_LOGS_OWNER_PASSWORD}', 'x')).host).to.equal('postgres:5432')
    expect(s.audit.depends_on).to.deep.equal({
      app: {condition: 'service_started'},
      postgres: {condition: 'service_healthy'},
      'setup-db': {condition: 'service_completed_successfully'},
    })
    expect(s['setup-db'].command.slice(0, 1)).to.deep.equal(['setup-db'])
    expect(s['setup-db'].restart).to.equal('no')
    expect(s.postgres.healthcheck.test).to.deep.equal(['CMD-SHELL', 'pg_isready -U postgres -d postgres'])
    expect(s.postgres.volumes).to.deep.equal(['postgres-data:/var/lib/postgresql/data'])
    // every named volume a service mounts is declared
    for (const svc of Object.values<any>(s)) for (const v of svc.volumes ?? []) expect(compose.volumes, v).to.have.property(v.split(':')[0])
    // no password in the file: each comes from .env
    for (const svc of Object.values<any>(s))
      for (const [k, v] of Object.entries<string>(svc.environment ?? {}))
        if (/PASSWORD$/.test(k)) expect(v, k).to.match(/^\$\{\w+[:?}]/)
        else if (/_URL$/.test(k)) expect(v, k).to.match(/^postgres:\/\/\w+:\$\{\w+[^}]*\}@/)
    // the build: a context holding the audit-logs source, and the Dockerfile written here (relative to it)
    const context = path.resolve(dir, s.audit.build.context)
    expect(existsSync(path.join(context, 'package-lock.json'))).to.equal(true)
    expect(path.resolve(context, s.audit.build.dockerfile)).to.equal(path.join(dir, 'Dockerfile'))
    // what the Dockerfile copies from the context is there (dist and the manifest come from its build stage)
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm))
      for (const source of m[1].split(' '))
        if (source !== '.') expect(existsSync(path.join(context, source)), `COPY ${source}`).to.equal(true)
    expect(JSON.parse(readFileSync(path.join(context, 'package.json'), 'utf8')).scripts.build).to.contain('oclif manifest')

    // refused before anything is written when one file exists; --force replaces
    const other = tmp('docker')
    writeFileSync(path.join(other, 'compose.yaml'), 'mine')
    const refused = await runCli(['scaffold', 'docker', '--dir', other])
    expect(refused.exitCode).to.equal(2)
    expect(refused.stderr).to.contain('compose.yaml already exists')
    expect(existsSync(path.join(other, 'Dockerfile'))).to.equal(false)
    expect(readFileSync(path.join(other, 'compose.yaml'), 'utf8')).to.equal('mine')
    expect((await runCli(['scaffold', 'docker', '--dir', other, '--force'])).exitCode).to.equal(0)
    const badImage = await runCli(['scaffold', 'docker', '--dir', tmp('docker'), '--app-image', 'x; rm -rf /'])
    expect(badImage.exitCode).to.equal(2)
    expect(badImage.stderr).to.contain('--app-image must be an image reference')
  })

  it('docker compose config accepts the compose file', async function () {
    const compose = spawnSync('docker', ['compose', 'version'], {encoding: 'utf8'})
    skipUnless(this, compose.status === 0, 'docker compose is not available here (the compose file is checked by parsing only)', {
      expectedInCi: false,
    })
    const dir = tmp('docker')
    expect((await runCli(['scaffold', 'docker', '--dir', dir])).exitCode).to.equal(0)
    writeFileSync(
      path.join(dir, '.env'),
      'POSTGRES_PASSWORD=a\nAUDIT_LOGS_OWNER_PASSWORD=b\nAUDIT_LOGS_WRITER_PASSWORD=c\nAUDIT_LOGS_READER_PASSWORD=d\n',
    )
    execFileSync('docker', ['compose', '-f', path.join(dir, 'compose.yaml'), 'config', '--quiet'])
  })
})

describe("scaffold docker: the compose file's commands and environment, against a real PostgreSQL server", function () {
  this.timeout(180_000)
  const db = `t_compose_${randomBytes(4).toString('hex')}`
  after(async () => {
    await dropDatabase(db)
    await dropRoles(`${db}_`)
  })

  it("setup-db with the setup-db service's environment makes the database; run with the audit service's stores records in it", async () => {
    const dir = tmp('docker-real')
    const r = await runCli(['scaffold', 'docker', '--dir', dir, '--db-name', db])
    expect(r.exitCode, r.stderr).to.equal(0)
    const s = parseYaml(readFileSync(path.join(dir, 'compose.yaml'), 'utf8')).services
    // compose's interpolation of .env, and the postgres service's host as this test's server
    const server = new URL(serverUrl())
    const vars: Record<string, string> = {
      POSTGRES_PASSWORD: server.password,
      AUDIT_LOGS_OWNER_PASSWORD: randomBytes(12).toString('hex'),
      AUDIT_LOGS_WRITER_PASSWORD: randomBytes(12).toString('hex'),
      AUDIT_LOGS_READER_PASSWORD: randomBytes(12).toString('hex'),
    }
    const env = (service: Record<string, string>, keep: string[]) =>
      Object.fromEntries(
        Object.entries(service)
          .filter(([k]) => keep.includes(k))
          .map(([k, v]) => [
            k,
            v.replace(/\$\{(\w+)(:\?[^}]*)?\}/g, (_m, name: string) => vars[name]).replace('@postgres:5432/', `@${server.host}/`),
          ]),
      )
    const setupEnv = env(s['setup-db'].environment, Object.keys(s['setup-db'].environment))
    expect(setupEnv.AUDIT_LOGS_ADMIN_URL).to.contain(server.host)
    const setup = await runCli(s['setup-db'].command, {env: setupEnv})
    expect(setup.exitCode, setup.stderr).to.equal(0)
    expect(setup.stdout + setup.stderr).not.to.contain(vars.AUDIT_LOGS_OWNER_PASSWORD)

    const app = await startUpstream()
    // the audit service's database settings (its directories and addresses are the container's: startRun gives its own)
    const run = await startRun(['--upstream', app.url], env(s.audit.environment, ['AUDIT_LOGS_DATABASE_URL', 'AUDIT_LOGS_DB_NAME']))
    const client = new pg.Client(clientConfig(withDatabase(serverUrl(), db)))
    await client.connect()
    try {
      expect((await request(`${run.url}/json?compose=1`)).status).to.equal(200)
      await until(async () => (await count(client, 'request_logs')) === 1, 60_000, 'the record in the compose database')
      expect(run.stderr()).not.to.match(/database: /)
    } finally {
      await client.end()
      await run.stop()
      await app.close()
    }
  })
})

describe('scaffold vector and grafana, against the records of a real run', function () {
  this.timeout(180_000)
  const TOKEN = 'scaffold-token-0123456789'
  let target: Upstream
  let db: TestDatabase
  let run: RunningServer

  before(async () => {
    target = await startUpstream()
    db = await freshDatabase({migrated: true})
    const dir = tmp('deploy-run')
    const appFile = path.join(dir, 'app.mjs')
    // the spawned app: answers with the status asked for, calls out through HTTP_PROXY, and prints log lines
    writeFileSync(
      appFile,
      `import http from 'node:http'
      const proxy = new URL(process.env.HTTP_PROXY)
      http.createServer((req, res) => {
        const url = new URL(req.url, 'http://x')
        console.log('INFO handled ' + url.pathname)
        if (url.pathname === '/out') {
          const to = url.searchParams.get('url')
          const out = http.request({host: proxy.hostname, port: proxy.port, path: to, headers: {host: new URL(to).host}}, (r) => {
            r.resume()
            r.on('end', () => res.end('called'))
          })
          out.on('error', (e) => res.writeHead(502).end(String(e)))
          return out.end()
        }
        const m = /^\\/status\\/(\\d+)$/.exec(url.pathname)
        if (m) console.error('ERROR status ' + m[1])
        res.writeHead(m ? Number(m[1]) : 200, {'content-type': 'application/json'}).end(JSON.stringify({path: url.pathname}))
      }).listen(Number(process.env.PORT), '127.0.0.1')`,
    )
    run = await startRun(
      ['--egress-bind', `127.0.0.1:${await freePort()}`, '--capture-output', '--', process.execPath, appFile],
      {
        AUDIT_LOGS_DATABASE_URL: db.url,
        AUDIT_LOGS_EVENTS_TOKEN: TOKEN,
        // small files, so that rotated (gzipped) ones are there too
        AUDIT_LOGS_LOG_MAX_BYTES: '4096',
        NO_PROXY: '',
        no_proxy: '',
      },
      {dir},
    )
    for (let i = 0; i < 12; i++) {
      expect(
        (await request(`${run.url}/api/items/${i}?token=hidden&page=${i}`, {headers: {'user-agent': 'scaffold-test'}})).status,
      ).to.equal(200)
      await request(`${run.url}/api/orders`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: '{"qty":2,"password":"x"}',
      })
    }
    expect((await request(`${run.url}/status/500`)).status).to.equal(500)
    expect((await request(`${run.url}/status/404`)).status).to.equal(404)
    expect((await request(`${run.url}/out?url=${encodeURIComponent(`${target.url}/json`)}`)).body.toString()).to.equal('called')
    const event = await request(`${run.adminUrl}/_audit/events`, {
      method: 'POST',
      headers: {'content-type': 'application/json', authorization: `Bearer ${TOKEN}`},
      body: JSON.stringify({
        action: 'UPDATE',
        actor: {id: 42, name: 'alice'},
        target: {type: 'shop.Order', id: 17},
        changes: {qty: {before: 1, after: 2}},
      }),
    })
    expect(event.status, event.body.toString()).to.be.oneOf([200, 201, 202])
    // more requests, each to a path of its own (the top paths stay the ones above), until a requests file has been rotated
    let sent = 27
    await until(
      async () => {
        await request(`${run.url}/rotate/${sent++}`)
        return readdirSync(run.logDir).some((f) => /^requests\.jsonl\.\d+\.gz$/.test(f))
      },
      90_000,
      'a rotated requests file',
    )
    await until(
      async () => {
        for (const t of LOG_TYPES) if ((await count(db.client, LOG_TYPE[t].table)) === 0) return false
        return (await count(db.client, 'access_logs')) === sent
      },
      60_000,
      'records of every type in the database',
    )
    await until(() => LOG_TYPES.every((t) => jsonlLines(run.logDir, LOG_TYPE[t].file).length > 0), 60_000, 'every JSONL file')
  })
  after(async () => {
    await run?.stop()
    await target?.close()
    await db?.drop()
  })

  it('vector.yaml reads every JSONL file, rotated ones included, and each record maps onto its ClickHouse table', async () => {
    const dir = tmp('vector')
    const r = await runCli(['scaffold', 'vector', '--dir', dir, '--log-dir', run.logDir, '--database', 'audit'], {env: clean})
    expect(r.exitCode, r.stderr).to.equal(0)
    const config = parseYaml(readFileSync(path.join(dir, 'vector.yaml'), 'utf8'))
    const tables = ddlTables(readFileSync(path.join(dir, 'clickhouse.sql'), 'utf8'))
    expect([...tables.keys()].sort()).to.deep.equal(LOG_TYPES.map((t) => LOG_TYPE[t].table).sort())

    // the file source's globs cover every file in the log directory: the current ones and the rotated .N.gz
    const [sourceName, source] = Object.entries<any>(config.sources)[0]
    expect(source.type).to.equal('file')
    const files = readdirSync(run.logDir)
    expect(
      files.some((f) => /^requests\.jsonl\.\d+\.gz$/.test(f)),
      `rotated files in ${files.join(', ')}`,
    ).to.equal(true)
    for (const f of files.filter((n) => /\.jsonl(\.\d+\.gz)?$/.test(n)))
      expect(
        source.include.some((g: string) => globRegex(g).test(path.join(run.logDir, f))),
        f,
      ).to.equal(true)

    // the graph: every input names a component (a route's output as route.name), one ClickHouse sink per table
    const routes = Object.entries<any>(config.transforms).filter(([, t]) => t.type === 'route')
    const known = new Set([
      sourceName,
      ...Object.keys(config.transforms),
      ...routes.flatMap(([n, t]) => Object.keys(t.route).map((k) => `${n}.${k}`)),
    ])
    for (const c of [...Object.values<any>(config.transforms), ...Object.values<any>(config.sinks)])
      for (const i of c.inputs) expect(known.has(i), `input ${i}`).to.equal(true)
    const sinks = Object.values<any>(config.sinks)
    expect(sinks.map((s) => s.type)).to.deep.equal(LOG_TYPES.map(() => 'clickhouse'))
    expect(sinks.map((s) => s.table).sort()).to.deep.equal([...tables.keys()].sort())
    expect(sinks.every((s) => s.database === 'audit')).to.equal(true)

    // each table: MergeTree, by month, sorted by columns it has and that are never null
    for (const [name, t] of tables) {
      expect(t.tail, name).to.match(/ENGINE = MergeTree\nPARTITION BY toYYYYMM\(created_at\)\nORDER BY \(([^)]*\))*[^)]*\)/)
      const order = /ORDER BY \((.*)\)\n/.exec(t.tail)![1]
      for (const col of order.match(/\b[a-z_]+\b(?!\()/g)!) {
        expect(t.columns.has(col), `${name} ORDER BY ${col}`).to.equal(true)
        expect(t.columns.get(col), `${name} ORDER BY ${col}`).not.to.contain('Nullable')
      }
    }

    // the real records, as Vector's remaps leave them, against the DDL: the same fields, each value fits its type
    const byType = new Map<LogType, Array<Record<string, unknown>>>()
    for (const t of LOG_TYPES)
      for (const line of jsonlLines(run.logDir, LOG_TYPE[t].file)) {
        const rec = JSON.parse(line)
        const type = (rec.log_type ?? 'request') as LogType
        expect(type, `a line of ${LOG_TYPE[t].file}`).to.equal(t)
        byType.set(type, [...(byType.get(type) ?? []), rec])
      }
    for (const t of LOG_TYPES) {
      const table = LOG_TYPE[t].table
      const sink = sinks.find((s) => s.table === table)
      const remap = config.transforms[sink.inputs[0]]
      const routed = routes.some(([n, rt]) => remap.inputs[0] === `${n}.${t}` && rt.route[t].includes(`"${t}"`))
      expect(routed, `${t} records reach ${table}`).to.equal(true)
      const encoded = [...(remap.source as string).matchAll(/\.(\w+) = encode_json\(\.\1\)/g)].map((m) => m[1])
      const records = byType.get(t) ?? []
      expect(records.length, `${t} records in the files`).to.be.greaterThan(0)
      const columns = tables.get(table)!.columns
      for (const rec of records) {
        const row: Record<string, unknown> = {...rec}
        delete row.log_type
        for (const f of encoded) if (row[f] !== null && row[f] !== undefined) row[f] = JSON.stringify(row[f])
        expect(Object.keys(row).sort(), `${t} record keys against ${table}'s columns`).to.deep.equal([...columns.keys()].sort())
        for (const [k, v] of Object.entries(row))
          expect(fits(v, columns.get(k)!), `${table}.${k} ${columns.get(k)} takes ${JSON.stringify(v)}`).to.equal(true)
      }
    }

    const bad = await runCli(['scaffold', 'vector', '--dir', tmp('vector'), '--database', 'audit; DROP'])
    expect(bad.exitCode).to.equal(2)
    expect(bad.stderr).to.contain('--database must be')
    expect((await runCli(['scaffold', 'vector', '--dir', dir])).exitCode).to.equal(2)
  })

  it('the Grafana dashboard: a PostgreSQL datasource variable, and every panel query runs on the audit database and returns rows', async () => {
    const dir = tmp('grafana')
    const file = path.join(dir, 'dashboard.json')
    const r = await runCli(['scaffold', 'grafana', '--out', file, '--title', 'Shop audit'])
    expect(r.exitCode, r.stderr).to.equal(0)
    const dash = JSON.parse(readFileSync(file, 'utf8'))
    expect(dash.title).to.equal('Shop audit')
    expect(dash.schemaVersion).to.be.a('number')
    const variable = dash.templating.list.find((v: any) => v.type === 'datasource')
    expect(variable).to.include({name: 'datasource', query: 'grafana-postgresql-datasource'})
    const titles = dash.panels.map((p: any) => p.title)
    expect(titles).to.include.members(['Request rate', 'Errors', 'Latency percentiles', 'Top paths'])
    const ids = new Set<number>()
    for (const p of dash.panels) {
      expect(ids.has(p.id), `panel id ${p.id}`).to.equal(false)
      ids.add(p.id)
      expect(p.datasource).to.deep.equal({type: 'grafana-postgresql-datasource', uid: '${datasource}'})
      expect(p.gridPos.x + p.gridPos.w).to.be.at.most(24)
      expect(p.targets).to.have.length.greaterThan(0)
    }

    const to = new Date(Date.now() + 60_000)
    const from = new Date(Date.now() - 3_600_000)
    const results: Record<string, any[]> = {}
    for (const p of dash.panels)
      for (const target of p.targets) {
        expect(target.rawQuery).to.equal(true)
        expect(target.rawSql, p.title).to.match(/\$__timeFilter\(created_at\)/)
        const {rows} = await db.client.query(expandMacros(target.rawSql, from, to))
        expect(rows.length, `${p.title} returns rows`).to.be.greaterThan(0)
        if (target.format === 'time_series') expect(rows[0], p.title).to.have.property('time')
        results[p.title] = rows
      }
    // the numbers are the traffic's: one 5xx, one 4xx, the paths sent most on top
    const sum = (rows: any[], k: string) => rows.reduce((n, row) => n + Number(row[k]), 0)
    expect(sum(results.Errors, '5xx')).to.equal(1)
    expect(sum(results.Errors, '4xx')).to.equal(1)
    expect(results['Top paths'][0].path).to.equal('/api/orders')
    expect(Number(results['Top paths'][0].requests)).to.equal(12)
    expect(Number(results['Latency percentiles'][0].p99)).to.be.greaterThan(0)

    const bad = await runCli(['scaffold', 'grafana', '--stdout', '--uid', 'a b'])
    expect(bad.exitCode).to.equal(2)
    expect(bad.stderr).to.contain('--uid must be')
  })
})
