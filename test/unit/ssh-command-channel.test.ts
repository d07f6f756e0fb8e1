/**
 * The command channel on a connection that is gone: opening fails at once, the channel retires
 * (its limiter slot is given back exactly once) and a first command waiting for it is told so.
 */
import type { Client } from 'ssh2'
import { describe, expect, it } from 'vitest'
import { CommandChannel } from '../../src/transport/ssh/command-channel.js'

/** An ssh2 client stand-in whose exec fails the way a dead connection's does. */
function deadClient(how: 'throws' | 'calls back with an error'): Client {
  return {
    exec(_command: string, callback: (error: Error | undefined) => void) {
      if (how === 'throws') throw new Error('Not connected')
      callback(new Error('Not connected'))
    },
  } as unknown as Client
}

describe('CommandChannel on a dead connection', () => {
  for (const how of ['throws', 'calls back with an error'] as const) {
    it(`retires at once when exec ${how}, gives its slot back once, and is never ready`, async () => {
      let gone = 0
      const loop = new CommandChannel(deadClient(how), () => gone++)
      expect(loop.retired).toBe(true)
      expect(gone).toBe(1)
      expect(loop.reserve()).toBe(false)
      expect(await loop.ready()).toBe(false)
      loop.retire()
      expect(gone).toBe(1)
    })
  }
})
