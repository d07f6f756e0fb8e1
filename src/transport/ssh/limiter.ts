/** Thrown to queued commands when the transport closes before their turn. */
export class LimiterClosed extends Error {
  constructor() {
    super('closed')
    this.name = 'LimiterClosed'
  }
}

/**
 * Caps the channels in use on one connection (sshd refuses sessions over MaxSessions, 10 by
 * default); the rest wait in order. A waiter can leave the queue through its AbortSignal.
 */
export class ChannelLimiter {
  private active = 0
  private highest = 0
  private readonly waiting: Array<{ grant: () => void; fail: (error: Error) => void }> = []
  private closed = false

  constructor(readonly max: number) {}

  /** Channels in use now. */
  get inUse(): number {
    return this.active
  }

  /** Most channels ever in use at once. */
  get peak(): number {
    return this.highest
  }

  /** Commands waiting for a channel. */
  get queued(): number {
    return this.waiting.length
  }

  /** Takes a channel if one is free and nobody waits for one (spare channels never jump the queue). */
  tryAcquire(): boolean {
    if (this.closed || this.waiting.length > 0 || this.active >= this.max) return false
    this.take()
    return true
  }

  /** Resolves when a channel may be opened; rejects with `signal.reason` or LimiterClosed. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new LimiterClosed())
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error('aborted'))
    if (this.active < this.max) {
      this.take()
      return Promise.resolve()
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort)
          this.take()
          resolve()
        },
        fail: (error: Error) => {
          signal?.removeEventListener('abort', onAbort)
          reject(error)
        },
      }
      const onAbort = () => {
        const index = this.waiting.indexOf(waiter)
        if (index >= 0) this.waiting.splice(index, 1)
        reject(signal?.reason ?? new Error('aborted'))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiting.push(waiter)
    })
  }

  release(): void {
    this.active--
    const next = this.waiting.shift()
    if (next) next.grant()
  }

  /** Fails every waiter; later acquires fail too. */
  close(): void {
    this.closed = true
    for (const waiter of this.waiting.splice(0)) waiter.fail(new LimiterClosed())
  }

  private take(): void {
    this.active++
    if (this.active > this.highest) this.highest = this.active
  }
}
