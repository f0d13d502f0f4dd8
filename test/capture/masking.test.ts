import {expect} from 'chai'
import {DEFAULT_SENSITIVE_FIELDS, DEFAULT_SENSITIVE_HEADERS} from '../../src/config/schema.js'
import {Masker, luhn} from '../../src/capture/masking.js'

const m = new Masker({fields: DEFAULT_SENSITIVE_FIELDS, headers: DEFAULT_SENSITIVE_HEADERS})
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ'

describe('masking', () => {
  it('matches keys case-insensitively and by substring', () => {
    for (const key of [
      'password',
      'Password',
      'PASSWORD',
      'user_password',
      'passwd',
      'access_token',
      'refreshToken',
      'api_key',
      'apiKey',
      'X-Api-Key',
      'client_secret',
      'card_number',
      'creditCard',
      'Authorization',
    ]) {
      expect(m.isSensitiveKey(key), key).to.equal(true)
    }
    for (const key of ['user', 'email', 'path', 'status']) expect(m.isSensitiveKey(key), key).to.equal(false)
  })

  it('masks JSON bodies by key, nested and in arrays, and strings that hold secrets', () => {
    const body = JSON.stringify({
      user: 'a',
      Password: 'p1',
      profile: {refreshToken: 'r1', list: [{api_key: 'k1'}, 'Bearer abcdefghij']},
      note: 'see ?token=t1&x=2',
    })
    const out = m.maskBody(body, 'application/json', true)
    for (const s of ['p1', 'r1', 'k1', 'abcdefghij', 't1']) expect(out).to.not.contain(s)
    expect(JSON.parse(out).user).to.equal('a')
  })

  it('masks malformed or truncated JSON by the text rules, never raw', () => {
    const out = m.maskBody('{"user":"a","password":"hunter2","token":"abc', 'application/json', false)
    expect(out)
      .to.not.contain('hunter2')
      .and.not.contain('abc"')
      .and.not.match(/"token":"abc/)
    expect(m.maskBody('{"password": "x1" , oops', 'application/json', true)).to.not.contain('x1')
  })

  it('masks form-urlencoded, multipart and XML fields', () => {
    expect(m.maskBody('user=a&password=hunter2&card_number=4111', 'application/x-www-form-urlencoded', true)).to.equal(
      'user=a&password=****&card_number=****',
    )
    const multipart =
      '--b\r\nContent-Disposition: form-data; name="password"\r\n\r\nhunter2\r\n--b\r\nContent-Disposition: form-data; name="user"\r\n\r\nann\r\n--b--'
    const out = m.maskBody(multipart, 'multipart/form-data; boundary=b', true)
    expect(out).to.not.contain('hunter2')
    expect(out).to.contain('ann')
    expect(m.maskBody('<login><user>a</user><password>hunter2</password></login>', 'application/xml', true)).to.not.contain('hunter2')
  })

  it('masks secret-looking values anywhere: bearer tokens, JWTs, card numbers passing Luhn', () => {
    const out = m.maskText(`auth Bearer tok_123456789 and ${JWT} card 4111 1111 1111 1111 but not 1234 5678 9012 3456`)
    expect(out).to.not.contain('tok_123456789').and.not.contain(JWT).and.not.contain('4111 1111 1111 1111')
    expect(out).to.contain('1234 5678 9012 3456')
    expect(luhn('4111111111111111')).to.equal(true)
    expect(luhn('1234567890123456')).to.equal(false)
  })

  it('finds card numbers in every grouping among many shorter numbers (the quick pre-scan misses none)', () => {
    const cards = [
      '4111111111111111',
      '4111 1111 1111 1111',
      '4111-1111-1111-1111',
      '3782 822463 10005',
      '4-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1',
      '6011000990139424',
      '4222222222222',
      '6304 0000 0000 0000 018',
    ]
    for (const card of cards) {
      const text = JSON.stringify({
        items: Array.from({length: 50}, (_, i) => ({sku: `SKU-${1000 + i}`, price: i * 1.5, phone: '555 0100'})),
        note: `paid with ${card}.`,
      })
      const out = m.maskValues(text)
      expect(out, card).to.not.contain(card)
      expect(out).to.contain('SKU-1049').and.contain('555 0100')
    }
  })

  it('masks headers, keeping the scheme and cookie names', () => {
    const h = m.headers({
      authorization: 'Bearer abc.def',
      'proxy-authorization': 'Basic dXNlcjpwYXNz',
      cookie: 'sid=s1; theme=dark',
      'set-cookie': ['sid=s2; Path=/; HttpOnly'],
      'x-api-key': 'k1',
      'x-refresh-token': 'r1',
      accept: 'text/html',
    })
    expect(h).to.deep.equal({
      authorization: 'Bearer ****',
      'proxy-authorization': 'Basic ****',
      cookie: 'sid=****; theme=****',
      'set-cookie': ['sid=****; Path=/; HttpOnly'],
      'x-api-key': '****',
      'x-refresh-token': '****',
      accept: 'text/html',
    })
  })

  it('masks query strings by key and value', () => {
    expect(m.query('a=1&password=p&a=2&q=' + JWT)).to.deep.equal({a: ['1', '2'], password: '****', q: '****'})
    expect(m.url('/x?access_token=t&page=2')).to.equal('/x?access_token=****&page=2')
  })

  it('survives JSON nested 10,000 deep', () => {
    const deep = '['.repeat(10_000) + '{"password":"deep-secret"}' + ']'.repeat(10_000)
    const out = m.maskBody(deep, 'application/json', true)
    expect(out).to.not.contain('deep-secret')
  })

  it('uses a configured field list', () => {
    const custom = new Masker({fields: ['pin'], headers: []})
    expect(custom.maskBody('{"pin":"1234","password":"kept"}', 'application/json', true)).to.equal('{"pin":"****","password":"kept"}')
  })
})

describe('masking fast path', () => {
  it('finds a field name in text as keys are compared: any case, separators anywhere, names that prefix others', () => {
    const m = new Masker({fields: ['password', 'passwd', 'pass', 'api_key', 'apikey', 'ssn', 'x+y'], headers: []})
    const found = ['"PASSWORD":1', 'p_a-s.s w o r d', 'passwd', 'a pass b', 'xApiKey', 'api-key', 'SSN', 'x+y', 'X + Y']
    const missed = ['pas', 'api', 'ssx', 'xy', 'sn', 'p a s']
    for (const t of found) expect(m.mentionsField(t), t).to.equal(true)
    for (const t of missed) expect(m.mentionsField(t), t).to.equal(false)
    expect(new Masker({fields: [], headers: []}).mentionsField('password')).to.equal(false)
  })

  it('leaves a body that names no sensitive field as sent, but still masks secret-looking values in it', () => {
    const body = JSON.stringify({order: {sku: 'SKU-1', qty: 2}, note: `pay with 4111-1111-1111-1111 and ${JWT}`})
    const out = m.maskBody(body, 'application/json', true)
    expect(out).to.not.contain('4111-1111-1111-1111')
    expect(out).to.not.contain(JWT)
    expect(out).to.contain('"sku":"SKU-1"')
  })

  it('takes the full path when keys could hide behind escapes the app decodes', () => {
    expect(m.maskBody('{"pass\\u0077ord":"esc-secret"}', 'application/json', true)).to.not.contain('esc-secret')
    expect(m.maskBody('user=a&pass%77ord=pct-secret', 'application/x-www-form-urlencoded', true)).to.not.contain('pct-secret')
    expect(m.maskBody('{"API-KEY":"k-1","Pass Word":"p-1"}', 'application/json', true)).to.not.match(/k-1|p-1/)
  })
})
