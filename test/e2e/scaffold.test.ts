import {existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {resolveConfig} from '../../src/config/resolve.js'
import {resolveTarget} from '../../src/stores/postgres/connection.js'
import {spawn} from 'node:child_process'
import {BIN, runCli} from '../helpers/cli.js'
import {request, startRun, until} from '../helpers/run-server.js'
import {startUpstream} from '../helpers/upstream.js'

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
        .replace("// export function userId(req, res) {\n//   return res.headers['x-user-id'] ?? null\n// }", "export function userId(req, res) {\n  return 'hook-' + req.method\n}")
        .replace(/^\/\/ (export function (extra|mask)\(|  |\}$)/gm, '$1')
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
          const all = readFileSync(path.join(run.logDir, 'requests.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
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
    const r = await runCli(['scaffold', 'server-config', '--yes', '--force', '--command', `node server.js"; process.exit(9); "`], {cwd: dir})
    expect(r.exitCode, r.stderr).to.equal(0)
    const config = await resolveConfig({cwd: dir, env: {}})
    expect(config.command).to.deep.equal(['node', 'server.js";', 'process.exit(9);', '"'])
    // a database name given when scaffolding is written
    const other = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-scaffold-'))
    const named = await runCli(['scaffold', 'server-config', '--yes'], {cwd: other, env: {AUDIT_LOGS_DB_NAME: 'shop_audit'}})
    expect(named.exitCode, named.stderr).to.equal(0)
    expect((await resolveConfig({cwd: other, env: {}})).dbName).to.equal('shop_audit')
  })
  it('asks on a terminal: the answers typed at the prompts are what it writes', async function () {
    if (!existsSync('/usr/bin/script')) this.skip() // util-linux's script(1), in every Debian
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-scaffold-tty-'))
    // script(1) gives the command a pseudo-terminal; keys are typed once each prompt shows
    const child = spawn('script', ['-qec', `"${process.execPath}" "${BIN}" scaffold server-config`, '/dev/null'], {cwd: dir, env: {...process.env, OCLIF_SKIP_NEW_VERSION_CHECK: '1'}})
    let screen = ''
    child.stdout.on('data', (c: Buffer) => (screen += c.toString()))
    const steps: Array<[string, string]> = [
      ['Listen on', '127.0.0.1:8123\r'],
      ['The app', '\u001b[B\r'], // down to "spawn it (command)"
      ['Command', 'node app.js\r'],
      ['Worker processes', '3\r'],
      ['Log directory', '\r'], // the default
      ['Rotate log files at', '\r'],
      ['Rotated files to keep', '5\r'],
      ['Body bytes kept per record', '4096\r'],
    ]
    let from = 0
    try {
      for (const [prompt, keys] of steps) {
        await until(() => (screen.indexOf(prompt, from) >= 0 ? true : undefined), 15_000, `the prompt "${prompt}"`)
        from = screen.indexOf(prompt, from) + prompt.length
        child.stdin.write(keys)
      }
      const code = await new Promise((resolve) => child.on('exit', resolve))
      expect(code, screen).to.equal(0)
      expect(screen).to.contain('Wrote')
      const config = await resolveConfig({cwd: dir, env: {}})
      expect(config).to.include({bind: '127.0.0.1:8123', workers: 3, logDir: 'logs', logMaxBytes: 10_485_760, logBackupCount: 5, maxBodyLength: 4096})
      expect(config.command).to.deep.equal(['node', 'app.js'])
      expect(config.upstream).to.equal(undefined)
    } finally {
      child.kill('SIGKILL')
    }
  })
})
