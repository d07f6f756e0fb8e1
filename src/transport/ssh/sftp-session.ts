/**
 * The SFTP session of a connection and its request pipeline: the round-trip accounting that
 * put() and get() (sftp.ts) build on.
 */
import type { Attributes, SFTPWrapper, Stats } from 'ssh2'

/** Requests in flight per file: 32 × 64 KiB = 2 MiB, OpenSSH's channel window. Memory stays flat. */
const WINDOW = 32

export type Callback = (error?: Error | null) => void

/**
 * The SFTP session of a connection, with round trips counted:
 * - every request whose answer we wait for counts 1 (open, close, stat, mkdir, setstat, opendir,
 *   readdir, readlink, symlink…);
 * - requests sent back to back without waiting in between (pipelined writes, reads, the mkdirs
 *   or setstats of a tree) count 1 per window of up to 32 requests.
 */
export class SftpSession {
  constructor(
    readonly sftp: SFTPWrapper,
    private readonly count: (n: number) => void,
  ) {}

  private call<T>(run: (done: (error: Error | undefined | null, value?: T) => void) => void): Promise<T> {
    this.count(1)
    return new Promise<T>((resolve, reject) => {
      run((error, value) => (error ? reject(error) : resolve(value as T)))
    })
  }

  open(file: string, flags: 'r' | 'w', mode?: number): Promise<Buffer> {
    return this.call<Buffer>((done) =>
      mode === undefined ? this.sftp.open(file, flags, done) : this.sftp.open(file, flags, { mode }, done),
    )
  }

  close(handle: Buffer): Promise<void> {
    return this.call<void>((done) => this.sftp.close(handle, done))
  }

  stat(file: string): Promise<Stats> {
    return this.call<Stats>((done) => this.sftp.stat(file, done))
  }

  readlink(file: string): Promise<string> {
    return this.call<string>((done) => this.sftp.readlink(file, done))
  }

  unlink(file: string): Promise<void> {
    return this.call<void>((done) => this.sftp.unlink(file, done))
  }

  symlink(target: string, linkPath: string): Promise<void> {
    return this.call<void>((done) => this.sftp.symlink(target, linkPath, done))
  }

  /** Lists a directory: opendir, readdir until EOF, close. */
  async list(dir: string): Promise<Array<{ filename: string; attrs: Attributes }>> {
    const handle = await this.call<Buffer>((done) => this.sftp.opendir(dir, done))
    const entries: Array<{ filename: string; attrs: Attributes }> = []
    try {
      for (;;) {
        const batch = await this.call<Array<{ filename: string; attrs: Attributes }> | false>((done) =>
          this.sftp.readdir(handle, (error, list) => {
            if (error && (error as Error & { code?: number }).code === 1) return done(undefined, false) // EOF
            done(error, list)
          }),
        )
        if (!batch) break
        for (const entry of batch) if (entry.filename !== '.' && entry.filename !== '..') entries.push(entry)
      }
    } finally {
      await this.close(handle)
    }
    return entries
  }

  /** A window of pipelined requests. */
  pipeline(): Pipeline {
    return new Pipeline(WINDOW, this.count)
  }
}

/** Sends requests without waiting for each answer, at most `window` in flight; counts a round trip per window. */
export class Pipeline {
  private inFlight = 0
  private sent = 0
  private failure: Error | undefined
  private wakeUp: (() => void) | undefined
  private drained: (() => void) | undefined

  constructor(
    private readonly window: number,
    private readonly count: (n: number) => void,
  ) {}

  /** Sends one request when there is room; resolves once it is sent (not answered). Throws the first failure. */
  async add(send: (done: Callback) => void): Promise<void> {
    while (this.inFlight >= this.window && !this.failure) await new Promise<void>((resolve) => (this.wakeUp = resolve))
    if (this.failure) throw this.failure
    if (this.sent % this.window === 0) this.count(1)
    this.sent++
    this.inFlight++
    send((error) => {
      this.inFlight--
      if (error && !this.failure) this.failure = error
      const wake = this.wakeUp
      this.wakeUp = undefined
      wake?.()
      if (this.inFlight === 0) this.drained?.()
    })
  }

  /** Waits for every answer; throws the first failure. */
  async drain(): Promise<void> {
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve))
    if (this.failure) throw this.failure
  }
}
