import type { SFTPWrapper } from 'ssh2'
import type { Host } from '../../model/host.js'
import { ConnectionError } from '../../model/errors.js'
import type { ExecOptions, ExecResult, GetOptions, PutOptions, Transport } from '../types.js'
import { IdentityStore } from './auth.js'
import { openConnection, type SshConnection } from './connect.js'
import { emptyResult, killScript, runCommand, type RunHooks, type RunningCommand } from './exec.js'
import { ChannelLimiter, LimiterClosed } from './limiter.js'
import { get, put, SftpSession } from './sftp.js'
import { defaultContext, describeEndpoint, resolveSettings, type SshContext, type SshSettings } from './settings.js'

export interface SshTransportOptions {
  /** Environment for SSH_AUTH_SOCK and passphrase variables (default process.env). */
  env?: NodeJS.ProcessEnv
  /** Home directory for `~`, ~/.ssh/config, ~/.ssh/known_hosts (default os.homedir()). */
  homeDir?: string
  /** Asks for the passphrase of an encrypted key; pass it only when there is a TTY. */
  promptPassphrase?: (file: string) => Promise<string>
}

/** How long close() waits for killed commands before hanging up anyway. */
const CLOSE_KILL_TIMEOUT = 5_000

/**
 * Transport over one ssh2 connection per host, opened on first use and kept: commands run on
 * channels of it (at most `maxChannels` at once, the rest queue), files go over one SFTP session.
 */
export class SshTransport implements Transport {
  private readonly ctx: SshContext
  private settingsPromise: Promise<SshSettings> | undefined
  private identities: IdentityStore | undefined
  private connection: SshConnection | undefined
  private connecting: Promise<SshConnection> | undefined
  private sftpSession: Promise<SftpSession> | undefined
  private limiter: ChannelLimiter | undefined
  private readonly running = new Set<RunningCommand>()
  private readonly connectAbort = new AbortController()
  private closing: Promise<void> | undefined
  private trips = 0
  private lostError: Error | undefined

  /** Kill requests waiting for the next kill exec (one exec kills them all). */
  private pendingKills: Array<{ pgid: number; done: () => void }> = []
  private killing = false

  constructor(
    readonly host: Host,
    options: SshTransportOptions = {},
  ) {
    this.ctx = defaultContext(options)
  }

  get roundTrips(): number {
    return this.trips
  }

  /** Most channels that were open at once (for tests of the cap). */
  get peakChannels(): number {
    return this.limiter?.peak ?? 0
  }

  /** The resolved settings (host options over ssh config over defaults). */
  settings(): Promise<SshSettings> {
    this.settingsPromise ??= resolveSettings(this.host, this.ctx)
    return this.settingsPromise
  }

  async exec(script: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.assertOpen()
    if (options.signal?.aborted) return emptyResult({ aborted: true })
    const settings = await this.settings()
    this.limiter ??= new ChannelLimiter(settings.maxChannels)
    const limiter = this.limiter
    // Connect before queueing: every waiting command shares one connection attempt (and its failure).
    try {
      await this.connect()
    } catch (error) {
      if (this.closing) return emptyResult({ aborted: true })
      throw error
    }
    try {
      await limiter.acquire(options.signal)
    } catch (error) {
      // Aborted while queued, or the transport closed before its turn: it never ran.
      if (error instanceof LimiterClosed || options.signal?.aborted) return emptyResult({ aborted: true })
      throw error
    }
    try {
      if (this.closing) return emptyResult({ aborted: true })
      const connection = await this.connect()
      if (this.closing) return emptyResult({ aborted: true })
      this.trips++
      return await runCommand(connection.client, script, options, this.hooks(connection))
    } finally {
      limiter.release()
    }
  }

  async put(source: string | Buffer, remotePath: string, options: PutOptions = {}): Promise<void> {
    this.assertOpen()
    const session = await this.sftp()
    await put(session, source, remotePath, options).catch((error: unknown) => this.transferFailed(error))
  }

  async get(remotePath: string, localPath: string, options: GetOptions = {}): Promise<void> {
    this.assertOpen()
    const session = await this.sftp()
    await get(session, remotePath, localPath, options).catch((error: unknown) => this.transferFailed(error))
  }

  /** An SFTP failure because the connection died is a ConnectionError, like for commands. */
  private transferFailed(error: unknown): never {
    if (!this.connection?.alive && this.lostError) throw this.lostError
    throw error
  }

  /** Closes the connection; running commands have their process groups killed first. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown(): Promise<void> {
    this.limiter?.close()
    this.connectAbort.abort()
    const running = [...this.running]
    for (const command of running) command.abort()
    if (running.length > 0) {
      await Promise.race([Promise.allSettled(running.map((command) => command.done)), delay(CLOSE_KILL_TIMEOUT)])
    }
    const connection = this.connection ?? (await this.connecting?.catch(() => undefined))
    this.connection = undefined
    this.sftpSession = undefined
    await connection?.end()
  }

  private assertOpen(): void {
    if (this.closing) throw new Error(`The SSH transport of ${this.host.alias} is closed.`)
  }

  private connect(): Promise<SshConnection> {
    if (this.connection?.alive) return Promise.resolve(this.connection)
    this.connecting ??= (async () => {
      const settings = await this.settings()
      this.identities ??= new IdentityStore(this.ctx, settings.passphraseEnv)
      const connection = await openConnection(settings, this.ctx, this.identities, this.connectAbort.signal)
      this.lostError = undefined
      connection.onClose((error) => {
        if (this.connection !== connection) return
        this.connection = undefined
        this.sftpSession = undefined
        this.lostError = new ConnectionError(
          `The connection to ${describeEndpoint(settings)} was lost${error ? `: ${error.message}` : ''}.`,
          'The host or the network went away while a command ran; check the host and run again.',
          error,
        )
      })
      this.connection = connection
      if (this.closing) await connection.end()
      return connection
    })().finally(() => {
      this.connecting = undefined
    })
    return this.connecting
  }

  private hooks(connection: SshConnection): RunHooks {
    return {
      killGroup: (pgid) => this.killGroup(pgid),
      connectionAlive: () => connection.alive,
      connectionLost: () => this.lostError ?? new ConnectionError(`The connection to ${this.host.alias} was lost.`),
      register: (command) => this.running.add(command),
      unregister: (command) => this.running.delete(command),
      retried: () => {
        this.trips++
      },
    }
  }

  /** Queues a process group for the next kill exec; kills that arrive together share one exec. */
  private killGroup(pgid: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.pendingKills.push({ pgid, done: resolve })
      if (!this.killing) {
        this.killing = true
        setImmediate(() => void this.runKills())
      }
    })
  }

  private async runKills(): Promise<void> {
    try {
      while (this.pendingKills.length > 0) {
        const batch = this.pendingKills.splice(0)
        const connection = this.connection
        if (connection?.alive) {
          // Outside the channel cap: the commands being killed may hold every slot (8 + this + SFTP ≤ 10).
          this.trips++
          await withTimeout(
            runCommand(connection.client, killScript([...new Set(batch.map((kill) => kill.pgid))]), {}, {
              ...this.hooks(connection),
              register: () => undefined,
              unregister: () => undefined,
            }),
            CLOSE_KILL_TIMEOUT,
          ).catch(() => undefined)
        }
        for (const kill of batch) kill.done()
      }
    } finally {
      this.killing = false
    }
  }

  private sftp(): Promise<SftpSession> {
    this.sftpSession ??= (async () => {
      const connection = await this.connect()
      this.trips++
      const wrapper = await new Promise<SFTPWrapper>((resolve, reject) => {
        connection.client.sftp((error, sftp) => (error ? reject(error) : resolve(sftp)))
      })
      wrapper.on('error', () => undefined)
      wrapper.once('close', () => {
        this.sftpSession = undefined
      })
      return new SftpSession(wrapper, (n) => {
        this.trips += n
      })
    })().catch((error: unknown) => {
      this.sftpSession = undefined
      throw error
    })
    return this.sftpSession
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, delay(ms).then(() => Promise.reject(new Error('timeout')))])
}

/** Creates the SSH transport of a host; nothing connects until the first command. */
export function createSshTransport(host: Host, options: SshTransportOptions = {}): SshTransport {
  return new SshTransport(host, options)
}
