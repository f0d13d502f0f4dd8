import {runCommand} from '@oclif/test'
import {expect} from 'chai'
import {TABLES} from '../../src/stores/postgres/partitions.js'
import {ROOT} from '../helpers/cli.js'
import {type TestDatabase, freshDatabase} from '../helpers/db.js'

describe('commands in-process (@oclif/test)', () => {
  let db: TestDatabase
  before(async () => {
    db = await freshDatabase({migrated: true})
  })
  after(() => db.drop())

  it('migrate status --json returns the typed result', async () => {
    const {result, error} = await runCommand<{pending: number}>(['migrate', 'status', '--json', '--database-url', db.url], {root: ROOT})
    expect(error).to.equal(undefined)
    expect(result?.pending).to.equal(0)
  })

  it('partitions create then list agree', async () => {
    const created = await runCommand<{created: unknown[]}>(
      ['partitions', 'create', '--ahead', '1', '--interval', 'week', '--json', '--database-url', db.url],
      {root: ROOT},
    )
    expect(created.result?.created).to.have.length(2 * TABLES.length) // this week and the next, of each table
    const list = await runCommand<{partitions: Array<{name: string}>}>(['partitions', 'list', '--json', '--database-url', db.url], {
      root: ROOT,
    })
    expect(list.result?.partitions).to.have.length(3 * TABLES.length) // and the default partitions
  })

  it('cleanup rejects an unknown log type before touching the database', async () => {
    const {error} = await runCommand(['cleanup', '--log-type', 'nginx', '--database-url', db.url], {root: ROOT})
    expect(error?.message).to.contain('one of: request, access, event, outbound, app, all, gunicorn')
    expect(error?.oclif?.exit).to.equal(2)
  })
})
