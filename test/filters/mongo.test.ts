import {expect} from 'chai'
import {toMongo} from '../../src/filters/mongo.js'
import {type FilterInput, parseFilter} from '../../src/filters/parse.js'

const NOW = new Date('2026-11-24T12:00:00Z')
const mongo = (input: FilterInput) => toMongo(parseFilter(input, NOW))

/** The operators toMongo writes, and the fields of the documents (stores/mongo/documents.ts) it names. */
const OPERATORS = new Set(['$and', '$or', '$eq', '$in', '$nin', '$ne', '$gt', '$gte', '$lt', '$lte', '$regex', '$options'])
const FIELDS = new Set(['created_at', 'status_code', 'method', 'path', 'url', 'user_id', '_ip', 'duration_ms', 'flags'])
const FIELDS_ALSO = new Set(['request_body', 'response_body'])

/** Every key of a query document, with the operator (or field) it sits under and each string operand. */
function walk(value: unknown, under: string, keys: string[], operands: Array<[string, string]>): void {
  if (Array.isArray(value)) for (const v of value) walk(v, under, keys, operands)
  else if (value instanceof Date) return
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) {
      keys.push(k)
      walk(v, k, keys, operands)
    }
  else if (typeof value === 'string') operands.push([under, value])
}

describe('filter language: as a MongoDB query document', () => {
  it('translates each flag with the meaning of the SQL', () => {
    expect(mongo({})).to.deep.equal({})
    expect(mongo({status: '500'})).to.deep.equal({status_code: {$eq: 500}})
    expect(mongo({status: '4xx,>=500'})).to.deep.equal({$or: [{status_code: {$gte: 400, $lte: 499}}, {status_code: {$gte: 500}}]})
    // `<> ALL(...)` in PostgreSQL is not true for a row without a status: $nin alone would select it
    expect(mongo({status: '!=200,!=204'})).to.deep.equal({status_code: {$nin: [200, 204], $ne: null}})
    expect(mongo({method: 'get,POST'})).to.deep.equal({method: {$in: ['GET', 'POST']}})
    expect(mongo({since: '24h', until: '1h'})).to.deep.equal({
      created_at: {$gte: new Date('2026-11-23T12:00:00Z'), $lt: new Date('2026-11-24T11:00:00Z')},
    })
    expect(mongo({minDuration: '500ms', maxDuration: '2s'})).to.deep.equal({
      $and: [{duration_ms: {$gte: 500}}, {duration_ms: {$lte: 2000}}],
    })
    expect(mongo({flag: 'slow'})).to.deep.equal({flags: {$eq: 'slow'}})
    expect(mongo({flag: 'suspicious'})).to.deep.equal({flags: {$regex: '^suspicious'}})
    expect(mongo({flag: 'suspicious:sqli'})).to.deep.equal({flags: {$eq: 'suspicious:sqli'}})
  })

  it('paths as anchored regular expressions; an access url may end in a query', () => {
    expect(mongo({path: '/api/*'})).to.deep.equal({path: {$regex: '^/api/[^/]*$'}})
    expect(mongo({path: '/api/v1.0/**'})).to.deep.equal({path: {$regex: '^/api/v1\\.0/.*$'}})
    expect(mongo({path: '~^/api/v[12]/'})).to.deep.equal({path: {$regex: '^/api/v[12]/'}})
    expect(mongo({path: '/api/*', logType: 'access'})).to.deep.equal({url: {$regex: '^/api/[^/]*(\\?|$)'}})
    expect(new RegExp((mongo({path: '/api/*', logType: 'access'}).url as {$regex: string}).$regex).test('/api/x?page=2')).to.equal(true)
  })

  it('addresses and CIDR ranges, IPv4 and IPv6, as ranges of the fixed-width key', () => {
    expect(mongo({ip: '10.1.2.3'})).to.deep.equal({_ip: {$eq: '40a010203'}})
    expect(mongo({ip: '10.1.0.0/16'})).to.deep.equal({_ip: {$gte: '40a010000', $lte: '40a01ffff'}})
    expect(mongo({ip: '10.1.2.3/12'})).to.deep.equal({_ip: {$gte: '40a000000', $lte: '40a0fffff'}}) // host bits ignored, as inet's <<=
    expect(mongo({ip: '::1'})).to.deep.equal({_ip: {$eq: '6' + '0'.repeat(31) + '1'}})
    expect(mongo({ip: '2001:db8::/32'})).to.deep.equal({_ip: {$gte: '620010db8' + '0'.repeat(24), $lte: '620010db8' + 'f'.repeat(24)}})
    expect(mongo({ip: '0.0.0.0/0'})).to.deep.equal({_ip: {$gte: '400000000', $lte: '4ffffffff'}}) // IPv4 only, as PostgreSQL
  })

  it('search: the text, its regex characters escaped, case-insensitive, in either body', () => {
    const needle = {$regex: 'a\\.\\*b\\(\\$where\\)', $options: 'i'}
    expect(mongo({search: 'a.*b($where)'})).to.deep.equal({$or: [{request_body: needle}, {response_body: needle}]})
    expect(new RegExp(needle.$regex, 'i').test('xx A.*B($WHERE) yy')).to.equal(true)
    expect(new RegExp(needle.$regex, 'i').test('aXXb$where')).to.equal(false)
  })

  it('never lets user text become a key or an operator: hostile values are operands of our own operators', () => {
    const hostile = ['{"$gt": ""}', '$where', '{"$where": "sleep(1000)"}', '$ne', "this.a == 1 || '1'=='1'", '__proto__', 'constructor']
    for (const text of hostile) {
      for (const input of [
        {user: text},
        {search: text},
        {path: `/${text}`},
        {path: `~${text.replace(/[()[\]{}*+?|\\]/g, '')}`},
      ] as FilterInput[]) {
        const keys: string[] = []
        const operands: Array<[string, string]> = []
        walk(mongo(input), '', keys, operands)
        for (const k of keys)
          expect(OPERATORS.has(k) || FIELDS.has(k) || FIELDS_ALSO.has(k), `key ${k} of ${JSON.stringify(input)}`).to.equal(true)
        // each string is the operand of $eq, $in or $regex, never a value standing for a sub-document
        for (const [op] of operands) expect(['$eq', '$regex', '$options', '$in'], JSON.stringify(input)).to.include(op)
      }
      expect(mongo({user: text})).to.deep.equal({user_id: {$eq: text}})
    }
  })
})
