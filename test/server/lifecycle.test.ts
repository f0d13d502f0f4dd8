import {expect} from 'chai'
import {Parts, deadlineIn} from '../../src/server/lifecycle.js'

describe('Parts: the parts of run stop in reverse order, under one deadline', () => {
  it('stops in the reverse order of the start, each with the deadline, and goes on after one that fails', async () => {
    const logged: string[] = []
    const stopped: string[] = []
    const parts = new Parts((m) => logged.push(m))
    parts.add('first', () => void stopped.push('first'))
    parts.add('none', undefined)
    parts.add('second', {
      async stop() {
        stopped.push('second')
        throw new Error('second failed')
      },
    })
    parts.add('third', (deadline) => void stopped.push(`third ${deadline.left() > 0}`))
    await parts.stop(deadlineIn(5000))
    expect(stopped).to.deep.equal(['third true', 'second', 'first'])
    expect(logged).to.deep.equal(['shutdown: second failed'])
    await parts.stop(deadlineIn(5000)) // stopped once
    expect(stopped).to.have.length(3)
  })

  it('a part that never stops does not hold the rest past the deadline', async () => {
    const logged: string[] = []
    const stopped: string[] = []
    const parts = new Parts((m) => logged.push(m))
    parts.add('claims', () => void stopped.push('claims'))
    parts.add('a hung worker', () => new Promise<void>(() => {}))
    const started = Date.now()
    await parts.stop(deadlineIn(200))
    expect(stopped).to.deep.equal(['claims'])
    expect(Date.now() - started).to.be.lessThan(5000)
    expect(logged).to.deep.equal(['shutdown: a hung worker did not stop within the shutdown limit; the rest stops now'])
  })
})
