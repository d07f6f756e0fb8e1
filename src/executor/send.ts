import { CommandError, DeployError, InterruptedError } from '../model/errors.js'
import type { Host } from '../model/host.js'
import { displayOf, type Command } from '../shell/command.js'
import { failedQueuedIndex, withoutQueuedMarker } from '../shell/protocol.js'
import { queuedBatch } from '../shell/protocol.js'
import type { SecretRegistry } from '../shell/redact.js'
import type { ExecResult, Transport } from '../transport/types.js'
import { declareExitCode, exitCodeOf } from './errors.js'
import { LineSplitter } from './output.js'
import type { FailureMeaning, QueueOptions, RunOptions } from '../dsl/context.js'

/** What `run()` returns at most of a streamed command's stdout (its last 4 MiB), unless `maxOutput` says otherwise. */
export const DEFAULT_MAX_OUTPUT = 4 * 1024 * 1024
import type { QueuedOwner, RunState } from './run-state.js'

/** Of stderr, what the result keeps (its last 1 MiB): the end of it explains a failure. */
const MAX_STDERR = 1024 * 1024
/** Of stdout and stderr, what a CommandError carries (the last 64 KiB of each). */
const ERROR_OUTPUT_TAIL = 64 * 1024

/** Who sends a command: the run, the host, the task, and the abort signal its commands obey. */
export interface Sender {
  state: RunState
  host: Host
  task: string
  /** Undefined for recovery steps and abort handlers, which run even after Ctrl-C. */
  signal: AbortSignal | undefined
}

/**
 * Queues `command` (its cwd and env set) for the host's next round trip; `owner`, the step that
 * queued it, is told how it ended.
 */
export function enqueue(sender: Sender, command: Command, options: QueueOptions, owner: QueuedOwner | undefined): void {
  const { state, host } = sender
  state.secrets.add(...command.secrets, ...(options.secrets ?? []))
  const queue = state.batches.get(host.alias) ?? []
  owner?.add()
  queue.push({ task: sender.task, command, owner, failure: options.failure })
  state.batches.set(host.alias, queue)
}

/**
 * Runs `command` (its cwd, env and stdin set) on `transport`, carrying the commands queued for
 * the host (unless it runs locally or reads for a dry run): one round trip. Emits the events of
 * each command, settles each queued one with its owner, and throws for a failure as `options` say.
 */
export async function send(sender: Sender, transport: Transport, command: Command, options: RunOptions, local: boolean): Promise<ExecResult> {
  const { state, task } = sender
  const host = sender.host.alias
  state.secrets.add(...command.secrets, ...(options.secrets ?? []))
  if (sender.signal?.aborted) throw new InterruptedError()
  // A dry run reads the host for real; what was queued stays with the recorder.
  const reader = options.readOnly && !local ? state.readTransportFor(sender.host) : undefined
  if (reader) transport = reader
  const batch = local || reader ? [] : (state.batches.get(host) ?? [])
  // `:` only carries queued commands (flush): it gets no events of its own.
  const shownOwn = command.text !== ':' || batch.length === 0
  const shownCommand = displayOf(command)
  if (batch.length > 0) {
    state.batches.delete(host)
    for (const queued of batch) state.emit({ type: 'command:start', host, task: queued.task, command: displayOf(queued.command) })
  }
  if (shownOwn) state.emit({ type: 'command:start', host, task, command: shownCommand, local: local || undefined })
  const started = Date.now()
  const splitter = (stream: 'stdout' | 'stderr') =>
    new LineSplitter((text, partial) => state.emit({ type: 'command:output', host, task, stream, text, ...(partial ? { partial: true } : {}) }), state.secrets)
  const maxStdout = options.maxOutput ?? (options.quiet ? undefined : DEFAULT_MAX_OUTPUT)
  const out = splitter('stdout')
  const err = splitter('stderr')
  const ended = (commandTask: string, exitCode: number | null) =>
    state.emit({ type: 'command:end', host, task: commandTask, exitCode, durationMs: Date.now() - started })
  const notRun = (queuedBy: string | undefined, shown: string, reason: unknown, meaning: FailureMeaning | undefined) =>
    notRunError(state, host, queuedBy, shown, reason, meaning)
  let result: ExecResult
  try {
    result = await transport.exec(batch.length > 0 ? queuedBatch(batch.map((queued) => queued.command), command) : command, {
      timeoutMs: options.timeout ? options.timeout * 1000 : undefined,
      signal: sender.signal,
      onStdout: options.quiet ? undefined : (chunk) => out.push(chunk),
      onStderr: options.quiet ? undefined : (chunk) => err.push(chunk),
      maxStdout,
      maxStderr: MAX_STDERR,
    })
  } catch (error) {
    // The connection failed (or could not be made): none of these commands is known to have run.
    out.flush()
    err.flush()
    for (const queued of batch) ended(queued.task, null)
    if (shownOwn) ended(task, null)
    for (const queued of batch) queued.owner?.settle(notRun(queued.task, displayOf(queued.command), error, queued.failure))
    throw options.failure && shownOwn ? notRun(undefined, shownCommand, error, options.failure) : error
  }
  out.flush()
  err.flush()
  if (result.stdoutDropped && options.maxOutput === undefined) {
    const mib = maxStdout! / 1024 / 1024
    state.emit({
      type: 'log',
      level: 'warning',
      host,
      task,
      message: `The command printed more than ${mib} MiB: run() returned only its last ${mib} MiB (the rest was streamed). Pass { maxOutput } to keep more.`,
    })
  }
  // How each queued command ended: the marker names the one that failed; those after it never ran.
  const failedIndex = batch.length > 0 && result.code !== 0 ? failedQueuedIndex(result.stderr) : -1
  // Killed (timeout, Ctrl-C) with no marker: whether the queued commands finished is not known.
  const unknown = failedIndex === -1 && (result.aborted || result.code === null)
  let failedQueued: CommandError | undefined
  const queuedErrors = batch.map((queued, index) => {
    if (failedIndex === index) {
      // A queued command failed: reported for the task that queued it, whatever `nothrow` says here.
      const shown = state.secrets.redact(displayOf(queued.command))
      failedQueued = new CommandError(
        `Command on ${host} (queued by ${queued.task}) exited with code ${result.code}: ${firstLine(shown)}`,
        {
          host,
          command: shown,
          exitCode: result.code,
          signal: result.signal,
          stdout: errorOutput(result.stdout, result.stdoutDropped, state.secrets),
          stderr: errorOutput(withoutQueuedMarker(result.stderr), result.stderrDropped, state.secrets),
          timedOut: result.timedOut,
          queuedBy: queued.task,
        },
        queued.failure,
      )
      declareExitCode(failedQueued, queued.failure)
      return failedQueued as unknown
    }
    if ((failedIndex !== -1 && index > failedIndex) || unknown) {
      const reason = unknown
        ? new InterruptedError(result.aborted ? 'the run was interrupted' : `the command it was sent with was killed by ${result.signal ?? 'a signal'}`)
        : new DeployError(`an earlier queued command failed (queued by ${batch[failedIndex].task})`)
      return notRun(queued.task, displayOf(queued.command), reason, queued.failure)
    }
    return undefined
  })
  for (const [index, queued] of batch.entries()) ended(queued.task, failedIndex === index ? result.code : queuedErrors[index] ? null : 0)
  if (shownOwn) ended(task, failedIndex === -1 ? result.code : null)
  for (const [index, queued] of batch.entries()) queued.owner?.settle(queuedErrors[index], task)
  if (result.aborted) throw new InterruptedError(`Interrupted while running a command on ${host}.`)
  if (failedQueued) throw options.failure && shownOwn ? notRun(undefined, shownCommand, failedQueued, options.failure) : failedQueued
  if (result.code !== 0 && !options.nothrow) {
    const shown = state.secrets.redact(shownCommand)
    const reason = result.timedOut
      ? `timed out after ${options.timeout}s`
      : result.code === null
        ? `was killed by ${result.signal ?? 'a signal'}`
        : `exited with code ${result.code}`
    const error = new CommandError(
      `Command on ${host} ${reason}: ${firstLine(shown)}`,
      {
        host,
        command: shown,
        exitCode: result.code,
        signal: result.signal,
        stdout: errorOutput(result.stdout, result.stdoutDropped, state.secrets),
        stderr: errorOutput(result.stderr, result.stderrDropped, state.secrets),
        timedOut: result.timedOut,
      },
      options.failure,
    )
    throw declareExitCode(error, options.failure)
  }
  return result
}

/**
 * The error of a command that never ran (`queuedBy` for a queued one): it names the host, the
 * command and why, and carries the command's own failure meaning (else the reason's exit code).
 */
export function notRunError(
  state: RunState,
  host: string,
  queuedBy: string | undefined,
  script: string,
  reason: unknown,
  meaning: FailureMeaning | undefined,
): DeployError {
  const shown = state.secrets.redact(script)
  const why = state.secrets.redact(reason instanceof Error ? reason.message : String(reason))
  const error = new DeployError(`Command on ${host}${queuedBy ? ` (queued by ${queuedBy})` : ''} did not run: ${firstLine(shown)} (${why.replace(/\.$/, '')})`, {
    exitCode: meaning?.exitCode ?? exitCodeOf(reason),
    hint: meaning?.hint ?? (reason instanceof DeployError ? reason.hint : undefined),
    cause: reason,
  })
  return declareExitCode(error, meaning)
}

/**
 * A command's output as a CommandError carries it: masked, then its last ERROR_OUTPUT_TAIL
 * characters (from a line start when there is one). Output the transport already cut (`dropped`)
 * may begin inside a secret, which masking would not recognise: its first, partial line goes (or,
 * in one endless line, as much as the longest secret).
 */
function errorOutput(text: string, dropped: number | undefined, secrets: SecretRegistry): string {
  if (dropped) {
    const newline = text.indexOf('\n')
    text = newline >= 0 ? text.slice(newline + 1) : text.slice(Math.min(text.length, secrets.maxLength))
  }
  const masked = secrets.redact(text)
  if (masked.length <= ERROR_OUTPUT_TAIL) return masked
  const tail = masked.slice(masked.length - ERROR_OUTPUT_TAIL)
  const newline = tail.indexOf('\n')
  return newline >= 0 && newline < tail.length - 1 ? tail.slice(newline + 1) : tail
}

function firstLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() && l.trim() !== 'set -e')
  return lines.length > 1 ? `${lines[0]} … (${lines.length} lines)` : (lines[0] ?? text)
}
