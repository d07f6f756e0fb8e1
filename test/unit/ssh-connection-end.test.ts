/**
 * A connection ends on a socket error even when ssh2's 'close' never follows
 * (seen under load after a reset: commands on it then waited forever).
 */
import { EventEmitter } from 'node:events'
import type { Client } from 'ssh2'
import { describe, expect, it } from 'vitest'
import { Chain } from '../../src/transport/ssh/connect.js'

class FakeClient extends EventEmitter {
  destroyed = 0
  destroy(): void {
    this.destroyed++
  }
  end(): void {}
}

function chainOf(...clients: FakeClient[]): Chain {
  return new Chain(clients as unknown as Client[])
}

describe('an SSH connection', () => {
  it('ends at once on a socket error (reset), without waiting for a close that may never come', () => {
    const client = new FakeClient()
    const chain = chainOf(client)
    const seen: Array<Error | undefined> = []
    chain.onClose((error) => seen.push(error))
    const reset = Object.assign(new Error('read ECONNRESET'), { level: 'client-socket' })
    client.emit('error', reset)
    expect(chain.alive).toBe(false)
    expect(seen).toEqual([reset])
    expect(client.destroyed).toBe(1)
    // The close that may still come later is not a second end.
    client.emit('close')
    expect(seen).toHaveLength(1)
  })

  it('ends on a keepalive timeout, and a jump host is torn down with it', () => {
    const jump = new FakeClient()
    const target = new FakeClient()
    const chain = chainOf(jump, target)
    target.emit('error', Object.assign(new Error('Keepalive timeout'), { level: 'client-timeout' }))
    expect(chain.alive).toBe(false)
    expect(jump.destroyed).toBe(1)
  })

  it('an error that is not the connection\'s (a refused channel, say) leaves it up until it closes', () => {
    const client = new FakeClient()
    const chain = chainOf(client)
    client.emit('error', new Error('something else'))
    expect(chain.alive).toBe(true)
    client.emit('close')
    expect(chain.alive).toBe(false)
  })
})
