import zlib from 'node:zlib'
import {expect} from 'chai'
import {BodyTap, bodyText, decodeBody} from '../../src/capture/body.js'
import {suspiciousFlags} from '../../src/capture/attack-flags.js'
import {ClientIp} from '../../src/capture/client-ip.js'
import {Exclusions} from '../../src/capture/exclusions.js'
import {basicUser, jwtSubject, traceId, userFromHeaders} from '../../src/capture/identity.js'

const tapOf = (limit: number, ...chunks: Buffer[]) => {
  const t = new BodyTap(limit)
  for (const c of chunks) t.push(c)
  return t
}

describe('body tap and decoding', () => {
  it('keeps at most the bound and counts the original size', () => {
    const t = tapOf(10, Buffer.from('hello '), Buffer.from('world, and more'))
    expect(t.captured).to.equal(10)
    expect(t.size).to.equal(21)
    expect(t.truncated).to.equal(true)
    expect(bodyText(t, {'content-type': 'text/plain'})).to.deep.equal({
      text: 'hello worl',
      truncated: true,
      binary: false,
      bytes: Buffer.from('hello worl'),
    })
  })

  it('decodes gzip and brotli within the bound, even when the tap cut the stream', async () => {
    const text = JSON.stringify({items: Array.from({length: 2000}, (_, i) => ({i}))})
    const gz = zlib.gzipSync(text)
    const gzHeaders = {'content-encoding': 'gzip', 'content-type': 'application/json'}
    const decoded = async (tap: BodyTap, headers: Record<string, string>, limit: number) => {
      await decodeBody(tap, headers, limit)
      return bodyText(tap, headers)
    }
    const full = await decoded(tapOf(1 << 20, gz), gzHeaders, 100)
    expect(full.text).to.equal(text.slice(0, 100))
    expect(full.truncated).to.equal(true)
    const cut = await decoded(tapOf(200, gz), gzHeaders, 8192)
    expect(cut.text!.length).to.be.greaterThan(100)
    expect(text.startsWith(cut.text!)).to.equal(true)
    expect((await decoded(tapOf(1 << 20, zlib.brotliCompressSync('hi there')), {'content-encoding': 'br'}, 100)).text).to.equal('hi there')
    const bomb = zlib.gzipSync(Buffer.alloc(50 * 1024 * 1024))
    const bounded = await decoded(tapOf(1 << 20, bomb), {'content-encoding': 'gzip', 'content-type': 'text/plain'}, 8192)
    expect(bounded.text!.length).to.equal(8192)
  })

  it('records binary bodies by type and size, not as text', () => {
    expect(bodyText(tapOf(100, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2])), {'content-type': 'image/png'}).text).to.equal(
      '[binary image/png, 7 bytes]',
    )
    expect(bodyText(tapOf(100, Buffer.from([0xff, 0xfe, 0, 0x80, 0x81])), {}).binary).to.equal(true)
  })

  it('keeps invalid UTF-8 in a text body as replacement characters, and a cut character out', () => {
    expect(bodyText(tapOf(100, Buffer.from([0x61, 0xff, 0x62])), {'content-type': 'text/plain'}).text).to.equal('a\ufffdb')
    const euro = Buffer.from('a€', 'utf8') // 4 bytes; cut after 2
    expect(bodyText(tapOf(2, euro), {'content-type': 'text/plain'}).text).to.equal('a')
  })
})

describe('detection, identity, exclusions', () => {
  it('flags SQL injection, XSS, path traversal and scanners', () => {
    expect(suspiciousFlags("/items?id=1' OR '1'='1", null, 'curl')).to.deep.equal(['suspicious:sqli'])
    expect(suspiciousFlags('/search?q=<script>alert(1)</script>', null, undefined)).to.deep.equal(['suspicious:xss'])
    expect(suspiciousFlags('/files/..%2f..%2fetc/passwd', null, undefined)).to.include('suspicious:traversal')
    expect(suspiciousFlags('/', null, 'sqlmap/1.8')).to.deep.equal(['suspicious:scanner'])
    expect(suspiciousFlags('/api/orders?page=2', '{"a":1}', 'Mozilla/5.0')).to.deep.equal([])
  })

  it('flags attacks in bodies, every branch of the patterns (the quick pre-check misses none)', () => {
    const sqli = [
      '{"q":"x UNION ALL SELECT password FROM users"}',
      "name=a' or '1'='1",
      '{"id":"1 OR 1=1"}',
      '{"q":"1; DROP TABLE users"}',
      '{"q":"1 AND SLEEP(5)"}',
      '{"q":"BENCHMARK(1000000,md5(1))"}',
      '{"q":"select * from INFORMATION_SCHEMA.tables"}',
      '{"u":"admin\'--"}',
    ]
    for (const body of sqli) expect(suspiciousFlags('/api', body, undefined), body).to.include('suspicious:sqli')
    const xss = [
      '{"c":"<script>alert(1)</script>"}',
      '{"u":"JavaScript:alert(1)"}',
      '{"c":"<img src=x onerror=alert(1)>"}',
      '{"c":"< iframe src=//x>"}',
      '{"c":"<svg/onload=alert(1)>"}',
    ]
    for (const body of xss) expect(suspiciousFlags('/api', body, undefined), body).to.include('suspicious:xss')
    const benign = JSON.stringify({
      items: Array.from({length: 40}, (_, i) => ({sku: `SKU-${i}`, note: 'gift wrap, order soon', price: i * 1.5})),
    })
    expect(suspiciousFlags('/api/orders', benign, 'Mozilla/5.0')).to.deep.equal([])
  })

  it('believes X-Forwarded-For only through trusted proxies', () => {
    const ip = new ClientIp(['10.0.0.0/8', '127.0.0.1'])
    expect(ip.resolve('::ffff:127.0.0.1', '203.0.113.7, 10.1.2.3')).to.equal('203.0.113.7')
    expect(ip.resolve('198.51.100.1', '203.0.113.7')).to.equal('198.51.100.1')
    expect(new ClientIp([]).resolve('127.0.0.1', '1.2.3.4')).to.equal('127.0.0.1')
    expect(() => new ClientIp(['not-an-ip'])).to.throw(/not-an-ip/)
    expect(new ClientIp([]).resolve('fe80::1%eth0', undefined)).to.equal('fe80::1') // a zone is no part of an inet
    // one spelling per address, as PostgreSQL's host() writes it, so the files and the database count it once
    expect(ip.resolve('10.1.2.3', '2001:DB8:0:0::1')).to.equal('2001:db8::1')
    expect(ip.resolve('10.1.2.3', '::FFFF:192.0.2.1')).to.equal('192.0.2.1')
  })

  it("believes X-Forwarded-Proto, for the record's scheme, only from trusted proxies", () => {
    const ip = new ClientIp(['10.0.0.0/8'])
    expect(ip.scheme('10.1.2.3', 'https', 'http')).to.equal('https')
    expect(ip.scheme('::ffff:10.1.2.3', 'HTTPS, http', 'http')).to.equal('https') // the first proxy's
    expect(ip.scheme('198.51.100.1', 'https', 'http')).to.equal('http') // any client can send it
    expect(new ClientIp([]).scheme('10.1.2.3', 'https', 'http')).to.equal('http')
    expect(ip.scheme('10.1.2.3', undefined, 'http')).to.equal('http')
    expect(ip.scheme('10.1.2.3', '<script>', 'http')).to.equal('http') // not a scheme
  })

  it('reads the user from a JWT sub or basic auth, and the trace id from traceparent', () => {
    const token = `Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"u-7"}').toString('base64url')}.sig`
    expect(jwtSubject(token)).to.equal('u-7')
    expect(basicUser(`Basic ${Buffer.from('ann:pw').toString('base64')}`)).to.equal('ann')
    expect(traceId('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).to.equal('4bf92f3577b34da6a3ce929d0e0e4736')
  })

  it('keeps a user id to 256 characters whichever the client chose (basic auth, an unverified JWT)', () => {
    const long = 'u'.repeat(5000)
    const basic = {authorization: `Basic ${Buffer.from(`${long}:pw`).toString('base64')}`}
    const jwt = {
      authorization: `Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({sub: long})).toString('base64url')}.sig`,
    }
    for (const headers of [basic, jwt]) expect(userFromHeaders(headers, undefined)).to.equal('u'.repeat(256))
    expect(userFromHeaders({}, long)).to.equal('u'.repeat(256))
    expect(userFromHeaders({}, undefined)).to.equal(null)
  })

  it('excludes by path prefix or glob, extension and method', () => {
    const ex = new Exclusions({paths: ['/health/', '/internal/**'], extensions: ['.css', 'png'], methods: ['options']})
    expect(ex.excludes('GET', '/health')).to.equal(true)
    expect(ex.excludes('GET', '/health/live')).to.equal(true)
    expect(ex.excludes('GET', '/internal/a/b')).to.equal(true)
    expect(ex.excludes('GET', '/static/app.CSS')).to.equal(true)
    expect(ex.excludes('OPTIONS', '/api')).to.equal(true)
    expect(ex.excludes('GET', '/api/v1.2/items')).to.equal(false)
  })
})
