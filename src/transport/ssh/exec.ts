import type { Readable } from 'node:stream'
import type { Client, ClientChannel } from 'ssh2'
import type { Command } from '../../shell/command.js'
import { ScriptExit } from '../../shell/protocol.js'
import { SSH_BOOTSTRAP, sshPayload } from '../../shell/protocol.js'
import type { ExecOptions, ExecResult } from '../types.js'
import { type ChannelKill, SshCommandRun } from './command-run.js'
import { channelUsable, openExecChannel, type OpenHooks } from './open-channel.js'
import { PgidFilter } from './pgid-filter.js'

/** A command in flight, so close() can stop it. */
export interface RunningCommand {
  /** Kills the remote process group; the command then resolves with `aborted`. */
  abort(): void
  /** The connection is gone: the command fails now with `error` (its channel may never close). */
  lost(error: Error): void
  readonly done: Promise<unknown>
}

/** What a command needs from its transport. */
export interface RunHooks extends OpenHooks {
  /** Kills a remote process group (through another exec on the same connection). */
  killGroup(pgid: number): Promise<void>
  /** Error to throw when the connection died under the command. */
  connectionLost(): Error
  register(command: RunningCommand): void
  unregister(command: RunningCommand): void
  /** A spare channel could not run the bootstrap (no `dd`, say): stop using spares on this connection. */
  sparesBroken?(): void
}

/** How one channel of a command went. */
interface Attempt {
  fromSpare: boolean
  /** The shell reported its process group or printed on stderr: the script started. */
  started: boolean
  sawStdout: boolean
  code?: number | null
  signal?: string
  stderrEnded: boolean
  closed: boolean
  settled: boolean
  stderr: PgidFilter
}

/**
 * One command on an SSH session channel, for the channel's whole life: opened (or taken from the
 * spares), sent its payload and stdin, its output streamed, killed on timeout or abort (its
 * process group, through the transport), closed, or failed at once when the connection is lost.
 * What it sends is the shell protocol's (SSH_BOOTSTRAP, sshPayload).
 *
 * With `spare` (a pre-opened channel running SSH_BOOTSTRAP, or undefined once it died) a command
 * costs one network turn. Without (or when the spare died before it could be used), it opens its
 * own channel: three turns (open, exec, script). A spare that dies after the script was sent but
 * before it started (no process-group report, no output) is replaced the same way, when the stdin
 * can be sent again (string or Buffer).
 */
export class ChannelCommand extends SshCommandRun {
  private readonly payload: Buffer
  private channel: ClientChannel | undefined
  private exitCode: number | null | undefined
  private exitSignal: string | null = null
  private pgid!: Promise<number | undefined>
  private resolvePgid!: (pgid: number | undefined) => void
  private forceSettle: () => void = () => undefined

  constructor(
    private readonly client: Client,
    private readonly command: Command,
    options: ExecOptions,
    hooks: RunHooks,
    spare?: Promise<ClientChannel | undefined>,
  ) {
    super(options, hooks)
    this.payload = sshPayload(command)
    this.newPgid()
    if (options.signal?.aborted) {
      this.aborted = true
      this.finish(emptyResult({ aborted: true }))
      return
    }
    options.signal?.addEventListener('abort', this.onAbort, { once: true })
    hooks.register(this)
    if (!spare) this.openOwn()
    else spare.then((opened) => this.startOnSpare(opened), () => this.openOwn())
  }

  private newPgid(): void {
    this.pgid = new Promise<number | undefined>((resolve) => (this.resolvePgid = resolve))
  }

  private startOnSpare(opened: ClientChannel | undefined): void {
    if (opened && this.terminating) opened.end() // aborted while the spare started: it runs nothing
    if (opened && !this.terminating && channelUsable(opened)) this.start(opened, true)
    else this.openOwn()
  }

  private openOwn(): void {
    if (this.terminating && !this.channel) {
      // Aborted while waiting for a spare that died: nothing ran.
      this.finish(emptyResult({ aborted: this.aborted, timedOut: this.timedOut }))
      return
    }
    openExecChannel(this.client, SSH_BOOTSTRAP.text, this.hooks, (error, opened) => {
      if (error || !opened) this.fail(this.hooks.connectionAlive() ? (error ?? new Error('no channel')) : this.hooks.connectionLost())
      else if (this.ended) opened.end()
      else this.start(opened, false)
    })
  }

  /** Runs the command on an open channel running SSH_BOOTSTRAP. */
  private start(opened: ClientChannel, fromSpare: boolean): void {
    this.channel = opened
    this.startTimer()
    if (this.terminating) {
      // Killed before it had a channel: kill it now that it has one.
      this.terminating = false
      this.terminate()
    }
    const attempt: Attempt = {
      fromSpare,
      started: false,
      sawStdout: false,
      stderrEnded: false,
      closed: false,
      settled: false,
      stderr: new PgidFilter(
        (chunk) => {
          attempt.started = true
          this.options.onStderr?.(chunk)
          this.stderrKept.push(chunk)
        },
        (group) => {
          attempt.started = true
          this.resolvePgid(group)
        },
      ),
    }
    opened.on('data', (chunk: Buffer) => {
      attempt.sawStdout = true
      this.options.onStdout?.(chunk)
      this.stdoutKept.push(chunk)
    })
    opened.stderr.on('data', (chunk: Buffer) => attempt.stderr.push(chunk))
    opened.on('exit', (code: number | null, signal?: string) => {
      attempt.code = code
      attempt.signal = signal
      this.exitCode = code
      this.exitSignal = code === null ? (signal ?? null) : null
    })
    const stderrEnded = () => {
      attempt.stderrEnded = true
      this.settle(attempt)
    }
    opened.stderr.once('end', stderrEnded)
    opened.stderr.once('close', stderrEnded)
    this.forceSettle = () => {
      attempt.closed = true
      stderrEnded()
    }
    opened.once('close', () => {
      attempt.closed = true
      // ssh2 ends stderr right before 'close'; give its 'end' a turn if it is still queued.
      setImmediate(stderrEnded)
    })
    writeInput(opened, this.payload, this.command.stdin)
  }

  /** The channel closed and its stderr ended: the command's result, or another try on a channel of its own. */
  private settle(attempt: Attempt): void {
    if (attempt.settled || !attempt.stderrEnded || !attempt.closed) return
    attempt.settled = true
    // A spare that died before the script started (killed while idle, or the bootstrap refused
    // an incomplete script): nothing ran, so run it again on a channel of its own.
    const incomplete = attempt.code === ScriptExit.IncompleteScript
    const neverStarted = !attempt.started && !attempt.sawStdout && (attempt.code === undefined || attempt.code === null || incomplete)
    if (attempt.fromSpare && neverStarted && !this.terminating && this.hooks.connectionAlive()) {
      if (incomplete && attempt.signal === undefined) this.hooks.sparesBroken?.()
      const stdin = this.command.stdin
      if (stdin !== undefined && typeof stdin !== 'string' && !Buffer.isBuffer(stdin)) {
        this.fail(new Error('The SSH channel of the command closed before the command started, and its stdin stream cannot be sent again.'))
        return
      }
      this.channel = undefined
      this.exitCode = undefined
      this.exitSignal = null
      this.stdoutKept.reset()
      this.stderrKept.reset()
      this.newPgid()
      this.hooks.retried()
      this.openOwn()
      return
    }
    attempt.stderr.flush()
    this.resolvePgid(undefined)
    void this.killDone.then(() => {
      if (this.exitCode === undefined && !this.terminating && !this.hooks.connectionAlive()) {
        this.fail(this.hooks.connectionLost())
        return
      }
      this.finish({ code: this.exitCode ?? null, signal: this.exitSignal, ...this.output() })
    })
  }

  /**
   * Kills the remote process group (or, without its number, the session), then closes the channel.
   * Without a channel yet, it is killed as soon as the channel opens (start()).
   */
  protected killSteps(): ChannelKill | undefined {
    const open = this.channel
    if (!open) return undefined
    // Normally the channel closes as soon as the group is gone; if not, hang up on it.
    return {
      pgid: this.pgid,
      // No group number (the shell never started): ask sshd to signal the session, then hang up.
      noGroup: () => open.signal('KILL'),
      hangUp: () => open.close(),
      giveUp: () => this.forceSettle(),
    }
  }
}

/** Writes the payload, then the command's own stdin (a stream is piped), then EOF. */
function writeInput(channel: ClientChannel, payload: Buffer, stdin: Command['stdin']): void {
  channel.write(payload)
  if (stdin === undefined) {
    channel.end()
  } else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) {
    channel.end(stdin)
  } else {
    const source = stdin as Readable
    source.once('error', () => channel.end())
    channel.once('close', () => source.unpipe(channel))
    source.pipe(channel)
  }
}

/** The result of a command that never ran. */
export function emptyResult(flags: { aborted?: boolean; timedOut?: boolean }): ExecResult {
  return { code: null, signal: null, stdout: '', stderr: '', timedOut: flags.timedOut ?? false, aborted: flags.aborted ?? false }
}
