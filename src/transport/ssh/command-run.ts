import { OutputBuffer } from '../output-buffer.js'
import type { ExecOptions, ExecResult } from '../types.js'
import type { RunHooks, RunningCommand } from './exec.js'
import { killCommand, type KillSteps } from './kill.js'

/** How a command is stopped on the channel it runs on (see KillSteps). */
export type ChannelKill = Pick<KillSteps, 'pgid' | 'noGroup' | 'hangUp' | 'giveUp'>

/**
 * What a command on a session channel of its own (ChannelCommand) and one on the command channel
 * (LoopCommand) share: the result, settled once; the output kept for it; the timeout and the abort
 * that kill it; and the transport's registration, undone when it ends.
 */
export abstract class SshCommandRun implements RunningCommand {
  readonly result: Promise<ExecResult>
  readonly done: Promise<void>
  protected ended = false
  protected timedOut = false
  protected aborted = false
  protected terminating = false
  /** Settles once the kill was sent: the result waits for it. */
  protected killDone: Promise<void> = Promise.resolve()
  protected timer: NodeJS.Timeout | undefined
  protected readonly collect: boolean
  /** What the result keeps: the last maxStdout/maxStderr bytes (memory stays bounded on huge output). */
  protected readonly stdoutKept: OutputBuffer
  protected readonly stderrKept: OutputBuffer
  protected readonly onAbort = () => this.abort()
  private graceTimer: NodeJS.Timeout | undefined
  private resolveResult!: (result: ExecResult) => void
  private rejectResult!: (error: Error) => void
  private markDone!: () => void

  constructor(
    protected readonly options: ExecOptions,
    protected readonly hooks: RunHooks,
  ) {
    this.collect = options.collect !== false
    this.stdoutKept = new OutputBuffer(this.collect ? (options.maxStdout ?? Infinity) : 0)
    this.stderrKept = new OutputBuffer(this.collect ? (options.maxStderr ?? Infinity) : 0)
    this.done = new Promise<void>((resolve) => (this.markDone = resolve))
    this.result = new Promise<ExecResult>((resolve, reject) => {
      this.resolveResult = resolve
      this.rejectResult = reject
    })
  }

  /** Kills the command; it then resolves with `aborted`. */
  abort(): void {
    if (this.terminating || this.ended) return
    this.aborted = true
    this.terminate()
  }

  lost(error: Error): void {
    this.fail(error)
  }

  /** How to kill the command on its channel; undefined while it has none (it is killed once it has). */
  protected abstract killSteps(): ChannelKill | undefined

  /** Called once when the command ended, after the transport was told. */
  protected released(): void {}

  /** Starts the timeout (once), which kills the command and resolves it with `timedOut`. */
  protected startTimer(): void {
    const timeoutMs = this.options.timeoutMs
    if (this.timer || timeoutMs === undefined || timeoutMs <= 0) return
    this.timer = setTimeout(() => {
      if (this.terminating) return
      this.timedOut = true
      this.terminate()
    }, timeoutMs)
  }

  /** Kills the command's process group (or, without its number, as the channel says), then hangs up if it lingers. */
  protected terminate(): void {
    if (this.terminating) return
    this.terminating = true
    if (this.timer) clearTimeout(this.timer)
    const steps = this.killSteps()
    if (!steps) return
    this.killDone = killCommand(
      { ...steps, killGroup: (pgid) => this.hooks.killGroup(pgid), ended: () => this.ended },
      (timer) => (this.graceTimer = timer),
    )
  }

  /** The result's output and flags (everything but the exit status). */
  protected output(): Omit<ExecResult, 'code' | 'signal'> {
    return {
      stdout: this.stdoutKept.text(),
      stderr: this.stderrKept.text(),
      timedOut: this.timedOut,
      aborted: this.aborted,
      ...(this.stdoutKept.dropped > 0 && this.collect ? { stdoutDropped: this.stdoutKept.dropped } : {}),
      ...(this.stderrKept.dropped > 0 && this.collect ? { stderrDropped: this.stderrKept.dropped } : {}),
    }
  }

  protected finish(result: ExecResult): void {
    if (this.end()) this.resolveResult(result)
  }

  protected fail(error: Error): void {
    if (this.end()) this.rejectResult(error)
  }

  /** Ends this command with what another run of it gives (it runs again elsewhere). */
  protected follow(rerun: Promise<ExecResult>): void {
    if (this.end()) rerun.then(this.resolveResult, this.rejectResult)
  }

  /** The command is over: timers stopped, the transport told. False when it was over already. */
  protected end(): boolean {
    if (this.ended) return false
    this.ended = true
    if (this.timer) clearTimeout(this.timer)
    if (this.graceTimer) clearTimeout(this.graceTimer)
    this.options.signal?.removeEventListener('abort', this.onAbort)
    this.hooks.unregister(this)
    this.released()
    this.markDone()
    return true
  }
}
