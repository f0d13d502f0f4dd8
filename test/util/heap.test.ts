import {setTimeout as sleep} from 'node:timers/promises'
import {expect} from 'chai'
import {heapKeeper, heldBytes} from '../../src/util/heap.js'

describe('heap keeper', () => {
  it('collects once the thread holds more than its slack above the last collection, and frees what was dropped', async () => {
    const keep = heapKeeper(8 * 1024 * 1024)
    expect(keep()).to.equal(false) // nothing held beyond the floor yet
    let garbage: Buffer[] | undefined = Array.from({length: 24}, () => Buffer.alloc(1024 * 1024, 1))
    expect(garbage.length).to.equal(24)
    // eslint-disable-next-line no-useless-assignment -- the reference is dropped on purpose, for V8 to collect
    garbage = undefined // dropped; V8 left alone collects it at its own pace
    const held = heldBytes()
    expect(keep()).to.equal(true)
    // the buffers' memory is released by V8's sweeper, possibly just after the collection
    for (let i = 0; i < 50 && heldBytes() >= held - 16 * 1024 * 1024; i++) await sleep(20)
    expect(heldBytes()).to.be.below(held - 16 * 1024 * 1024)
    expect(keep()).to.equal(false) // the floor was taken after the collection
  })
})
