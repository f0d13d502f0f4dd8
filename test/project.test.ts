import {expect} from 'chai'
import {execa} from 'execa'
import {ROOT} from './helpers/cli.js'

/** The repository as a newcomer meets it: the README's quick start. */
describe('the repository', function () {
  this.timeout(120_000)

  it('ignores what the quick start makes in it: logs/ and .audit-logs/', async () => {
    // `npx audit-logs run ... -- node examples/app.mjs` in the repository writes logs/*.jsonl and .audit-logs/
    for (const made of ['logs/requests.jsonl', 'logs/access.jsonl', 'logs/requests.jsonl.1.gz', '.audit-logs/journal/owner.pid']) {
      const r = await execa('git', ['check-ignore', '--quiet', '--no-index', made], {cwd: ROOT, reject: false})
      expect(r.exitCode, `${made} is not ignored`).to.equal(0)
    }
  })
})
