import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {AlertEvaluator, type AlertSample} from '../../src/alerts/conditions.js'
import {type Channel, Outbox, webhookChannel} from '../../src/alerts/channels.js'
import {webhookBody} from '../../src/alerts/message.js'
import {resolveConfig} from '../../src/config/resolve.js'
import {TEMPLATE} from '../../src/scaffold/server-config.js'
import {registerEndpoint, redactEndpoint, redactText} from '../../src/util/redact.js'
import {webhookReceiver} from '../helpers/alert-receivers.js'

const T = {sinkFailedMs: 10_000, journalFillPercent: 80, digestMs: 60_000}
const sample = (at: number, over: Partial<AlertSample> = {}): AlertSample => ({
  at,
  sinks: [{name: 'postgres', failures: 0, rejected: 0, lagBytes: 0}],
  dropped: 0,
  journal: {pendingBytes: 0, maxBytes: 1000},
  ...over,
})
const failing = (failures: number, down = true) => [
  {name: 'postgres', failures, rejected: 0, lagBytes: 2048, lastError: down ? 'connect ECONNREFUSED' : undefined},
]

describe('alerts: the storm rules (pure evaluator)', () => {
  it('a sink failing: nothing before the threshold, one start, a digest at most every period, one end', () => {
    const e = new AlertEvaluator(T)
    const states: string[] = []
    for (let s = 0; s <= 200; s++) {
      const down = s >= 5 && s < 150
      for (const i of e.sample(sample(s * 1000, {sinks: down ? failing(s) : failing(s, false)}))) states.push(`${s}:${i.state}`)
    }
    // failing from 5 s: started at 15 s; digests at 75 and 135 s; delivering again at 150 s
    expect(states).to.deep.equal(['15:started', '75:ongoing', '135:ongoing', '150:ended'])
  })

  it("a failing sink's alert says how long its oldest waiting record has waited, when the shipping thread measured it", () => {
    const e = new AlertEvaluator(T)
    const items = [...Array(20).keys()].flatMap((s) =>
      e.sample(sample(s * 1000, {sinks: [{...failing(s)[0], lagMs: s >= 10 ? 180_000 + s * 1000 : undefined}]})),
    )
    expect(items).to.have.length(1)
    expect(items[0].text).to.match(/; 2\.0 kB wait in the journal, the oldest for 3 min$/)
    const before = new AlertEvaluator(T)
    const unmeasured = [...Array(20).keys()].flatMap((s) => before.sample(sample(s * 1000, {sinks: failing(s)})))
    expect(unmeasured[0].text).to.match(/wait in the journal$/)
  })

  it('a sink that recovers before the threshold alerts nothing', () => {
    const e = new AlertEvaluator(T)
    const out = [...Array(30).keys()].flatMap((s) => e.sample(sample(s * 1000, {sinks: s % 10 < 8 ? failing(s) : failing(s, false)})))
    expect(out).to.deep.equal([])
  })

  it('drops: one start, digests of what came since, the end a period after the last drop, with the total; no record content', () => {
    const e = new AlertEvaluator(T)
    const items = [...Array(300).keys()].flatMap((s) => e.sample(sample(s * 1000, {dropped: s < 10 ? 0 : Math.min(s, 100) * 3})))
    expect(items.map((i) => `${Date.parse(i.at) / 1000}:${i.state}`)).to.deep.equal([
      '10:started',
      '70:ongoing',
      '130:ongoing',
      '160:ended',
    ])
    expect(items[0].counts).to.deep.equal({records: 30})
    expect(items[1].counts).to.deep.equal({records: 210, recordsSinceLast: 180})
    expect(items[2].counts).to.deep.equal({records: 300, recordsSinceLast: 90})
    expect(items[3].counts).to.deep.equal({records: 300, recordsSinceLast: 0}) // 60 s after the last drop (at 100 s)
    expect(items[3].text).to.match(/^no more for 60 s: 300 record\(s\) dropped since /)
  })

  it('the journal: starts at its level, ends below 90% of it (no flapping at the level)', () => {
    const e = new AlertEvaluator(T)
    const fills = [10, 80, 79, 81, 75, 73, 71, 50]
    const items = fills.flatMap((f, s) => e.sample(sample(s * 1000, {journal: {pendingBytes: f * 10, maxBytes: 1000}})))
    expect(items.map((i) => `${i.state}:${i.counts.percent}`)).to.deep.equal(['started:80', 'ended:71'])
    expect(items[1].counts.peakPercent).to.equal(81)
  })

  it('an outbox sends one message at a time: what comes meanwhile is folded into the next (a newer digest replaces an older one)', async () => {
    const sent: string[][] = []
    let release: () => void = () => {}
    const channel: Channel = {
      name: 'webhook',
      shown: 'http://x',
      send: (items) => {
        sent.push(items.map((i) => `${i.condition}:${i.state}:${i.at}`))
        return new Promise<void>((r) => (release = r))
      },
      close() {},
    }
    const outcomes: boolean[] = []
    const box = new Outbox(channel, (ok) => outcomes.push(ok))
    const item = (state: 'started' | 'ongoing' | 'ended', at: string) => ({
      condition: 'records_dropped' as const,
      state,
      since: '0',
      at,
      text: '',
      counts: {},
    })
    box.add([item('started', '1')])
    for (let k = 2; k < 100; k++) box.add([item('ongoing', String(k))])
    box.add([item('ended', '100')])
    expect(sent).to.have.length(1)
    release()
    await box.idle()
    await new Promise((r) => setImmediate(r))
    expect(sent).to.deep.equal([['records_dropped:started:1'], ['records_dropped:ongoing:99', 'records_dropped:ended:100']])
    release()
    await box.idle()
    expect(outcomes).to.deep.equal([true, true])
  })

  it("Slack's shape is {text} alone; the JSON shape names the instance and carries the items", () => {
    const items = new AlertEvaluator({...T, sinkFailedMs: 0}).sample(sample(0, {sinks: failing(1)}))
    expect(Object.keys(JSON.parse(webhookBody('slack', 'web-1', items, new Date(0))))).to.deep.equal(['text'])
    const json = JSON.parse(webhookBody('json', 'web-1', items, new Date(0)))
    expect(json).to.include({source: 'audit-logs', instance: 'web-1', sentAt: '1970-01-01T00:00:00.000Z'})
    expect(json.alerts[0]).to.include({condition: 'sink_failing', sink: 'postgres', state: 'started'})
  })
})

describe('alerts: configuration', () => {
  const env = {AUDIT_LOGS_DATA_DIR: '/tmp/x'}
  it("a config file's alerts object sets the flat keys; the webhook URL is registered as a secret", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-alerts-config-'))
    const file = path.join(dir, 'audit-logs.config.json')
    const url = 'https://hooks.example.com/services/T1/B2/zzTopSecretPathToken'
    writeFileSync(file, JSON.stringify({alerts: {webhookUrl: url, webhookFormat: 'slack', emailTo: ['a@example.com'], digestMinutes: 0.5}}))
    const c = await resolveConfig({configFile: file, env, cwd: dir})
    expect(c).to.include({alertWebhookUrl: url, alertWebhookFormat: 'slack', alertDigestMinutes: 0.5, alertSinkFailedMs: 60_000})
    expect(c.alertEmailTo).to.deep.equal(['a@example.com'])
    expect(redactText(`POST ${url} failed`)).not.to.contain('zzTopSecretPathToken')
    expect(redactEndpoint(url)).to.equal('https://hooks.example.com/****')
  })

  it('the scaffolded config shows the alerts keys, and they resolve once uncommented', async () => {
    const template = readFileSync(TEMPLATE, 'utf8')
    const block = /\/\/ alerts: \{\n([^]*?)\/\/ \},\n/.exec(template)
    expect(block, 'the alerts block of the template').to.not.equal(null)
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-alerts-config-'))
    const file = path.join(dir, 'audit-logs.config.mjs')
    writeFileSync(file, `export default {\n  alerts: {\n${block![1].replace(/^(\s*)\/\/ /gm, '$1')}  },\n}\n`)
    const c = await resolveConfig({configFile: file, env, cwd: dir})
    expect(c).to.include({alertWebhookFormat: 'json', alertJournalFillPercent: 80, alertDigestMinutes: 15})
  })
})

describe('alerts: a webhook URL with a user and password (Basic authentication)', () => {
  const PASSWORD = 'h00k/p@ss:w0rd'
  const encoded = encodeURIComponent(PASSWORD)
  const basic = `Basic ${Buffer.from(`hook-user:${PASSWORD}`).toString('base64')}`
  const env = {AUDIT_LOGS_DATA_DIR: '/tmp/x'}

  it('is sent as Authorization: Basic to the URL without them, and the alert arrives; no failure shows the password', async () => {
    const hook = await webhookReceiver()
    try {
      const url = `http://hook-user:${encoded}@127.0.0.1:${hook.port}/hooks/T1`
      // what run does with it: the setting is valid, and the URL registered as a secret
      const c = await resolveConfig({env: {...env, AUDIT_LOGS_ALERT_WEBHOOK_URL: url}, noConfigFile: true})
      expect(c.alertWebhookUrl).to.equal(url)
      registerEndpoint(url)
      const channel = webhookChannel(url, 'json', 'web-1', 5000)
      expect(channel.shown).to.equal(`http://127.0.0.1:${hook.port}/****`)
      const items = new AlertEvaluator({...T, sinkFailedMs: 0}).sample(sample(0, {sinks: failing(1)}))
      await channel.send(items)
      expect(hook.hits).to.have.length(1)
      expect(hook.hits[0]).to.include({path: '/hooks/T1', authorization: basic})
      expect(JSON.parse(hook.hits[0].body).alerts[0]).to.include({condition: 'sink_failing', state: 'started'})

      // a failure's message (what run logs) holds neither the password nor the header
      hook.state.mode = 500
      const error = await channel.send(items).then(
        () => undefined,
        (e: Error) => e,
      )
      expect(error?.message).to.equal('HTTP 500')
      const logged = redactText(`the webhook alert to ${url} failed (${basic}): ${error?.message}`)
      for (const secret of [PASSWORD, encoded, basic.slice(6)]) expect(logged).not.to.contain(secret)

      // without a user and password: no Authorization header
      hook.state.mode = 'ok'
      await webhookChannel(`http://127.0.0.1:${hook.port}/hooks/T2`, 'json', 'web-1', 5000).send(items)
      expect(hook.hits.at(-1)).to.include({path: '/hooks/T2', authorization: undefined})
    } finally {
      await hook.close()
    }
  })

  it("refuses a user name with a ':' (Basic authentication cannot send it) and a malformed %, without showing the password", async () => {
    for (const [url, says] of [
      [`https://hook%3Auser:${encoded}@hooks.example.com/x`, /alertWebhookUrl .*user name holds a ':'/],
      [`https://hook-user:bad%zz${encoded}@hooks.example.com/x`, /alertWebhookUrl .*has a % that starts no %XX/],
    ] as const) {
      const error = await resolveConfig({env: {...env, AUDIT_LOGS_ALERT_WEBHOOK_URL: url}, noConfigFile: true}).then(
        () => undefined,
        (e: Error) => e,
      )
      expect(error?.message, url).to.match(says)
      expect(error?.message).not.to.contain(encoded).and.not.to.contain(PASSWORD)
    }
  })
})
