import {spawn} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {claimDirectory} from '../../src/util/claim.js'
import {procStat} from '../../src/util/process.js'

const taken = ({pid}: {pid: number}): never => {
  throw new Error(`taken by ${pid}`)
}

describe('claimDirectory', () => {
  it('claims a directory for this process and releases it; a live owner keeps it; a dead or reused pid does not', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-claim-'))
    const file = path.join(dir, 'owner.pid')
    const release = claimDirectory(dir, 'owner.pid', taken, 0o700)
    expect(readFileSync(file, 'utf8')).to.equal(`${process.pid} ${procStat(process.pid)!.start}\n`)
    release()
    expect(existsSync(file)).to.equal(false)

    const other = spawn('sleep', ['30'])
    try {
      const pid = other.pid!
      writeFileSync(file, `${pid} ${procStat(pid)!.start}\n`)
      expect(() => claimDirectory(dir, 'owner.pid', taken, 0o700)).to.throw(`taken by ${pid}`)
      writeFileSync(file, `${pid}\n`) // a claim without a start time (another OS): the pid alone decides
      expect(() => claimDirectory(dir, 'owner.pid', taken, 0o700)).to.throw(`taken by ${pid}`)
      writeFileSync(file, `${pid} 1\n`) // the same pid, started at another time: not the owner (a reboot)
      claimDirectory(dir, 'owner.pid', taken, 0o700)()
    } finally {
      other.kill('SIGKILL')
    }
    writeFileSync(file, '999999 5\n') // a process that is gone
    claimDirectory(dir, 'owner.pid', taken, 0o700)()
    writeFileSync(file, 'garbage') // a damaged claim
    claimDirectory(dir, 'owner.pid', taken, 0o700)()
  })
})
