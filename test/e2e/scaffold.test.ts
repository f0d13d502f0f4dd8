import {copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {resolveConfig} from '../../src/config/resolve.js'
import {resolveTarget} from '../../src/stores/postgres/connection.js'
import {spawn} from 'node:child_process'
import {BIN, runCli, unwrapOclif} from '../helpers/cli.js'
import {request, startRun, until} from '../helpers/run-server.js'
import {startUpstream} from '../helpers/upstream.js'
import {skipUnless} from '../helpers/skip.js'

/**
 * `scaffold server-config` on a pseudo-terminal (util-linux's script(1)): answer() types each step's
 * keys once its prompt shows.
 */
function onTerminal(dir: string, args: string[]) {
  const command = [process.execPath, BIN, 'scaffold', 'server-config', ...args].map((a) => `"${a}"`).join(' ')
  const child = spawn('script', ['-qec', command, '/dev/null'], {
    cwd: dir,
    env: {...process.env, OCLIF_SKIP_NEW_VERSION_CHECK: '1', NO_COLOR: '1'},
  })
  let screen = ''
  let ended = false
  child.stdout.on('data', (c: Buffer) => (screen += c.toString()))
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      ended = true
      resolve(code)
    }),
  )
  return {
    exited,
    ended: () => ended,
    screen: () => screen,
    async answer(steps: Array<[string, string]>) {
      let from = 0
      for (const [prompt, keys] of steps) {
        await until(() => (screen.indexOf(prompt, from) >= 0 ? true : undefined), 15_000, `the prompt "${prompt}" in:\n${screen}`)
        from = screen.indexOf(prompt, from) + prompt.length
        child.stdin.write(keys)
      }
    },
    kill: () => child.kill('SIGKILL'),
  }
}

/** The settings a config file holds; read from a copy, as a module imported once is not imported again. */
let copies = 0
async function readConfig(file: string) {
  const copy = file.replace(/\.mjs$/, `.copy-${++copies}.mjs`)
  copyFileSync(file, copy)
  return resolveConfig({cwd: path.dirname(file), configFile: copy, env: {}})
}

describe('scaffold server-config', function () {
  this.timeout(60_000)

  it('writes a config that run accepts without edits, refuses to overwrite, and its hooks work once uncommented', async () => {
    const app = await startUpstream()
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-scaffold-'))
    try {
      const first = await runCli(['scaffold', 'server-config', '--yes', '--upstream', app.url, '--workers', '2', '--json'], {cwd: dir})
      expect(first.exitCode, first.stderr).to.equal(0)
      const file = path.join(dir, 'audit-logs.config.mjs')
      expect(first.json().file).to.equal(file)
      const again = await runCli(['scaffold', 'server-config', '--yes'], {cwd: dir})
      expect(again.exitCode).to.equal(2)
      expect(again.stderr).to.contain('already exists').and.contain('--force')

      const config = await resolveConfig({cwd: dir, env: {}})
      expect(config).to.include({upstream: app.url, workers: 2, maxBodyLength: 8192, logBackupCount: 10})
      // no dbName unless one was asked for: the database named in AUDIT_LOGS_DATABASE_URL is the one used
      expect(config.dbName).to.equal(undefined)
      const withUrl = await resolveConfig({cwd: dir, env: {AUDIT_LOGS_DATABASE_URL: 'postgres://writer@db.internal:5432/shop_audit'}})
      expect((await resolveTarget(withUrl)).dbName).to.equal('shop_audit')

      // the userId hook, uncommented, attributes requests
      // uncomment the three hooks the template offers, adjusting userId
      const text = readFileSync(file, 'utf8')
        .replace(
          "// export function userId(req, res) {\n//   return res.headers['x-user-id'] ?? null\n// }",
          "export function userId(req, res) {\n  return 'hook-' + req.method\n}",
        )
        .replace(/^\/\/ (export function (extra|mask)\(| {2}|\}$)/gm, '$1')
      expect(text).to.match(/^export function extra\(/m)
      expect(text).to.match(/^export function mask\(/m)
      writeFileSync(file, text)
      const run = await startRun(['--config', file, '--no-database', '--workers', '1'], {}, {dir})
      try {
        await request(`${run.url}/json`)
        const line = await until(() => {
          try {
            return readFileSync(path.join(run.logDir, 'requests.jsonl'), 'utf8').split('\n').find(Boolean)
          } catch {
            return undefined
          }
        }, 10_000)
        expect(JSON.parse(line!).user_id).to.equal('hook-GET')
        await request(`${run.url}/echo`, {method: 'POST', headers: {'content-type': 'text/plain', 'x-tenant': 't-9'}, body: 'card on file'})
        await request(`${run.url}/payments/echo`, {method: 'POST', headers: {'content-type': 'text/plain'}, body: 'pay 10 EUR'})
        const lines = await until(() => {
          const all = readFileSync(path.join(run.logDir, 'requests.jsonl'), 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l))
          return all.length >= 3 ? all : undefined
        }, 10_000)
        const echo = lines.find((r) => r.path === '/echo')
        expect(echo.extra).to.deep.equal({tenant: 't-9'}) // extra(req, res)
        expect(echo.request_body).to.equal('card on file')
        expect(lines.find((r) => r.path === '/payments/echo').request_body).to.equal('[removed]') // mask(record)
      } finally {
        await run.stop()
      }
    } finally {
      await app.close()
    }
  })

  it('--force replaces, and values are written as literals (no code injection)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-scaffold-'))
    writeFileSync(path.join(dir, 'audit-logs.config.mjs'), 'export default {}\n')
    const r = await runCli(['scaffold', 'server-config', '--yes', '--force', '--command', `node server.js"; process.exit(9); "`], {
      cwd: dir,
    })
    expect(r.exitCode, r.stderr).to.equal(0)
    const config = await resolveConfig({cwd: dir, env: {}})
    expect(config.command).to.deep.equal(['node', 'server.js";', 'process.exit(9);', '"'])
    // a file that cannot be read is replaced too, from the defaults
    writeFileSync(path.join(dir, 'audit-logs.config.mjs'), 'export default {workers: "many"\n')
    const broken = await runCli(['scaffold', 'server-config', '--yes', '--force'], {cwd: dir})
    expect(broken.exitCode, broken.stderr).to.equal(0)
    expect(broken.stderr).to.contain('could not be read')
    expect((await resolveConfig({cwd: dir, env: {}})).workers).to.be.a('number')
    // a database name given when scaffolding is written
    const other = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-scaffold-'))
    const named = await runCli(['scaffold', 'server-config', '--yes'], {cwd: other, env: {AUDIT_LOGS_DB_NAME: 'shop_audit'}})
    expect(named.exitCode, named.stderr).to.equal(0)
    expect((await resolveConfig({cwd: other, env: {}})).dbName).to.equal('shop_audit')
  })
  it("asks on a terminal: the answers typed at the prompts are what it writes, the database URL's password never shown", async function () {
    skipUnless(this, existsSync('/usr/bin/script'), "util-linux's script(1), in every Debian")
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-scaffold-tty-'))
    const url = 'postgres://audit_logs_writer:typed-Pw%23x@db.internal:5432/shop_audit'
    const tty = onTerminal(dir, [])
    try {
      await tty.answer([
        ['Listen on', '127.0.0.1:8123\r'],
        ['The app', '\u001b[B\r'], // down to "spawn it (command)"
        ['Command', 'node app.js\r'],
        ['Worker processes', '3\r'],
        ['Log directory', '\r'], // the default
        ['Rotate log files at', '\r'],
        ['Rotated files to keep', '5\r'],
        ['Audit database', '\u001b[B\r'], // down to "a PostgreSQL server"
        ['Database URL', `${url}\r`],
        ['Body bytes kept per record', '4096\r'],
      ])
      const code = await tty.exited
      expect(code, tty.screen()).to.equal(0)
      expect(tty.screen()).to.contain('Wrote')
      expect(tty.screen()).to.not.contain('typed-Pw')
      expect(tty.screen()).to.contain('postgres://audit_logs_writer:****@db.internal:5432/shop_audit')
      const config = await resolveConfig({cwd: dir, env: {}})
      expect(config).to.include({
        bind: '127.0.0.1:8123',
        workers: 3,
        logDir: 'logs',
        logMaxBytes: 10_485_760,
        logBackupCount: 5,
        maxBodyLength: 4096,
        databaseUrl: url,
      })
      expect(config.command).to.deep.equal(['node', 'app.js'])
      expect(config.upstream).to.equal(undefined)
    } finally {
      tty.kill()
    }
  })

  it('on a terminal, refuses an existing file before asking anything, naming the file and --force', async function () {
    skipUnless(this, existsSync('/usr/bin/script'), "util-linux's script(1), in every Debian")
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-scaffold-tty-'))
    writeFileSync(path.join(dir, 'audit-logs.config.mjs'), 'export default {workers: 2}\n')
    const tty = onTerminal(dir, [])
    try {
      // it either ends, or shows its first question and waits for an answer that never comes
      await until(() => tty.ended() || tty.screen().includes('Listen on'), 20_000, 'the refusal or the first question')
      expect(tty.screen()).to.not.contain('Listen on')
      expect(await tty.exited).to.equal(2)
      const said = unwrapOclif(tty.screen().replace(/\r/g, ''))
      expect(said).to.contain('audit-logs.config.mjs already exists').and.contain('--force')
      expect(readFileSync(path.join(dir, 'audit-logs.config.mjs'), 'utf8')).to.equal('export default {workers: 2}\n')
    } finally {
      tty.kill()
    }
  })

  it("on a re-run with --force, the existing file's values are the defaults (the database URL shown without its password)", async function () {
    skipUnless(this, existsSync('/usr/bin/script'), "util-linux's script(1), in every Debian")
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-scaffold-tty-'))
    const url = 'postgres://audit_logs_writer:kept-Pw1@db.internal:5432/shop_audit'
    const first = await runCli(
      [
        'scaffold',
        'server-config',
        '--yes',
        '--bind',
        '127.0.0.1:8124',
        '--command',
        'node app.js',
        '--workers',
        '3',
        '--log-dir',
        'var/log',
        '--max-body-length',
        '4096',
        '--database-url',
        url,
      ],
      {cwd: dir},
    )
    expect(first.exitCode, first.stderr).to.equal(0)
    const tty = onTerminal(dir, ['--force'])
    try {
      // Enter at every question: each default is what the file holds
      await tty.answer(
        [
          'Listen on',
          'The app',
          'Command',
          'Worker processes',
          'Log directory',
          'Rotate log files at',
          'Rotated files to keep',
          'Audit database',
          'Database URL',
          'Body bytes kept per record',
        ].map((prompt) => [prompt, '\r']),
      )
      const code = await tty.exited
      expect(code, tty.screen()).to.equal(0)
      expect(tty.screen()).to.contain('127.0.0.1:8124').and.contain('node app.js').and.contain('var/log')
      expect(tty.screen()).to.contain('postgres://audit_logs_writer:****@db.internal:5432/shop_audit')
      expect(tty.screen()).to.not.contain('kept-Pw1')
      const config = await resolveConfig({cwd: dir, env: {}})
      expect(config).to.include({bind: '127.0.0.1:8124', workers: 3, logDir: 'var/log', maxBodyLength: 4096, databaseUrl: url})
      expect(config.command).to.deep.equal(['node', 'app.js'])
      expect(config.upstream).to.equal(undefined)
    } finally {
      tty.kill()
    }
  })

  it("with --yes --force, the existing file's values are kept where no flag overrides them; the comments name the Django packages' settings", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-scaffold-'))
    const out = path.join('deploy', 'audit.config.mjs') // not the default name: only --out says where it is
    const url = 'postgres://audit_logs_writer:pw-1@db.internal:5432/shop_audit'
    const first = await runCli(
      [
        'scaffold',
        'server-config',
        '--yes',
        '--out',
        out,
        '--command',
        'node app.js',
        '--workers',
        '3',
        '--database-url',
        url,
        '--max-body-length',
        '2048',
      ],
      {cwd: dir},
    )
    expect(first.exitCode, first.stderr).to.equal(0)
    const again = await runCli(['scaffold', 'server-config', '--yes', '--force', '--out', out, '--workers', '5'], {cwd: dir})
    expect(again.exitCode, again.stderr).to.equal(0)
    expect(again.stdout + again.stderr).to.not.contain('pw-1')
    const config = await readConfig(path.join(dir, out))
    expect(config).to.include({workers: 5, maxBodyLength: 2048, databaseUrl: url})
    expect(config.command).to.deep.equal(['node', 'app.js'])
    // --upstream replaces the spawned app
    const proxied = await runCli(['scaffold', 'server-config', '--yes', '--force', '--out', out, '--upstream', 'http://127.0.0.1:3000'], {
      cwd: dir,
    })
    expect(proxied.exitCode, proxied.stderr).to.equal(0)
    const after = await readConfig(path.join(dir, out))
    expect(after).to.include({upstream: 'http://127.0.0.1:3000', workers: 5, databaseUrl: url})
    expect(after.command).to.equal(undefined)

    const text = readFileSync(path.join(dir, out), 'utf8')
    expect(text).to.not.contain("seeds'")
    expect(text).to.contain('django-gunicorn-audit-logs').and.contain('django-audit-logger')
    expect(text).to.contain('GUNICORN_LOG_DIR').and.contain('GUNICORN_LOG_MAX_BYTES').and.contain('GUNICORN_LOG_BACKUP_COUNT')
    expect(text).to.contain('USER_ID_CALLABLE').and.contain('EXTRA_DATA_CALLABLE').and.contain('MASK_FUNCTION')
  })
})
