import {readFileSync} from 'node:fs'
import net from 'node:net'
import {expect} from 'chai'
import {freePort, portIsFree} from '../../src/util/process.js'
import {skipUnless} from '../helpers/skip.js'

describe('free ports for the programs run starts (the app, the embedded PostgreSQL)', () => {
  const listen = (port: number) =>
    new Promise<net.Server>((resolve, reject) => {
      const srv = net.createServer()
      srv.once('error', reject)
      srv.listen(port, '127.0.0.1', () => resolve(srv))
    })

  it("are taken above the range of outgoing connections' local ports, so a connection cannot take one before the program listens", async function () {
    let high: number
    try {
      high = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[1])
    } catch {
      return skipUnless(this, false, 'Linux: /proc/sys/net/ipv4/ip_local_port_range')
    }
    skipUnless(
      this,
      high < 65_535,
      'a local port range that leaves ports above it (here the OS lends every port to connections: freePort lets it pick)',
      {expectedInCi: false},
    )
    for (let i = 0; i < 20; i++) {
      const port = await freePort()
      expect(port).to.be.greaterThan(Math.max(high!, 49_151)).and.at.most(65_535)
      const srv = await listen(port) // and a program can listen on it
      await new Promise((r) => srv.close(r))
    }
  })

  it('are not handed out twice in a row, though the first was not bound yet (a caller takes two, then binds them)', async () => {
    const ports: number[] = []
    for (let i = 0; i < 1000; i++) {
      const port = await freePort()
      expect(ports.slice(-16), `draw ${i}`).not.to.include(port)
      ports.push(port)
    }
  })

  it('portIsFree() tells a port in use from a free one', async () => {
    const srv = await listen(0)
    const {port} = srv.address() as net.AddressInfo
    expect(await portIsFree(port)).to.equal(false)
    await new Promise((r) => srv.close(r))
    expect(await portIsFree(port)).to.equal(true)
  })
})
