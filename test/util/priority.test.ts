import {existsSync, readFileSync, readdirSync} from 'node:fs'
import {Worker} from 'node:worker_threads'
import {expect} from 'chai'
import {otherThreadsAt} from '../../src/util/priority.js'
import {skipUnless} from '../helpers/skip.js'

/** nice and scheduling policy of each thread of this process but the main one, from /proc. */
function threads(): Array<{nice: number; policy: number}> {
  return readdirSync('/proc/self/task')
    .filter((tid) => Number(tid) !== process.pid)
    .map((tid) => {
      const f = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')
      return {nice: Number(f[16]), policy: Number(f[38])}
    })
}

describe('priority: the shipping threads go to the background and back', () => {
  const root = process.platform === 'linux' && process.getuid?.() === 0
  it('puts every thread but the main one at nice 19 (the idle class where chrt allows it), and back at 0 when the sinks must catch up (as root)', async function () {
    skipUnless(this, root, 'as root on Linux: lowering a nice value again needs CAP_SYS_NICE')
    const worker = new Worker('setInterval(() => {}, 1000)', {eval: true})
    await new Promise((r) => worker.once('online', r))
    try {
      expect(otherThreadsAt(19)).to.equal(true)
      expect(threads().every((t) => t.nice === 19)).to.equal(true)
      const idleClass = existsSync('/usr/bin/chrt') && threads().every((t) => t.policy === 5) // SCHED_IDLE, where the container allows it
      const main = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ')
      expect({nice: Number(main[16]), policy: Number(main[38])}, 'the main thread keeps its priority').to.deep.equal({nice: 0, policy: 0})
      if (!idleClass) console.log('      (the idle scheduling class was not available here)')
      expect(otherThreadsAt(0)).to.equal(true)
      expect(
        threads().every((t) => t.nice === 0 && t.policy === 0),
        JSON.stringify(threads()),
      ).to.equal(true)
    } finally {
      otherThreadsAt(0)
      await worker.terminate()
    }
  })
})
