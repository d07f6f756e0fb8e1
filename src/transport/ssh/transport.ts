import { setTimeout as sleep } from 'node:timers/promises'
import type { SFTPWrapper } from 'ssh2'
import type { Host } from '../../model/host.js'
import { ConnectionError } from '../../model/errors.js'
import { STDIN_BYTES_MAX, type ExecOptions, type ExecResult, type GetOptions, type PutOptions, type Transport } from '../types.js'
import { IdentityStore } from './auth.js'
import { openConnection, type SshConnection } from './connect.js'
import { commandOf, type Command } from '../../shell/command.js'
import { killScript, loopCanCarry } from '../../shell/protocol.js'
import { CommandChannel } from './command-channel.js'
import { ChannelCommand, emptyResult, type RunHooks, type RunningCommand } from './exec.js'
import { ChannelLimiter, LimiterClosed } from './limiter.js'
import { get, put, SftpSession } from './sftp.js'
import { SparePool } from './spare.js'
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
 * Scripts longer than this go on a channel of their own: the command channel reads a script line by
 * line with the shell's `read` (one read(2) per byte), a channel of its own reads it to EOF.
 */
const COMMAND_CHANNEL_MAX_SCRIPT = 64 * 1024
/**
 * Stdin bytes up to this size go on the command channel (in 64 KiB blocks, see EXACT_STDIN in
 * shell/protocol.ts: an upload's archive costs the host no session of its own); more, or a stream,
 * on a channel of their own, read to EOF.
 */
const COMMAND_CHANNEL_MAX_STDIN = STDIN_BYTES_MAX

/**
 * Transport over one ssh2 connection per host, opened on first use (or on warmUp()) and kept:
 * commands run on channels of it (at most `maxChannels` at once, the rest queue), files go over
 * one SFTP session.
 *
 * Commands run one after another on the connection's command channel (CommandChannel: one
 * long-lived session whose loop runs each script it is sent and ends it with a marker), so a
 * command costs the host no new session and the client learns its end from the output itself.
 * A command that comes while the command channel is busy (parallel work on the host), whose stdin
 * is a stream or over COMMAND_CHANNEL_MAX_STDIN, or whose script is large runs on a session channel of its own. For those, once
 * parallel work was seen (or always, with `commandChannel: false`), up to two spare session
 * channels are kept open, each already running a bootstrap shell that reads its script from stdin
 * (SSH_BOOTSTRAP in src/shell/protocol), so such a command costs one network turn instead of three
 * (open, exec, script); a spare is replaced in the background as soon as a command takes it.
 * Scripts always travel on stdin, never in an exec request, so they are in no process's argv.
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
  /**
   * Round trips waited on, as `roundTrips` reports them:
   * - a command counts 1, whether it ran on the command channel (its script and stdin go at once;
   *   the answer is the output and its end markers: one turn; the first command also waits for
   *   the channel to open), on a spare channel (its script, stdin and EOF go at once;
   *   the answer is the output and exit status: one turn) or had to open its channel itself
   *   because no spare was left (channel open + exec request + script: three turns on the wire,
   *   still counted 1; the wire-level model is in test/integration/round-trips.test.ts);
   * - opening a spare or the command channel is not counted: nobody but a first command waits on it;
   * - one more for each channel open sshd refused for a moment (MaxSessions) and tried again, and
   *   for a command run again because its spare or the command channel died before the script started;
   * - the kill exec of timed-out or aborted commands counts 1; SFTP: see SftpSession.
   */
  private trips = 0
  private lostError: Error | undefined
  /** The spare channels of the current connection. */
  private pool: SparePool | undefined
  /** The command channel of the current connection (opened on first use, reopened when it retires). */
  private loop: CommandChannel | undefined
  /** Settings once resolved (for the synchronous choices of exec()). */
  private resolved: SshSettings | undefined
  /** A command found the command channel busy: parallel work, so spares are worth keeping. */
  private parallelSeen = false
  /** A warmUp() connect failure nobody has seen yet: thrown by the first real use. */
  private warmError: Error | undefined
  private warming: Promise<void> | undefined
  /** A real use (exec, put, get) has started: warmUp() errors reach it directly. */
  private used = false

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

  /** Spare channels open or opening now (for tests). */
  get spareChannels(): number {
    return this.pool?.size ?? 0
  }

  /** A command channel is open or opening now (for tests). */
  get hasCommandChannel(): boolean {
    return this.loop !== undefined && !this.loop.retired
  }

  /** The resolved settings (host options over ssh config over defaults). */
  settings(): Promise<SshSettings> {
    this.settingsPromise ??= resolveSettings(this.host, this.ctx).then((settings) => (this.resolved = settings))
    return this.settingsPromise
  }

  /**
   * Starts connecting (and opening the first spare channels) without waiting, so the connection
   * is up when the first command comes. A failure is kept and thrown by the first real use.
   */
  warmUp(): void {
    if (this.closing || this.warming) return
    this.warming = (async () => {
      const connection = await this.open()
      if (this.resolved?.commandChannel && this.resolved.maxChannels >= 2) this.commandChannel(connection)
      else this.fillSpares()
    })().catch((error: unknown) => {
      if (!this.used && !this.closing) this.warmError = error as Error
    })
  }

  /**
   * Connects (host key, authentication) and waits: the run checks every host this way before its
   * first step, so an unreachable host stops the run before anything changed anywhere.
   */
  async connect(): Promise<void> {
    this.assertOpen()
    // No spares yet: opened now, their answers would come while nothing else is in flight (extra
    // waits on the wire); the first command opens them alongside its own channel, as before.
    await this.open()
  }

  async exec(command: Command | string, options: ExecOptions = {}): Promise<ExecResult> {
    this.beginUse()
    if (options.signal?.aborted) return emptyResult({ aborted: true })
    const settings = await this.settings()
    this.channelLimiter(settings)
    // Connect before queueing: every waiting command shares one connection attempt (and its failure).
    let connection: SshConnection
    try {
      connection = await this.open()
    } catch (error) {
      if (this.closing) return emptyResult({ aborted: true })
      throw error
    }
    const loop = this.reserveCommandChannel(settings, connection, command)
    if (loop) {
      if (await loop.ready()) {
        if (this.closing || options.signal?.aborted) {
          loop.unreserve()
          return emptyResult({ aborted: true })
        }
        this.trips++
        return loop.run(commandOf(command), options, {
          ...this.hooks(connection),
          rerun: () => this.runOnOwnChannel(command, options, false),
        })
      }
      loop.unreserve()
    }
    return this.runOnOwnChannel(command, options, true)
  }

  /**
   * A command on a session channel of its own: a spare (with its limiter slot) or one opened now
   * (on a free slot). `counted`: a round trip of its own (false for a command run again).
   */
  private async runOnOwnChannel(command: Command | string, options: ExecOptions, counted: boolean): Promise<ExecResult> {
    const limiter = this.channelLimiter(await this.settings())
    // A spare channel comes with its limiter slot; without one, wait for a slot.
    const spare = this.closing ? undefined : this.pool?.take()
    if (!spare) {
      try {
        await limiter.acquire(options.signal)
      } catch (error) {
        // Aborted while queued, or the transport closed before its turn: it never ran.
        if (error instanceof LimiterClosed || options.signal?.aborted) return emptyResult({ aborted: true })
        throw error
      }
    }
    try {
      if (this.closing) {
        void spare?.ready.then((channel) => channel?.end())
        return emptyResult({ aborted: true })
      }
      const connection = await this.open()
      if (this.closing) return emptyResult({ aborted: true })
      if (counted) this.trips++
      const running = new ChannelCommand(connection.client, commandOf(command), options, this.hooks(connection), spare?.ready).result
      // Replace the spare just taken (or use the slots left) while the command runs.
      this.fillSpares()
      return await running
    } finally {
      limiter.release()
      this.fillSpares()
    }
  }

  /**
   * The command channel, reserved for this command, when the command can go on it: the setting is
   * on, its stdin is none or bytes, its script is not large, and the channel is not busy (a busy
   * one marks parallel work: spares are opened from then on). Opens it when there is none.
   */
  private reserveCommandChannel(settings: SshSettings, connection: SshConnection, command: Command | string): CommandChannel | undefined {
    // The command channel keeps its limiter slot while idle: with a single slot, a command that
    // found it busy would wait for that slot for ever.
    if (!settings.commandChannel || settings.maxChannels < 2 || this.closing || !connection.alive) return undefined
    const stdin = typeof command === 'string' ? undefined : command.stdin
    if (stdin !== undefined && typeof stdin !== 'string' && !Buffer.isBuffer(stdin)) return undefined
    if (stdin !== undefined && stdin.length > COMMAND_CHANNEL_MAX_STDIN) return undefined
    const rendered = commandOf(command)
    if (rendered.text.length > COMMAND_CHANNEL_MAX_SCRIPT || !loopCanCarry(rendered)) return undefined
    const loop = this.commandChannel(connection)
    if (loop?.reserve()) return loop
    if (loop) {
      this.parallelSeen = true
      this.fillSpares()
    }
    return undefined
  }

  /** The connection's command channel, opened now if there is none (on a free limiter slot). */
  private commandChannel(connection: SshConnection): CommandChannel | undefined {
    if (this.loop && !this.loop.retired) return this.loop
    this.loop = undefined
    const limiter = this.limiter
    if (!limiter || this.closing || !connection.alive || !limiter.tryAcquire()) return undefined
    let opened: CommandChannel | undefined
    const loop = new CommandChannel(connection.client, () => {
      limiter.release()
      if (opened && this.loop === opened) this.loop = undefined
    })
    // Gone at once (ssh2 throws when the connection is already down): its slot is back; no channel.
    if (loop.retired) return undefined
    opened = loop
    this.loop = loop
    return loop
  }

  /** Opens spares, unless commands go on the command channel and no parallel work was seen. */
  private fillSpares(): void {
    if (this.resolved?.commandChannel && !this.parallelSeen) return
    this.pool?.fill()
  }

  async put(source: string | Buffer, remotePath: string, options: PutOptions = {}): Promise<void> {
    this.beginUse()
    // Opening the session can die with the connection too: that is the host's ConnectionError.
    const session = await this.sftp().catch((error: unknown) => this.transferFailed(error))
    await put(session, source, remotePath, options).catch((error: unknown) => this.transferFailed(error))
  }

  async get(remotePath: string, localPath: string, options: GetOptions = {}): Promise<void> {
    this.beginUse()
    // Opening the session can die with the connection too: that is the host's ConnectionError.
    const session = await this.sftp().catch((error: unknown) => this.transferFailed(error))
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
    this.pool?.close()
    const loop = this.loop
    this.loop = undefined
    this.connectAbort.abort()
    const running = [...this.running]
    for (const command of running) command.abort()
    if (running.length > 0) {
      await Promise.race([Promise.allSettled(running.map((command) => command.done)), delay(CLOSE_KILL_TIMEOUT)])
    }
    loop?.retire()
    const connection = this.connection ?? (await this.connecting?.catch(() => undefined))
    this.connection = undefined
    this.sftpSession = undefined
    this.pool = undefined
    await connection?.end()
  }

  private assertOpen(): void {
    if (this.closing) throw new Error(`The SSH transport of ${this.host.alias} is closed.`)
  }

  /** Start of a real use: the transport is open, and a warmUp() failure surfaces here (once). */
  private beginUse(): void {
    this.assertOpen()
    this.used = true
    const warmError = this.warmError
    if (warmError) {
      this.warmError = undefined
      throw warmError
    }
  }

  private channelLimiter(settings: SshSettings): ChannelLimiter {
    this.limiter ??= new ChannelLimiter(settings.maxChannels)
    return this.limiter
  }

  private open(): Promise<SshConnection> {
    if (this.connection?.alive) return Promise.resolve(this.connection)
    this.connecting ??= (async () => {
      const settings = await this.settings()
      this.identities ??= new IdentityStore(this.ctx, settings.passphraseEnv)
      const connection = await openConnection(settings, this.ctx, this.identities, this.connectAbort.signal)
      this.lostError = undefined
      const pool = new SparePool(connection.client, this.channelLimiter(settings), () => connection.alive)
      connection.onClose((error) => {
        pool.close()
        if (this.pool === pool) this.pool = undefined
        const loop = this.loop
        this.loop = undefined
        loop?.retire()
        if (this.connection !== connection) return
        this.connection = undefined
        this.sftpSession = undefined
        this.lostError = lostConnectionError(settings, error)
        // Commands on it fail now, whether or not their channels ever report closing.
        for (const command of [...this.running]) command.lost(this.lostError)
      })
      this.connection = connection
      this.pool = pool
      if (this.closing) {
        pool.close()
        await connection.end()
      }
      return connection
    })().finally(() => {
      this.connecting = undefined
    })
    return this.connecting
  }

  private hooks(connection: SshConnection): RunHooks {
    const pool = this.pool
    return {
      sparesBroken: () => pool?.disable(),
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
          await Promise.race([
            new ChannelCommand(connection.client, killScript([...new Set(batch.map((kill) => kill.pgid))]), {}, {
              ...this.hooks(connection),
              register: () => undefined,
              unregister: () => undefined,
            }).result,
            delay(CLOSE_KILL_TIMEOUT),
          ]).catch(() => undefined)
        }
        for (const kill of batch) kill.done()
      }
    } finally {
      this.killing = false
    }
  }

  private sftp(): Promise<SftpSession> {
    this.sftpSession ??= (async () => {
      const connection = await this.open()
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

/** Why a connection that was up went away, naming the host and its address. */
function lostConnectionError(settings: SshSettings, error: Error | undefined): ConnectionError {
  const where = describeEndpoint(settings)
  if (error?.message === 'Keepalive timeout') {
    return new ConnectionError(
      `The connection to ${where} was lost: no answer to ${settings.keepaliveCountMax} keepalives sent ${settings.keepaliveInterval / 1000} s apart (the network or the host hung).`,
      'Nothing came back from the host, not even a reset: check the host and the network in between, then run again. ServerAliveInterval and ServerAliveCountMax in ~/.ssh/config set how soon dep gives up.',
      error,
    )
  }
  return new ConnectionError(
    `The connection to ${where} was lost${error ? `: ${error.message}` : ''}.`,
    'The host or the network went away while a command ran; check the host and run again.',
    error,
  )
}

/** A wait that never keeps the process alive by itself. */
function delay(ms: number): Promise<void> {
  return sleep(ms, undefined, { ref: false })
}

/** Creates the SSH transport of a host; nothing connects until the first command. */
export function createSshTransport(host: Host, options: SshTransportOptions = {}): SshTransport {
  return new SshTransport(host, options)
}
