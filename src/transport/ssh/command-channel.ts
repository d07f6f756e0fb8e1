import { randomBytes } from 'node:crypto'
import { constants } from 'node:os'
import type { Client, ClientChannel } from 'ssh2'
import type { Command } from '../../shell/command.js'
import { COMMAND_LOOP, loopEndMarker, loopHead } from '../../shell/protocol.js'
import type { ExecOptions, ExecResult } from '../types.js'
import { type ChannelKill, SshCommandRun } from './command-run.js'
import { EndScanner } from './end-marker.js'
import type { RunHooks } from './exec.js'
import { channelUsable } from './open-channel.js'
import { PgidFilter } from './pgid-filter.js'

/** What a command on the command channel needs from its transport, besides RunHooks. */
export interface LoopHooks extends RunHooks {
  /** Runs the command again on a channel of its own: the command channel died before it started. */
  rerun(): Promise<ExecResult>
}

/**
 * The command channel of one connection: a session running COMMAND_LOOP, which runs the commands
 * sent to it one at a time and ends each with a marker on stdout and stderr. One command at a
 * time: the transport reserves it (reserve()) before running a command, and sends commands that
 * find it busy to channels of their own. It retires (closes, for good) when it dies, misbehaves or
 * a kill may have left its input out of step; the transport then opens another.
 */
export class CommandChannel {
  private channel: ClientChannel | undefined
  private readonly opened: Promise<boolean>
  private resolveOpened!: (ok: boolean) => void
  private current: LoopCommand | undefined
  private reserved = false
  private gone = false
  private readonly stdout: EndScanner
  private readonly stderr: EndScanner

  /**
   * Opens the channel (not counted as a round trip: nobody waits on it but a first command).
   * `onGone` is called once when the channel is gone or can no longer take commands.
   */
  constructor(
    client: Client,
    private readonly onGone: () => void,
  ) {
    const nonce = randomBytes(12).toString('hex')
    const marker = loopEndMarker(nonce)
    const idle = () => undefined
    this.stdout = new EndScanner(marker, idle, idle)
    this.stderr = new EndScanner(marker, idle, idle)
    this.opened = new Promise<boolean>((resolve) => {
      // retire() settles it too: a first command never waits on an exec answer that may not come.
      this.resolveOpened = resolve
      try {
        client.exec(COMMAND_LOOP.text, (error, channel) => {
          if (error) {
            this.retire()
            return resolve(false)
          }
          this.channel = channel
          channel.on('error', () => undefined)
          channel.on('data', (chunk: Buffer) => this.stdout.push(chunk))
          channel.stderr.on('data', (chunk: Buffer) => this.stderr.push(chunk))
          let exit: { code: number | null; signal?: string } | undefined
          channel.on('exit', (code: number | null, signal?: string) => (exit = { code, signal }))
          channel.once('close', () => {
            this.retire()
            this.current?.channelClosed(exit?.signal ?? null)
          })
          if (this.gone) {
            channel.end() // retired while it opened: the loop ends at EOF
            return resolve(false)
          }
          channel.write(`${nonce}\n`)
          resolve(true)
        })
      } catch {
        // ssh2 throws synchronously when the connection is already gone.
        this.retire()
        resolve(false)
      }
    })
  }

  /** Can take no more commands (closed, died, or retired after a kill). */
  get retired(): boolean {
    return this.gone
  }

  /** Takes the channel for one command; false when it is busy or retired. */
  reserve(): boolean {
    if (this.gone || this.reserved) return false
    this.reserved = true
    return true
  }

  /** Gives back a reservation that ran nothing. */
  unreserve(): void {
    if (!this.current) this.reserved = false
  }

  /** Resolves true once the loop runs (false: it could not be opened or died). */
  async ready(): Promise<boolean> {
    const ok = await this.opened
    return ok && !this.gone && this.channel !== undefined && channelUsable(this.channel)
  }

  /** Runs a command on the reserved, ready channel. */
  run(command: Command, options: ExecOptions, hooks: LoopHooks): Promise<ExecResult> {
    const channel = this.channel
    if (!channel) throw new Error('The command channel is not open.')
    const running = new LoopCommand(this, channel, command, options, hooks)
    this.current = running
    this.stdout.reset(
      (chunk) => running.stdoutData(chunk),
      (status) => running.streamEnded(status),
    )
    this.stderr.reset(
      (chunk) => running.stderrData(chunk),
      (status) => running.streamEnded(status),
    )
    running.start()
    return running.result
  }

  /** The command is over: the channel takes the next one (unless it retired). */
  release(command: LoopCommand): void {
    if (this.current !== command) return
    this.current = undefined
    this.reserved = false
  }

  /** No more commands on this channel: EOF ends the loop at its next read; the transport opens another. */
  retire(): void {
    if (this.gone) return
    this.gone = true
    this.channel?.end()
    this.resolveOpened(false)
    this.onGone()
  }

  /** Hangs up on the channel (a command that does not end after its kill). */
  hangUp(): void {
    this.retire()
    this.channel?.close()
  }
}

/** A command running on the command channel. */
class LoopCommand extends SshCommandRun {
  private readonly stdin: Buffer | undefined
  private readonly stderrFilter: PgidFilter
  /** The process-group report or any output came: the script started. */
  private started = false
  private pgidKnown = false
  private readonly pgid: Promise<number | undefined>
  private resolvePgid!: (pgid: number | undefined) => void
  private streamsEnded = 0
  private status: number | undefined

  constructor(
    private readonly loop: CommandChannel,
    private readonly channel: ClientChannel,
    private readonly command: Command,
    options: ExecOptions,
    private readonly loopHooks: LoopHooks,
  ) {
    super(options, loopHooks)
    const stdin = command.stdin
    this.stdin = stdin === undefined ? undefined : Buffer.isBuffer(stdin) ? stdin : Buffer.from(stdin as string, 'utf8')
    this.pgid = new Promise<number | undefined>((resolve) => (this.resolvePgid = resolve))
    this.stderrFilter = new PgidFilter(
      (chunk) => {
        this.started = true
        this.options.onStderr?.(chunk)
        this.stderrKept.push(chunk)
      },
      (group) => {
        this.started = true
        this.pgidKnown = true
        this.resolvePgid(group)
      },
    )
  }

  start(): void {
    this.hooks.register(this)
    this.options.signal?.addEventListener('abort', this.onAbort, { once: true })
    this.startTimer()
    if (!channelUsable(this.channel)) {
      this.channelClosed(null)
      return
    }
    // A command with a timeout gets a session of its own: killing it then spares the loop.
    const ownSession = (this.options.timeoutMs ?? 0) > 0
    // The stdin goes as a write of its own: an archive shared by every host is never copied per host.
    this.channel.write(loopHead(this.command, this.stdin?.length ?? 0, ownSession))
    if (this.stdin && this.stdin.length > 0) this.channel.write(this.stdin)
    if (this.options.signal?.aborted) this.abort()
  }

  stdoutData(chunk: Buffer): void {
    this.started = true
    this.options.onStdout?.(chunk)
    this.stdoutKept.push(chunk)
  }

  stderrData(chunk: Buffer): void {
    this.stderrFilter.push(chunk)
  }

  /** One stream's end marker came; with both, the command is over. */
  streamEnded(status: number): void {
    this.status ??= status
    if (++this.streamsEnded < 2) return
    this.stderrFilter.flush()
    this.resolvePgid(undefined)
    // A command killed before the loop had read all it was sent leaves the loop out of step.
    if (this.terminating && (!this.pgidKnown || (this.stdin?.length ?? 0) > 0)) this.loop.retire()
    void this.killDone.then(() => {
      const status = this.status ?? null
      const signalled = this.terminating && status !== null && status > 128
      this.finish({
        code: signalled ? null : status,
        signal: signalled ? signalName(status - 128) : null,
        ...this.output(),
      })
    })
  }

  /** The channel closed under the command (the loop died, or the connection). */
  channelClosed(signal: string | null): void {
    if (this.ended) return
    this.stderrFilter.flush()
    this.resolvePgid(undefined)
    if (!this.hooks.connectionAlive()) {
      this.fail(this.hooks.connectionLost())
      return
    }
    if (!this.started && !this.terminating) {
      // Nothing ran (the loop was killed while idle, say): run it on a channel of its own.
      this.hooks.retried()
      this.follow(this.loopHooks.rerun())
      return
    }
    void this.killDone.then(() => this.finish({ code: null, signal, ...this.output() }))
  }

  /**
   * Kills the command's process group: its own session's (commands with a timeout, when the host
   * has `setsid`: the loop serves on), else the loop's, which ends the channel as well. Normally the
   * end markers come as soon as the group is gone; if not, it hangs up.
   */
  protected killSteps(): ChannelKill {
    return {
      pgid: this.pgid,
      // No group number: the script never started; hanging up ends the loop and the child reading it.
      noGroup: () => this.loop.hangUp(),
      hangUp: () => this.loop.hangUp(),
      giveUp: () => this.finish({ code: null, signal: null, ...this.output() }),
    }
  }

  protected released(): void {
    this.loop.release(this)
  }
}

/** `TERM` for 15: the name sshd would report for a session killed by that signal. */
function signalName(number: number): string | null {
  const entry = Object.entries(constants.signals).find(([, value]) => value === number)
  return entry ? entry[0].replace(/^SIG/, '') : null
}
