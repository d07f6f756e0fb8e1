/**
 * One step of a plan on its hosts (a barrier), and what ends it: each host's
 * step:end once its body returned and its queued commands settled; the queued
 * commands still waiting sent at the end of a phase or batch.
 */
import pLimit from 'p-limit'
import { taskContextStorage } from '../dsl/ambient.js'
import type { FailureInfo } from '../dsl/context.js'
import { InterruptedError } from '../model/errors.js'
import type { ErrorInfo } from '../model/events.js'
import type { Host } from '../model/host.js'
import type { PlanStep } from '../plan/plan.js'
import { TaskContext } from './context.js'
import { describeError } from './errors.js'
import type { QueuedOwner, RunState } from './run-state.js'

/** A host on which a step failed, and why. */
export interface HostFailure {
  host: Host
  error: unknown
}

/** A step whose body succeeded, but a command it queued failed or never ran (found later). */
export interface QueuedFailure extends HostFailure {
  task: string
  phase?: PlanStep['phase']
}

/**
 * The end of one step on one host: it comes once the body returned and every
 * command the body queued was settled (ran, failed, or will never run), so a
 * step line never shows ✔ for work that did not happen.
 */
class StepEnd implements QueuedOwner {
  private pending = 0
  private bodyDone = false
  private ended = false
  private error: unknown
  private onEnd: (error: unknown) => void = () => undefined
  /** Commands the body queued, and the step that sent them: the step line says where their time went. */
  queued = 0
  sentBy: string | undefined

  add(): void {
    this.pending++
    this.queued++
  }

  settle(error?: unknown, sentBy?: string): void {
    this.pending = Math.max(0, this.pending - 1)
    if (error !== undefined && this.error === undefined) this.error = error
    if (sentBy !== undefined) this.sentBy = sentBy
    this.check()
  }

  /** The body returned: end now, or once its queued commands are settled. */
  bodyReturned(onEnd: (error: unknown) => void): void {
    this.onEnd = onEnd
    this.bodyDone = true
    this.check()
  }

  /** The body threw: the step ended (its step:end is emitted by the caller); later news is ignored. */
  bodyFailed(): void {
    this.ended = true
  }

  private check(): void {
    if (this.ended || !this.bodyDone || this.pending > 0) return
    this.ended = true
    this.onEnd(this.error)
  }
}

/**
 * Runs one step on its hosts in parallel (bounded by the step's limit) and
 * waits for all of them: every step is a barrier, so no host starts a step
 * before every host finished the one before. A step whose body queued
 * commands ends when they ran (see StepEnd); failures of those are pushed to
 * `queuedFailures` when they are known.
 */
export async function runStep(
  state: RunState,
  step: PlanStep,
  index: number,
  failure: FailureInfo | undefined,
  finishIsWarning: boolean,
  queuedFailures: QueuedFailure[],
  batch?: number,
): Promise<HostFailure[]> {
  const limit = pLimit(step.limit && step.limit > 0 ? step.limit : Math.max(1, step.hosts.length))
  const failures: HostFailure[] = []
  const recovery = failure !== undefined
  const failedStatus = step.phase === 'finish' && !recovery && finishIsWarning ? 'warning' : 'failed'
  await Promise.all(
    step.hosts.map((host) =>
      limit(async () => {
        const task = step.task.name
        const started = Date.now()
        const tripsBefore = state.roundTripsOf(host)
        const fields = { task, host: host.alias, phase: step.phase, recovery: recovery || undefined, hidden: step.task.hidden || undefined, index, batch }
        // Measured when the body returns: queued commands are paid for by the step that sends them.
        const ended = () => ({ durationMs: Date.now() - started, roundTrips: state.roundTripsOf(host) - tripsBefore })
        state.emit({ type: 'step:start', ...fields })
        const end = new StepEnd()
        const ctx = new TaskContext(host, task, state, failure, step.phase, end)
        try {
          if (!recovery && state.signal?.aborted) throw new InterruptedError()
          await taskContextStorage.run(ctx, () => step.task.body!(ctx))
        } catch (error) {
          end.bodyFailed()
          failures.push({ host, error })
          state.emit({ type: 'step:end', ...fields, status: failedStatus, ...ended(), error: describeError(error, { host: host.alias, task }) })
          return
        }
        const measured = ended()
        end.bodyReturned((error) => {
          // Queued by this step, sent by another: say so instead of a bare (near zero) time.
          const queued = end.queued > 0 && end.sentBy !== undefined && end.sentBy !== task ? { queued: end.queued, sentBy: end.sentBy } : {}
          const timing = { ...measured, ...queued }
          if (error === undefined) {
            state.emit({ type: 'step:end', ...fields, status: 'ok', ...timing })
            return
          }
          queuedFailures.push({ host, error, task, phase: step.phase })
          state.emit({ type: 'step:end', ...fields, status: failedStatus, ...timing, error: describeError(error, { host: host.alias, task }) })
        })
      }),
    ),
  )
  return failures
}

/** The error with every known secret masked: it reaches the terminal outside the event stream. */
export function maskError(state: RunState, info: ErrorInfo): ErrorInfo {
  const mask = (text: string | undefined) => (text === undefined ? undefined : state.secrets.redact(text))
  return { ...info, message: mask(info.message)!, hint: mask(info.hint), command: mask(info.command), stderr: mask(info.stderr) }
}

/** Sends every host's queued commands (one round trip per host that has any). */
export async function flushBatches(state: RunState, hosts: Host[], step: PlanStep, failure?: FailureInfo): Promise<HostFailure[]> {
  const failures: HostFailure[] = []
  await Promise.all(
    hosts
      .filter((host) => state.batches.get(host.alias)?.length)
      .map(async (host) => {
        const ctx = new TaskContext(host, step.task.name, state, failure, step.phase)
        try {
          await ctx.flush()
        } catch (error) {
          failures.push({ host, error })
          state.emit({
            type: 'log',
            level: 'error',
            host: host.alias,
            task: step.task.name,
            message: describeError(error).message,
          })
        }
      }),
  )
  return failures
}
