import {chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {Masker} from '../../src/capture/masking.js'
import {resolveConfig} from '../../src/config/resolve.js'
import {DEFAULT_SENSITIVE_FIELDS, DEFAULT_SENSITIVE_HEADERS} from '../../src/config/schema.js'
import {accessLogLine, accessLogStream, accessTime} from '../../src/server/access-log.js'
import {levelOf, serverLog} from '../../src/server/server-log.js'
import {renderServerConfig} from '../../src/scaffold/server-config.js'

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'audit-logs-gunicorn-'))
const resolve = (env: Record<string, string>) => resolveConfig({env, cwd: tmp()})

describe("gunicorn's settings", () => {
  it('defaults as gunicorn: a 30 s timeout, no max_requests, info, the log on stderr, no access log', async () => {
    const c = await resolve({})
    expect(c).to.include({upstreamTimeoutMs: 30_000, maxRequests: 0, maxRequestsJitter: 0, logLevel: 'info', errorLog: '-'})
    expect(c.accessLog).to.equal(undefined)
    expect(c.workerClass).to.equal(undefined)
  })

  it('takes the GUNICORN_* names, GUNICORN_TIMEOUT in seconds', async () => {
    const c = await resolve({
      GUNICORN_TIMEOUT: '45',
      GUNICORN_MAX_REQUESTS: '1000',
      GUNICORN_MAX_REQUESTS_JITTER: '50',
      GUNICORN_LOG_LEVEL: 'warning',
      GUNICORN_ACCESS_LOG: '-',
      GUNICORN_ERROR_LOG: '/var/log/app/error.log',
      GUNICORN_WORKER_CLASS: 'gevent',
    })
    expect(c).to.include({
      upstreamTimeoutMs: 45_000,
      maxRequests: 1000,
      maxRequestsJitter: 50,
      logLevel: 'warning',
      accessLog: '-',
      errorLog: '/var/log/app/error.log',
      workerClass: 'gevent',
    })
    expect((await resolve({GUNICORN_TIMEOUT: '0.5'})).upstreamTimeoutMs).to.equal(500)
    expect((await resolve({GUNICORN_TIMEOUT: '0'})).upstreamTimeoutMs).to.equal(0)
    // the setting's own name is in milliseconds, and wins over gunicorn's
    expect((await resolve({AUDIT_LOGS_UPSTREAM_TIMEOUT_MS: '2500', GUNICORN_TIMEOUT: '9'})).upstreamTimeoutMs).to.equal(2500)
  })

  it('refuses bad values, naming the variable and what is accepted', async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [
        {GUNICORN_TIMEOUT: '-5'},
        /upstreamTimeoutMs = "-5" \(from environment GUNICORN_TIMEOUT\)\. Accepted: a whole number of milliseconds/,
      ],
      [{AUDIT_LOGS_UPSTREAM_TIMEOUT_MS: '1.5'}, /upstreamTimeoutMs = "1.5" .*Accepted: a whole number of milliseconds, 0 for no limit/],
      [{GUNICORN_MAX_REQUESTS_JITTER: 'some'}, /maxRequestsJitter = "some" \(from environment GUNICORN_MAX_REQUESTS_JITTER\)/],
      [{GUNICORN_LOG_LEVEL: 'WARN'}, /logLevel = "WARN" .*Accepted: one of debug, info, warning, error, critical/],
    ]
    for (const [env, message] of cases) {
      const error = await resolve(env).then(
        () => undefined,
        (e: Error) => e,
      )
      expect(error?.message, JSON.stringify(env)).to.match(message)
    }
  })

  it("reads the level of the server's own messages", () => {
    expect(levelOf('listening on http://0.0.0.0:8000 → http://127.0.0.1:3000')).to.equal('info')
    expect(levelOf('stopped: 5 requests, 10 records captured, 0 dropped; written {"files":10}')).to.equal('info')
    expect(levelOf('worker 12 died (SIGKILL); starting a replacement')).to.equal('warning')
    expect(levelOf('the app exited with code 3; shutting down')).to.equal('warning')
    expect(levelOf('the app exited with code 0; shutting down')).to.equal('info')
    expect(levelOf('ALERT: 3 records dropped: the journal is full')).to.equal('error')
    expect(levelOf('sink postgres: cannot reopen its files (EACCES); its next write tries again')).to.equal('error')
  })

  describe('log files', () => {
    let umask: number
    beforeEach(() => (umask = process.umask(0o022))) // the usual one, under which a default mode is 0644
    afterEach(() => process.umask(umask))
    const mode = (file: string) => statSync(file).mode & 0o777

    it('creates the error log and the access log 0640, and leaves the mode of an existing file alone', async () => {
      const dir = tmp()
      const error = serverLog(path.join(dir, 'error.log'), 'info')
      error.log('a line')
      error.close()
      expect(mode(path.join(dir, 'error.log'))).to.equal(0o640)
      const access = accessLogStream(path.join(dir, 'access.log'))
      access.write('a line\n')
      await access.close()
      expect(mode(path.join(dir, 'access.log'))).to.equal(0o640)
      for (const name of ['kept-error.log', 'kept-access.log']) {
        writeFileSync(path.join(dir, name), '')
        chmodSync(path.join(dir, name), 0o604)
      }
      serverLog(path.join(dir, 'kept-error.log'), 'info').close()
      await accessLogStream(path.join(dir, 'kept-access.log')).close()
      expect(mode(path.join(dir, 'kept-error.log'))).to.equal(0o604)
      expect(mode(path.join(dir, 'kept-access.log'))).to.equal(0o604)
    })

    it("opens the error log again (SIGHUP): the next lines, a worker's too, go to the new file, made 0640", () => {
      const dir = tmp()
      const file = path.join(dir, 'error.log')
      const log = serverLog(file, 'info')
      log.log('before the rotation')
      renameSync(file, `${file}.1`)
      log.reopen()
      log.log('after the rotation')
      log.worker(Buffer.from('[audit-logs] worker 7: a line of its own\n'))
      log.close()
      const old = readFileSync(`${file}.1`, 'utf8')
      const now = readFileSync(file, 'utf8')
      expect(old).to.include('before the rotation').and.not.include('after')
      expect(now).to.match(/\[INFO\] after the rotation\n\[audit-logs\] worker 7: a line of its own\n$/)
      expect(mode(file)).to.equal(0o640)
    })

    it('goes on writing to the old error log when the new one cannot be opened, and says so', () => {
      const dir = path.join(tmp(), 'logs')
      mkdirSync(dir)
      const file = path.join(dir, 'error.log')
      const log = serverLog(file, 'info')
      renameSync(dir, `${dir}.old`) // the open file moves with its directory; its name is gone
      log.reopen()
      log.log('still written')
      log.close()
      const text = readFileSync(path.join(`${dir}.old`, 'error.log'), 'utf8')
      expect(text).to.match(/\[ERROR\] errorLog .*error\.log cannot be opened again \(SIGHUP\): ENOENT.*; its lines go on to the old file/)
      expect(text).to.include('still written')
      rmSync(`${dir}.old`, {recursive: true})
    })
  })

  it("formats gunicorn's access line, masked and escaped", () => {
    const masker = Masker.of({sensitiveFields: DEFAULT_SENSITIVE_FIELDS, sensitiveHeaders: DEFAULT_SENSITIVE_HEADERS})
    const start = Date.UTC(2026, 11, 7, 2, 9, 5)
    expect(accessTime(start)).to.equal('[07/Dec/2026:02:09:05 +0000]')
    const line = accessLogLine(
      {
        start,
        method: 'POST',
        scheme: 'http',
        host: 'shop',
        url: '/pay?api_key=K-123&n=1',
        requestHeaders: {authorization: 'Basic dXNlcjpwYXNz', 'user-agent': 'x\u0001"\\', referer: '/a?secret=s3'},
        status: 201,
        responseHeaders: {},
        responseSize: 42,
        durationMs: 3,
        ip: '10.0.0.9',
      },
      '1.1',
      masker,
    )
    expect(line).to.equal(
      '10.0.0.9 - - [07/Dec/2026:02:09:05 +0000] "POST /pay?api_key=****&n=1 HTTP/1.1" 201 42 "/a?secret=****" "x\\x01\\x22\\x5c"\n',
    )
  })

  it('are in the scaffolded config: the timeout set, the others commented out, and each valid once uncommented', async () => {
    const text = renderServerConfig({
      bind: '0.0.0.0:8000',
      upstream: 'http://127.0.0.1:3000',
      workers: 2,
      adminBind: '127.0.0.1:9464',
      logDir: 'logs',
      logMaxBytes: 10_485_760,
      logBackupCount: 10,
      maxBodyLength: 8192,
      excludePaths: [],
      excludeExtensions: [],
      sensitiveFields: DEFAULT_SENSITIVE_FIELDS,
      sensitiveHeaders: DEFAULT_SENSITIVE_HEADERS,
      requestRetentionDays: 90,
      accessRetentionDays: 120,
    })
    expect(text).to.match(/^ {2}upstreamTimeoutMs: 30000,/m)
    for (const key of ['maxRequests', 'maxRequestsJitter', 'logLevel', 'errorLog', 'accessLog'])
      expect(text).to.match(new RegExp(`^  // ${key}: `, 'm'))
    const dir = tmp()
    const file = path.join(dir, 'audit-logs.config.mjs')
    writeFileSync(file, text.replace(/^ {2}\/\/ (maxRequests|maxRequestsJitter|logLevel|errorLog|accessLog): /gm, '  $1: '))
    const c = await resolveConfig({env: {}, cwd: dir, configFile: file})
    expect(c).to.include({
      upstreamTimeoutMs: 30_000,
      maxRequests: 1000,
      maxRequestsJitter: 50,
      logLevel: 'info',
      errorLog: '-',
      accessLog: '-',
    })
  })
})
