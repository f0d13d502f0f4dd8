import {mkdtempSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {type Hit, smtpSink, tcpRelay, webhookReceiver} from '../helpers/alert-receivers.js'
import {type TestDatabase, freshDatabase} from '../helpers/db.js'
import {type RunningServer, request, sendLoops, startRun, until} from '../helpers/run-server.js'
import {type Upstream, startUpstream} from '../helpers/upstream.js'

type Item = {condition: string; sink?: string; state: 'started' | 'ongoing' | 'ended'; since: string; at: string; text: string}

/** The alert items of the JSON webhook's messages, in the order they came. */
const itemsOf = (hits: Hit[]): Item[] => hits.flatMap((h) => JSON.parse(h.body).alerts as Item[])
const of = (items: Item[], condition: string, state: Item['state']) => items.filter((i) => i.condition === condition && i.state === state)

const health = async (run: RunningServer) => JSON.parse((await request(`${run.adminUrl}/health`)).body.toString())
const metrics = async (run: RunningServer) => (await request(`${run.adminUrl}/metrics`)).body.toString()
const metric = (text: string, series: string) =>
  Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN)

/** A request every 50 ms from two loops, kept by status: what the proxy's clients see while the alerts go (or fail). */
function steadyTraffic(url: string) {
  const statuses: number[] = []
  const loops = sendLoops(2, async (k, i) => {
    statuses.push(
      await request(`${url}/json?loop=${k}&i=${i}`).then(
        (r) => r.status,
        () => 0,
      ),
    )
    await new Promise((r) => setTimeout(r, 50))
  })
  return {statuses, stop: async () => (await loops.stop(), statuses)}
}

/** The database's URL through the relay (host and port replaced). */
function through(url: string, port: number): string {
  const u = new URL(url)
  u.hostname = '127.0.0.1'
  u.port = String(port)
  return u.toString()
}

describe('audit-logs run: alerts by webhook and e-mail (subprocess, real PostgreSQL, local receivers)', function () {
  this.timeout(180_000)
  let app: Upstream
  let db: TestDatabase
  let relay: Awaited<ReturnType<typeof tcpRelay>>
  before(async () => {
    app = await startUpstream()
    db = await freshDatabase({migrated: true})
    const u = new URL(db.url)
    relay = await tcpRelay(u.hostname, Number(u.port))
  })
  after(async () => {
    await relay?.close()
    await app?.close()
    await db?.drop()
  })
  afterEach(() => relay.restore().catch(() => {})) // a test that failed while the database was cut

  const TOKEN = 'T0ALERTS/B0ALERTS/s3cretW3bhookT0ken'
  const SMTP_PASSWORD = 'sm7p-Passw0rd-xyz'
  const HOOK_PASSWORD = 'h00k-Passw0rd@xyz' // percent-encoded in the URL, as its '@' must be

  it('PostgreSQL down past alertSinkFailedMs: one start alert on each channel, digests no more often than alertDigestMinutes, one recovery alert; no secret shown', async () => {
    const hook = await webhookReceiver()
    const smtp = await smtpSink('alerts', SMTP_PASSWORD)
    let run: RunningServer | undefined
    try {
      run = await startRun(['--upstream', app.url, '--no-files'], {
        AUDIT_LOGS_DATABASE_URL: through(db.url, relay.port),
        AUDIT_LOGS_INSTANCE: 'alerts-test',
        // a user and password: sent as Basic authentication (fetch refuses a URL that holds them)
        AUDIT_LOGS_ALERT_WEBHOOK_URL: `http://hook-user:${encodeURIComponent(HOOK_PASSWORD)}@127.0.0.1:${hook.port}/hooks/${TOKEN}`,
        AUDIT_LOGS_ALERT_SMTP_URL: `smtp://alerts:${SMTP_PASSWORD}@127.0.0.1:${smtp.port}`,
        AUDIT_LOGS_ALERT_EMAIL_FROM: 'audit@example.com',
        AUDIT_LOGS_ALERT_EMAIL_TO: 'ops@example.com, security@example.com',
        AUDIT_LOGS_ALERT_SINK_FAILED_MS: '1500',
        AUDIT_LOGS_ALERT_DIGEST_MINUTES: '0.05', // 3 s
        AUDIT_LOGS_ALERT_TIMEOUT_MS: '5000',
      })
      expect(run.stderr()).to.contain(`alerts to webhook http://127.0.0.1:${hook.port}/**** and email smtp://127.0.0.1:${smtp.port}`)
      const traffic = steadyTraffic(run.url)
      await until(
        async () => Number((await db.client.query('SELECT count(*) AS n FROM access_logs')).rows[0].n) > 0,
        30_000,
        'a record in PostgreSQL',
      )
      expect(hook.hits).to.have.length(0) // a healthy sink alerts nothing

      await relay.cut()
      const cutAt = Date.now()
      await until(() => of(itemsOf(hook.hits), 'sink_failing', 'ongoing').length >= 2, 60_000, 'two digests')
      await until(() => smtp.mails.length >= 2, 30_000, 'two e-mails')
      await relay.restore()
      await until(() => of(itemsOf(hook.hits), 'sink_failing', 'ended').length > 0, 60_000, 'the recovery alert')
      await until(() => smtp.mails.some((m) => /RESOLVED sink_failing/.test(m.subject)), 30_000, 'the recovery e-mail')
      const statuses = await traffic.stop()

      // the webhook: exactly one start, digests at least 3 s apart (from the start on), one end
      expect(hook.hits.every((h) => h.path === `/hooks/${TOKEN}`)).to.equal(true)
      const basic = `Basic ${Buffer.from(`hook-user:${HOOK_PASSWORD}`).toString('base64')}`
      expect(new Set(hook.hits.map((h) => h.authorization))).to.deep.equal(new Set([basic]))
      const items = itemsOf(hook.hits).filter((i) => i.condition === 'sink_failing')
      expect(items.every((i) => i.sink === 'postgres')).to.equal(true)
      const started = of(items, 'sink_failing', 'started')
      expect(started).to.have.length(1)
      expect(Date.parse(started[0].at) - cutAt).to.be.at.least(1500 - 1000) // failing since the first failed write after the cut
      expect(started[0].text).to.match(
        /^sink postgres has been failing for \d+ s: .+; \d+ failed attempts; .* wait in the journal, the oldest for \d+ (s|min)$/,
      )
      expect(of(items, 'sink_failing', 'ended')).to.have.length(1)
      const reports = items.filter((i) => i.state !== 'ended').map((i) => Date.parse(i.at))
      for (let k = 1; k < reports.length; k++)
        expect(reports[k] - reports[k - 1], 'between two alerts of one condition').to.be.at.least(3000)
      const body = JSON.parse(hook.hits[0].body)
      expect(body).to.include({source: 'audit-logs', instance: 'alerts-test'})
      expect(body.text).to.match(/^audit-logs on alerts-test: ALERT sink_failing \(postgres\)/)

      // e-mail: the same story, one message at a time, to both addresses, authenticated
      const subjects = smtp.mails.map((m) => m.subject)
      expect(
        subjects.filter((s) => /: ALERT sink_failing \(postgres\)/.test(s)),
        subjects.join('\n'),
      ).to.have.length(1)
      expect(subjects.filter((s) => /RESOLVED sink_failing \(postgres\)/.test(s))).to.have.length(1)
      expect(subjects.filter((s) => /STILL sink_failing/.test(s)).length).to.be.at.least(1)
      expect(smtp.mails[0]).to.include({from: 'audit@example.com', user: 'alerts'})
      expect(smtp.mails[0].to).to.deep.equal(['ops@example.com', 'security@example.com'])

      // the proxy's clients saw none of it
      expect(statuses.filter((s) => s !== 200)).to.deep.equal([])
      const m = await metrics(run)
      expect(metric(m, 'audit_logs_alerts_sent_total{channel="webhook"}')).to.equal(hook.hits.length)
      expect(metric(m, 'audit_logs_alerts_sent_total{channel="email"}')).to.equal(smtp.mails.length)
      expect(metric(m, 'audit_logs_alert_failures_total{channel="webhook"}')).to.equal(0)
      const h = await health(run)
      expect(h.alerts).to.deep.include({active: [], failures: {webhook: 0, email: 0}})

      await run.stop()
      const everything = run.stderr() + hook.hits.map((x) => x.body).join('') + smtp.mails.map((x) => x.raw).join('')
      expect(run.stderr()).not.to.contain('s3cretW3bhookT0ken').and.not.to.contain(SMTP_PASSWORD)
      for (const secret of [HOOK_PASSWORD, encodeURIComponent(HOOK_PASSWORD), basic.slice('Basic '.length)])
        expect(run.stderr()).not.to.contain(secret)
      expect(everything).not.to.contain(SMTP_PASSWORD).and.not.to.contain(HOOK_PASSWORD)
      expect(hook.hits.map((x) => x.body).join('') + smtp.mails.map((x) => x.raw).join('')).not.to.contain(TOKEN)
    } finally {
      await run?.stop()
      await hook.close()
      await smtp.close()
    }
  })

  it('a webhook that answers 500, then one that hangs, an SMTP server that refuses the login: each failure is logged and counted once, never retried; the proxy is unaffected', async () => {
    const hook = await webhookReceiver()
    hook.state.mode = 500
    const smtp = await smtpSink('alerts', 'the-right-password')
    let run: RunningServer | undefined
    try {
      run = await startRun(['--upstream', app.url, '--no-files'], {
        AUDIT_LOGS_DATABASE_URL: through(db.url, relay.port),
        AUDIT_LOGS_ALERT_SMTP_URL: `smtp://alerts:${SMTP_PASSWORD}@127.0.0.1:${smtp.port}`,
        AUDIT_LOGS_ALERT_EMAIL_TO: 'ops@example.com',
        AUDIT_LOGS_ALERT_WEBHOOK_URL: `http://127.0.0.1:${hook.port}/hooks/${TOKEN}`,
        AUDIT_LOGS_ALERT_SINK_FAILED_MS: '500',
        AUDIT_LOGS_ALERT_DIGEST_MINUTES: '0.05', // 3 s
        AUDIT_LOGS_ALERT_TIMEOUT_MS: '1000',
      })
      const traffic = steadyTraffic(run.url)
      await until(
        async () => Number((await db.client.query('SELECT count(*) AS n FROM access_logs')).rows[0].n) > 0,
        30_000,
        'a record in PostgreSQL',
      )
      await relay.cut()

      await until(() => hook.hits.length >= 3, 60_000, 'three alerts answered 500')
      expect(hook.hits.map((h) => h.authorization)).to.deep.equal(hook.hits.map(() => undefined)) // no user and password: no header
      const failed500 = await until(
        async () => {
          const n = metric(await metrics(run!), 'audit_logs_alert_failures_total{channel="webhook"}')
          return n >= 3 ? n : undefined
        },
        10_000,
        'three failures counted',
      )
      expect(failed500).to.be.at.most(hook.hits.length)
      expect(run.stderr()).to.match(
        new RegExp(
          `alerts: the webhook alert to http://127\\.0\\.0\\.1:${hook.port}/\\*\\*\\*\\* failed: HTTP 500; not sent again \\(1 failure\\(s\\) so far`,
        ),
      )
      // not retried: every message differs from the one before (a retry would send the same body again)
      const bodies = hook.hits.map((x) => x.body)
      expect(new Set(bodies).size).to.equal(bodies.length)
      // one start, then digests: at most one message per digest period
      const span = hook.hits.at(-1)!.at - hook.hits[0].at
      expect(hook.hits.length).to.be.at.most(Math.floor(span / 3000) + 2)

      // now it hangs: each message waits its 1 s timeout, one at a time
      hook.state.mode = 'hang'
      const before = hook.hits.length
      await until(() => /failed: no answer within 1000 ms/.test(run!.stderr()), 30_000, 'a timeout logged')
      const hangStart = hook.hits[before].at
      await new Promise((r) => setTimeout(r, 7000)) // a window of time to count the hits in: a storm would show many
      const during = hook.hits.slice(before)
      expect(during.length).to.be.at.least(2)
      expect(during.length).to.be.at.most(Math.floor((Date.now() - hangStart) / 3000) + 2)
      const h = await health(run)
      expect(h.alerts.failures.webhook).to.equal(metric(await metrics(run), 'audit_logs_alert_failures_total{channel="webhook"}'))
      expect(h.alerts.sent.webhook).to.equal(0)
      expect(h.alerts.active).to.deep.equal(['sink_failing:postgres'])
      // e-mail: refused at the login, each message once, the password shown nowhere
      expect(smtp.mails).to.have.length(0)
      expect(h.alerts.failures.email).to.be.at.least(2)
      expect(run.stderr()).to.match(new RegExp(`alerts: the email alert to smtp://127\\.0\\.0\\.1:${smtp.port} failed: Invalid login`))
      expect(run.stderr()).not.to.contain(SMTP_PASSWORD)

      const statuses = await traffic.stop()
      expect(statuses.length).to.be.greaterThan(20)
      expect(statuses.filter((s) => s !== 200)).to.deep.equal([])
      await relay.restore()
      // the sink delivers again before the stop (else the stop waits for its backoff), the webhook still hangs
      await until(async () => (await health(run!)).sinks.postgres.lastError === null, 60_000, 'the sink to deliver again')
      const stopped = await run.stop()
      expect(stopped, run.stderr()).to.deep.equal({exitCode: 0, signal: undefined})
      expect(run.stderr()).not.to.contain('s3cretW3bhookT0ken')
    } finally {
      await run?.stop()
      await hook.close()
      await smtp.close()
    }
  })

  it("records dead-lettered, the journal past its alert level, records dropped (whenFull drop): alerted in Slack's shape, set by a config file's alerts object; each ends once over", async () => {
    const hook = await webhookReceiver()
    let run: RunningServer | undefined
    try {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-alerts-'))
      const config = path.join(dir, 'audit-logs.config.mjs')
      writeFileSync(
        config,
        `export default {\n  whenFull: 'drop',\n  journalMaxBytes: 1048576,\n  alerts: {\n    webhookUrl: ${JSON.stringify(`http://127.0.0.1:${hook.port}/hooks/${TOKEN}`)},\n` +
          `    webhookFormat: 'slack',\n    sinkFailedMs: 600000,\n    journalFillPercent: 50,\n    digestMinutes: 0.05,\n  },\n}\n` +
          `export function mask(record) {\n  if (record.path === '/bad-hook') record.status_code = 'two hundred'\n  return record\n}\n`,
      )
      run = await startRun(
        ['--upstream', app.url, '--no-files', '--config', config],
        {AUDIT_LOGS_DATABASE_URL: through(db.url, relay.port)},
        {dir},
      )
      const texts = () => hook.hits.map((x) => JSON.parse(x.body) as {text: string})
      await request(`${run.url}/bad-hook`)
      await until(() => texts().some((t) => /ALERT records_dead_lettered \(postgres\)/.test(t.text)), 30_000, 'the dead-letter alert')
      expect(Object.keys(texts()[0])).to.deep.equal(['text']) // Slack's shape
      expect(texts()[0].text).to.contain('1 record(s) refused by sink postgres and kept in its dead-letter file')

      await relay.cut()
      const big = 'x'.repeat(7000)
      const load = sendLoops(8, async (k, i) => {
        await request(`${run!.url}/echo?k=${k}&i=${i}`, {method: 'POST', body: big, headers: {'content-type': 'text/plain'}}).catch(
          () => {},
        )
      })
      try {
        await until(() => texts().some((t) => /ALERT journal_fill/.test(t.text)), 60_000, 'the journal alert')
        await until(() => texts().some((t) => /records_dropped/.test(t.text)), 60_000, 'the drop alert')
      } finally {
        await load.stop()
      }
      await relay.restore()
      await until(() => texts().some((t) => /RESOLVED records_dropped/.test(t.text)), 60_000, 'the end of the drops')
      await until(() => texts().some((t) => /RESOLVED journal_fill/.test(t.text)), 60_000, 'the end of the journal alert')
      await until(() => texts().some((t) => /RESOLVED records_dead_lettered/.test(t.text)), 30_000, 'the end of the dead letters')
      const all = texts()
        .map((t) => t.text)
        .join('\n')
      for (const c of ['journal_fill', 'records_dead_lettered (postgres)']) expect(all.split(`- ALERT ${c}`).length - 1, all).to.equal(1)
      // drops reported by the workers in bursts may end (no more for a digest period) and start again: one start per
      // episode, one end per start, and the episodes no more often than the digest period allows
      const dropStarts = all.split('- ALERT records_dropped').length - 1
      expect(dropStarts, all)
        .to.be.at.least(1)
        .and.equal(all.split('- RESOLVED records_dropped').length - 1)
      expect(dropStarts, all).to.be.at.most(Math.floor((hook.hits.at(-1)!.at - hook.hits[0].at) / 3000) + 1)
      expect(all).to.match(/ALERT journal_fill: the journal is [\d.]+% full \(.* of its 1\.0 MB bound; alert level 50%\)/)
      expect(all).to.match(/ALERT records_dropped: \d+ record\(s\) dropped/)
      expect(all).not.to.contain('sink_failing') // its threshold is 10 minutes
      expect(all).not.to.contain('two hundred') // no record's content
      const dropped = metric(await metrics(run), 'audit_logs_records_dropped_total')
      expect(dropped).to.be.greaterThan(0)
      // every dropped record is in the end alerts' totals, once
      const ended = [...all.matchAll(/RESOLVED records_dropped: no more for \d+ s: (\d+) record\(s\) dropped since/g)].map((m) =>
        Number(m[1]),
      )
      expect(
        ended.reduce((a, b) => a + b, 0),
        all,
      ).to.equal(dropped)
    } finally {
      await run?.stop()
      await hook.close()
    }
  })

  it('refuses alert settings that do not go together or are malformed, naming the key and never showing the secret (exit 2)', async () => {
    const cases: Array<{env: Record<string, string>; says: RegExp; hides?: string}> = [
      {
        env: {AUDIT_LOGS_ALERT_SMTP_URL: `smtp://alerts:${SMTP_PASSWORD}@127.0.0.1:2525`},
        says: /alertSmtpUrl is set but alertEmailTo is empty/,
        hides: SMTP_PASSWORD,
      },
      {env: {AUDIT_LOGS_ALERT_EMAIL_TO: 'ops@example.com'}, says: /alertEmailTo \/ alertEmailFrom are set but alertSmtpUrl is not/},
      {
        env: {AUDIT_LOGS_ALERT_WEBHOOK_URL: `ftp://hooks.example.com/${TOKEN}`},
        says: /alertWebhookUrl = "ftp:\/\/hooks\.example\.com\/\*\*\*\*" \(from environment AUDIT_LOGS_ALERT_WEBHOOK_URL\)\. Accepted: an http:\/\/ or https:\/\/ URL/,
        hides: 's3cretW3bhookT0ken',
      },
      {env: {AUDIT_LOGS_ALERT_EMAIL_TO: 'ops@example.com,not an address'}, says: /alertEmailTo .*"not an address" is not one/},
      {env: {AUDIT_LOGS_ALERT_DIGEST_MINUTES: '0'}, says: /alertDigestMinutes = "0" .*at least 0\.05/},
      {env: {AUDIT_LOGS_ALERT_WEBHOOK_FORMAT: 'teams'}, says: /alertWebhookFormat = "teams" .*json .* or slack/},
    ]
    for (const c of cases) {
      const run = await startRun(['--upstream', app.url, '--no-database'], c.env, {expectFailure: true})
      const r = await run.child
      expect(r.exitCode, run.stderr()).to.equal(2)
      expect(run.stderr()).to.match(c.says)
      if (c.hides) expect(run.stderr()).not.to.contain(c.hides)
    }
    // the alerts object of a config file: an unknown key, a key given twice
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-alerts-'))
    const config = path.join(dir, 'bad.config.json')
    for (const [body, says] of [
      [
        {alerts: {webhookUrl: 'https://hooks.example.com/x', colour: 'red'}},
        /Unknown key "alerts\.colour" .*Accepted keys of alerts: webhookUrl, webhookFormat, smtpUrl/,
      ],
      [{alerts: {digestMinutes: 1}, alertDigestMinutes: 2}, /sets both alerts\.digestMinutes and alertDigestMinutes/],
      [{alerts: {digestMinutes: 'soon'}}, /alertDigestMinutes = "soon" \(from config file .* alerts\.digestMinutes\)/],
    ] as const) {
      writeFileSync(config, JSON.stringify(body))
      const bad = await startRun(['--upstream', app.url, '--no-database', '--config', config], {}, {expectFailure: true, dir})
      expect((await bad.child).exitCode, bad.stderr()).to.equal(2)
      expect(bad.stderr()).to.match(says)
    }
  })
})
