import {execSync} from 'node:child_process'
import {mkdtempSync, readdirSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {execa} from 'execa'
import {ensureLibraryLinks, findBinaries} from '../../src/embedded/binaries.js'
import {serverOsUser} from '../../src/embedded/os-user.js'
import {AuditLogsError, ExitCode} from '../../src/errors.js'

describe('embedded server prerequisites', () => {
  it('as root without the server OS user: a clear error, and no account is created', async () => {
    const user = 'audit_logs_no_such_user'
    let error: AuditLogsError | undefined
    try {
      await serverOsUser(user, true)
    } catch (e) {
      error = e as AuditLogsError
    }
    expect(error?.exit).to.equal(ExitCode.embedded)
    expect(error?.message).to.contain(`no "${user}" OS user`)
    expect(error?.suggestions.join(' ')).to.contain('AUDIT_LOGS_DATABASE_URL')
    expect((await execa('id', [user], {reject: false})).exitCode).to.not.equal(0)
  })

  it('not as root: runs as the current user', async () => {
    expect(await serverOsUser('postgres', false)).to.equal(undefined)
  })

  it("restores the binaries' library links when an install skipped the package script", async function () {
    this.timeout(60_000)
    const bins = await findBinaries()
    const copy = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-bins-'))
    try {
      execSync(`cp -a ${JSON.stringify(bins.packageDir)}/. ${JSON.stringify(copy)}`)
      execSync(`find ${JSON.stringify(path.join(copy, 'native', 'lib'))} -type l -delete`)
      const initdb = path.join(copy, 'native', 'bin', 'initdb')
      expect((await execa(initdb, ['--version'], {reject: false})).exitCode).to.not.equal(0) // broken, as after --ignore-scripts
      await ensureLibraryLinks({...bins, initdb, packageDir: copy})
      expect((await execa(initdb, ['--version'])).stdout).to.match(/initdb \(PostgreSQL\) 17/)
      expect(readdirSync(path.join(copy, 'native', 'lib')).length).to.be.greaterThan(0)
    } finally {
      rmSync(copy, {recursive: true, force: true})
    }
  })
})
