import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {execa} from 'execa'
import {ROOT} from './helpers/cli.js'

/** The repository as a newcomer meets it: the README's quick start, `npm run build`. */
describe('the repository', function () {
  this.timeout(120_000)

  it('ignores what the quick start makes in it: logs/ and .audit-logs/', async () => {
    // `npx audit-logs run ... -- node examples/app.mjs` in the repository writes logs/*.jsonl and .audit-logs/
    for (const made of ['logs/requests.jsonl', 'logs/access.jsonl', 'logs/requests.jsonl.1.gz', '.audit-logs/journal/owner.pid']) {
      const r = await execa('git', ['check-ignore', '--quiet', '--no-index', made], {cwd: ROOT, reject: false})
      expect(r.exitCode, `${made} is not ignored`).to.equal(0)
    }
  })

  it('npm run build prints no "update available" warning of the oclif tool', async () => {
    // the oclif tool (a dev dependency) warns when its cache says a newer version is out: a cache that says so
    const cache = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-oclif-cache-'))
    writeFileSync(path.join(cache, 'version'), JSON.stringify({latest: '99.0.0'}))
    const env = {
      ...process.env,
      OCLIF_CACHE_DIR: cache,
      OCLIF_SKIP_NEW_VERSION_CHECK: undefined,
      PATH: `${path.join(ROOT, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH}`,
    }
    // the steps of the build script that run the oclif tool, as the script runs them (tsc is left out: it is slow, and prints no such thing)
    const {scripts} = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {scripts: Record<string, string>}
    const steps = scripts.build
      .split('&&')
      .map((s) => s.trim())
      .filter((s) => /(^|\s)oclif\s/.test(s))
    expect(steps).to.have.length.above(0)
    for (const step of steps) {
      const r = await execa('sh', ['-c', step], {cwd: ROOT, env, extendEnv: false, reject: false, all: true})
      expect(r.exitCode, r.all).to.equal(0)
      expect(r.all).to.not.match(/update available/i)
    }
    // every script that runs the oclif tool runs it so (prepack's `oclif readme` rewrites README.md: not run here)
    for (const [name, script] of Object.entries(scripts)) {
      for (const step of script
        .split('&&')
        .map((s) => s.trim())
        .filter((s) => /(^|\s)oclif\s/.test(s))) {
        expect(step, `the script ${name}`).to.match(/OCLIF_SKIP_NEW_VERSION_CHECK=(1|true)\s/)
      }
    }
  })
})
