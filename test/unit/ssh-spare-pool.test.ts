/**
 * The spare channels of a connection: a connection that is gone makes every open fail at once;
 * fill() must stop there (it once looped forever, taking and freeing the same slot).
 */
import type { Client } from 'ssh2'
import { describe, expect, it } from 'vitest'
import { ChannelLimiter } from '../../src/transport/ssh/limiter.js'
import { SparePool } from '../../src/transport/ssh/spare.js'

/** An ssh2 client stand-in whose exec fails the way a dead connection's does. */
function deadClient(how: 'throws' | 'calls back with an error'): { client: Client; execs: () => number } {
  let execs = 0
  const client = {
    exec(_command: string, callback: (error: Error | undefined) => void) {
      execs++
      if (how === 'throws') throw new Error('Not connected')
      callback(new Error('Not connected'))
    },
  } as unknown as Client
  return { client, execs: () => execs }
}

/** A limiter that runs dry after 100 slots, so a fill() that loops ends (and fails the test) instead of hanging it. */
class BoundedLimiter extends ChannelLimiter {
  private grants = 0
  override tryAcquire(): boolean {
    return ++this.grants <= 100 && super.tryAcquire()
  }
}

describe('SparePool on a connection that is gone', () => {
  for (const how of ['throws', 'calls back with an error'] as const) {
    it(`fill() stops after one failed open when exec ${how}, and gives the slot back`, () => {
      const limiter = new BoundedLimiter(10)
      const { client, execs } = deadClient(how)
      // alive() still says yes: the connection died after the last check, as it does under a cut.
      const pool = new SparePool(client, limiter, () => true)
      pool.fill()
      expect(execs()).toBe(1)
      expect(pool.size).toBe(0)
      expect(limiter.inUse).toBe(0)
      expect(pool.take()).toBeUndefined()
    })
  }
})
