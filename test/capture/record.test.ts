import {gzipSync} from 'node:zlib'
import {expect} from 'chai'
import {BodyTap} from '../../src/capture/body.js'
import {RecordBuilder} from '../../src/capture/builder.js'
import {jsonStringBound, jsonStringLength, writeJsonString} from '../../src/capture/json-bytes.js'
import {Masker} from '../../src/capture/masking.js'
import {type Exchange, type RecordOptions, requestLine} from '../../src/capture/record.js'
import {DEFAULT_SENSITIVE_FIELDS, DEFAULT_SENSITIVE_HEADERS} from '../../src/config/schema.js'

const masker = new Masker({fields: DEFAULT_SENSITIVE_FIELDS, headers: DEFAULT_SENSITIVE_HEADERS})
const options: RecordOptions = {masker, maxBodyLength: 8192, slowMs: 1000, instance: 'test', hooks: {}}

/** A pseudo-random generator with a seed, so a failure can be replayed. */
function random(seed: number) {
  let s = seed >>> 0
  return (n: number) => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0
    return s % n
  }
}

function exchange(requestBody: string | Buffer, responseBody: string | Buffer, type = 'application/json', limit = 8192): Exchange {
  const tap = (body: string | Buffer) => {
    const t = new BodyTap(limit)
    t.push(Buffer.from(body))
    return t
  }
  return {
    id: '018f0000-0000-7000-8000-000000000000',
    start: Date.UTC(2026, 10, 24),
    method: 'POST',
    scheme: 'http',
    host: 'app',
    url: '/orders',
    requestHeaders: {'content-type': type},
    requestBody: tap(requestBody),
    status: 200,
    responseHeaders: {'content-type': type},
    responseBody: tap(responseBody),
    responseSize: Buffer.byteLength(responseBody),
    durationMs: 1,
    ip: '127.0.0.1',
  }
}

const parse = (line: string | Buffer) => JSON.parse(line.toString()) as Record<string, unknown>

describe('request records', () => {
  it('hold every body as maskBody() gives it, whether its bytes are kept or it is masked as text', () => {
    const bodies = [
      JSON.stringify({order: {customer: 'c-1', lines: [{sku: 'SKU-1', qty: 2, note: 'gift "wrap"\\ \t\n\r\b\f\u0001\u001f\u007f'}]}}),
      JSON.stringify({user: 'a', password: 'hunter2'}),
      JSON.stringify({'API-KEY': 'k-1', nested: [{Pass_Word: 'p-1'}]}),
      '{"pass\\u0077ord":"esc-secret"}',
      'user=a&pass%77ord=pct-secret',
      'auth Bearer abcdefghij0123',
      'jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2ln here',
      'card 4111 1111 1111 1111 here, not 1234',
      'café ünïcödé € 𝄞 "quoted"',
      'no secrets, plain text with digits 123456789012 and a - dash',
      '',
    ]
    // each as it is, and longer than the size from which clean bodies keep their bytes (whitespace keeps JSON valid)
    for (const a of bodies.flatMap((b) => [b, b === '' ? b : b + ' '.repeat(600)])) {
      for (const type of ['application/json', 'text/plain']) {
        const record = parse(requestLine(exchange(a, a, type), options, null))
        const expected = a === '' ? null : masker.maskBody(a, type, true)
        expect(record.request_body, `${type}: ${a}`).to.equal(expected)
        expect(record.response_body, `${type}: ${a}`).to.equal(expected)
      }
    }
  })

  it('put the bodies last and keep the other fields, for a clean body and a masked one alike', () => {
    const long = JSON.stringify({items: Array.from({length: 40}, (_, i) => ({id: i, name: `item "${i}"`}))})
    const clean = requestLine(exchange(long, '{"ok":true}'), options, 'u-1') // bytes kept, and a short body
    const masked = requestLine(exchange('{"password":"x"}', '{"token":"y"}'), options, 'u-1')
    expect(clean).to.be.instanceOf(Buffer)
    expect(clean.toString()).to.contain(`,"request_body":${JSON.stringify(long)},"response_body":"{\\"ok\\":true}"}`)
    expect(Object.keys(parse(clean))).to.deep.equal(Object.keys(parse(masked)))
    expect(Object.keys(parse(clean)).slice(-2)).to.deep.equal(['request_body', 'response_body'])
    expect(parse(clean)).to.include({
      log_type: 'request',
      user_id: 'u-1',
      request_body: long,
      response_body: '{"ok":true}',
      request_body_size: long.length,
    })
    expect(parse(masked)).to.include({request_body: '{"password":"****"}', response_body: '{"token":"****"}'})
  })

  it('keep the bytes of bodies of any size up to the full-body cap, in a buffer sized for them', () => {
    const full: RecordOptions = {...options, maxBodyLength: 1024 * 1024}
    for (const size of [600, 20_000, 200_000, 1024 * 1024]) {
      const body = JSON.stringify({rows: 'a "quoted" \\ row\n'.repeat(size)}).slice(0, size)
      const line = requestLine(exchange(body, body, 'application/json', full.maxBodyLength), full, null)
      expect(line, String(size)).to.be.instanceOf(Buffer)
      expect(parse(line)).to.include({request_body: body, response_body: body})
    }
  })

  it('give the config mask() hook the whole record, bodies as text', () => {
    const hooked: RecordOptions = {...options, hooks: {mask: (r) => ({...r, request_body: String(r.request_body).toUpperCase()})}}
    expect(parse(requestLine(exchange('{"a":"b"}', '{}'), hooked, null))).to.include({request_body: '{"A":"B"}', response_body: '{}'})
  })

  it('never call a body clean that the text rules would change (names split across the scan, in any case, with separators)', () => {
    const rand = random(42)
    const names = [...DEFAULT_SENSITIVE_FIELDS, 'bearer', 'Basic', 'TOKEN', 'digest', 'eyJ']
    const filler = 'abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789{}[]":,.-_\t\n\\/uU%'
    let clean = 0
    for (let n = 0; n < 20_000; n++) {
      let text = ''
      const length = rand(80)
      for (let i = 0; i < length; i++) text += filler[rand(filler.length)]
      if (rand(2)) {
        // a name at a random place, with separators between some of its letters and its case changed
        const name = names[rand(names.length)]
        let spelled = ''
        for (const c of name) spelled += (rand(2) ? c.toUpperCase() : c) + (rand(4) === 0 ? ['-', '_', ' ', '.', '\n', '  '][rand(6)] : '')
        const at = rand(text.length + 1)
        text = text.slice(0, at) + spelled + text.slice(at)
      }
      if (rand(4) === 0) {
        // digits in a row, some apart by one separator or two, anywhere (a card number is 13 and more)
        let digits = ''
        for (let i = 8 + rand(10); i > 0; i--) digits += String(rand(10)) + (rand(5) === 0 ? [' ', '-', '  ', '_'][rand(4)] : '')
        const at = rand(text.length + 1)
        text = text.slice(0, at) + digits + text.slice(at)
      }
      const bytes = Buffer.from(text)
      if (!masker.isCleanAscii(bytes)) continue
      clean++
      expect(masker.mentionsField(text), text).to.equal(false)
      expect(masker.maskBody(text, 'application/json', true), text).to.equal(text)
      expect(masker.maskBody(text, 'text/plain', false), text).to.equal(text)
      expect(masker.maskText(text), text).to.equal(text)
    }
    expect(clean).to.be.greaterThan(1000) // the property was tested, not skipped
  })

  it('turn away bytes outside ASCII and NUL, and names a masker was given outside ASCII', () => {
    expect(masker.isCleanAscii(Buffer.from('plain'))).to.equal(true)
    expect(masker.isCleanAscii(Buffer.from('café'))).to.equal(false)
    expect(masker.isCleanAscii(Buffer.from('a\u0000b'))).to.equal(false)
    const custom = new Masker({fields: ['contraseña'], headers: []})
    expect(custom.isCleanAscii(Buffer.from('plain'))).to.equal(false)
  })

  it('write bytes as a JSON string exactly as JSON.stringify does, and know its length', () => {
    const rand = random(7)
    const out = Buffer.alloc(jsonStringBound(300))
    for (let n = 0; n < 2000; n++) {
      let text = ''
      for (let i = rand(300); i > 0; i--) text += String.fromCharCode(rand(128))
      const bytes = Buffer.from(text, 'latin1')
      const end = writeJsonString(bytes, out, 0)
      expect(out.toString('latin1', 0, end)).to.equal(JSON.stringify(text))
      expect(jsonStringLength(bytes)).to.equal(end)
    }
  })
})

describe('the record builder', () => {
  it('counts the records of exchanges still being built (a compressed body being decoded), for a shutdown to report them', async () => {
    const lines: Array<string | Uint8Array> = []
    const builder = new RecordBuilder(options, (l) => lines.push(l))
    const x = exchange(JSON.stringify({a: 1}), gzipSync(JSON.stringify({b: 2})))
    x.responseHeaders['content-encoding'] = 'gzip'
    const excluded = exchange('', '')
    const building = [builder.build(x, true), builder.build(excluded, false)]
    expect(builder.pendingRecords).to.equal(2) // the full exchange's request and access records (the excluded one's access record is written at once)
    expect(lines).to.have.length(1)
    await Promise.all(building)
    expect(builder.pendingRecords).to.equal(0)
    expect(lines).to.have.length(3)
  })
})
