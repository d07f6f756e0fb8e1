import pLimit from 'p-limit'
import { ExitCode, InterruptedError, type ExitCodeValue } from '../model/errors.js'
import type { ErrorInfo, PlannedStep } from '../model/events.js'
import type { Host } from '../model/host.js'
import type { Plan, PlanStep } from '../plan/plan.js'
import { TaskContext } from './context.js'
import { displayOf } from '../shell/command.js'
import { notRunError } from './send.js'
import { taskContextStorage } from '../dsl/ambient.js'
import type { FailureInfo } from '../dsl/context.js'
import { declaredExitCode, describeError, exitCodeOf } from './errors.js'
import type { QueuedOwner, RunState } from './run-state.js'
import { DeployError } from '../model/errors.js'

/** How a run ended. */
export interface RunOutcome {
  status: 'success' | 'failed' | 'rollback-failed' | 'interrupted'
  exitCode: ExitCodeValue
  /** The first failure, if any. */
  failure?: FailureInfo
  /** The raw error of the first failure. */
  error?: unknown
  /** Every failure when several hosts failed before any step ran (hosts that could not be reached); `failure` is the first. */
  errors?: ErrorInfo[]
  /** Failures of the recovery (fail hooks / rollback) itself. */
  recoveryErrors: ErrorInfo[]
  /** Warnings from best-effort (`finish`) steps. */
  warnings: ErrorInfo[]
  durationMs: number
}

interface HostFailure {
  host: Host
  error: unknown
}

/** A step whose body succeeded, but a command it queued failed or never ran (found later). */
interface QueuedFailure extends HostFailure {
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
async function runStep(
  state: RunState,
  step: PlanStep,
  index: number,
  failure: FailureInfo | undefined,
  finishIsWarning: boolean,
  queuedFailures: QueuedFailure[],
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
        const fields = { task, host: host.alias, phase: step.phase, recovery: recovery || undefined, hidden: step.task.hidden || undefined, index }
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

/** A step as `run:start` announces it. */
function plannedStep(step: PlanStep): PlannedStep {
  return {
    task: step.task.name,
    hosts: step.hosts.map((h) => h.alias),
    phase: step.phase,
    hidden: step.task.hidden || undefined,
    once: step.task.once || undefined,
  }
}

/** The error with every known secret masked: it reaches the terminal outside the event stream. */
function maskError(state: RunState, info: ErrorInfo): ErrorInfo {
  const mask = (text: string | undefined) => (text === undefined ? undefined : state.secrets.redact(text))
  return { ...info, message: mask(info.message)!, hint: mask(info.hint), command: mask(info.command), stderr: mask(info.stderr) }
}

/** Sends every host's queued commands (one round trip per host that has any). */
async function flushBatches(state: RunState, hosts: Host[], step: PlanStep, failure?: FailureInfo): Promise<HostFailure[]> {
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

/**
 * Runs a plan: steps in order, each on all its hosts in parallel. A failure in
 * a `finish` step is a warning; any other failure stops the run and runs the
 * top-level task's `fail` hook on every selected host, with `ctx.failure` set
 * so recipes can discard or roll back what the failed phase left.
 */
export async function executePlan(state: RunState, plan: Plan): Promise<RunOutcome> {
  const started = Date.now()
  const warnings: ErrorInfo[] = []
  state.emit({
    type: 'run:start',
    task: plan.task,
    hosts: plan.hosts.map((h) => h.alias),
    steps: plan.steps.map(plannedStep),
    recoverySteps: plan.failSteps.length > 0 ? plan.failSteps.map(plannedStep) : undefined,
    dryRun: state.dryRun,
  })

  let outcome: RunOutcome | undefined = state.dryRun ? undefined : await connectAll(state, plan.hosts, started)
  const steps = outcome ? [] : plan.steps.filter((s) => s.hosts.length > 0)
  // Best effort only once something went live: a finish task run on its own fails like any task.
  const finishIsWarning = steps.some((s) => s.phase === 'switch')
  const queuedFailures: QueuedFailure[] = []
  let queuedSeen = 0
  /** The highest exit code a failed best-effort command declared (its `failure` option), 0 when none. */
  let finishExitCode: ExitCodeValue = ExitCode.Success
  for (const [index, step] of steps.entries()) {
    const failures = await runStep(state, step, plan.steps.indexOf(step), undefined, finishIsWarning, queuedFailures)
    // Queued commands must land before the phase ends: no host switches before every host is prepared.
    const bestEffort = step.phase === 'finish' && finishIsWarning
    if ((failures.length === 0 || bestEffort) && (index === steps.length - 1 || steps[index + 1].phase !== step.phase)) {
      failures.push(...(await flushBatches(state, plan.hosts, step)))
    }
    const queued = queuedFailures.slice(queuedSeen)
    queuedSeen = queuedFailures.length
    if (bestEffort) {
      const seen = new Set(failures.map((f) => f.error))
      // A queued command that never ran is a failure of its own (the one that failed is already in `failures`).
      const all = [...failures.map((f) => ({ ...f, task: step.task.name })), ...queued.filter((f) => f.phase === 'finish' && !seen.has(f.error))]
      for (const { host, error, task } of all) {
        const info = maskError(state, describeError(error, { host: host.alias, task }))
        warnings.push(info)
        state.emit({ type: 'log', level: 'warning', host: host.alias, task, message: `Finish step failed (the deploy stays live): ${info.message}` })
        const declared = declaredExitCode(error)
        if (declared !== undefined && declared > finishExitCode) finishExitCode = declared
      }
      continue
    }
    if (failures.length === 0) continue
    outcome = await recover(state, plan, step, failures, warnings, started)
    break
  }

  // Anything still queued (the run stopped before it was sent) never ran: its step says so before run:end.
  state.dropQueued((queued, host) => notRunError(state, host, queued.task, displayOf(queued.command), new DeployError('the run ended before it was sent'), queued.failure))
  outcome ??=
    finishExitCode !== ExitCode.Success
      ? { status: 'failed', exitCode: finishExitCode, recoveryErrors: [], warnings, durationMs: Date.now() - started }
      : { status: 'success', exitCode: ExitCode.Success, recoveryErrors: [], warnings, durationMs: Date.now() - started }
  outcome.durationMs = Date.now() - started
  state.emit({
    type: 'run:end',
    status: outcome.status,
    exitCode: outcome.exitCode,
    durationMs: outcome.durationMs,
    roundTrips: state.roundTrips(),
    summary: state.summary(plan.task),
    error: outcome.failure?.error,
    errors: outcome.errors,
    recoveryErrors: outcome.recoveryErrors.length > 0 ? outcome.recoveryErrors : undefined,
    warnings: outcome.warnings.length > 0 ? outcome.warnings : undefined,
  })
  return outcome
}

/**
 * Connects every selected host at once and waits, before the first step: one
 * unreachable host (refused, timed out, authentication or host key refused)
 * ends the run here, before the lock, with nothing run anywhere and one error
 * per such host, each naming its own host and address. Without this, the
 * healthy hosts would run their first steps and then fail in the recovery
 * while trying to reach the missing one. Returns the outcome of a run that
 * cannot start, or undefined when every host is connected.
 */
async function connectAll(state: RunState, hosts: Host[], started: number): Promise<RunOutcome | undefined> {
  const failures: HostFailure[] = []
  const connecting = Promise.all(
    hosts.map(async (host) => {
      const transport = state.transportFor(host)
      if (!transport.connect) return
      try {
        await transport.connect()
      } catch (error) {
        failures.push({ host, error })
      }
    }),
  )
  // Ctrl-C while connecting: stop waiting (run-task closes the transports, which cancels the handshakes).
  const signal = state.signal
  let onAbort: (() => void) | undefined
  const aborted = new Promise<void>((resolve) => {
    onAbort = resolve
    signal?.addEventListener('abort', onAbort, { once: true })
  })
  await Promise.race([connecting, aborted])
  if (onAbort) signal?.removeEventListener('abort', onAbort)
  if (signal?.aborted) {
    const error = maskError(state, describeError(new InterruptedError('Interrupted while connecting to the hosts; nothing ran.')))
    const failure: FailureInfo = { task: '(connect)', host: '', interrupted: true, error }
    return { status: 'interrupted', exitCode: ExitCode.Interrupted, failure, recoveryErrors: [], warnings: [], durationMs: Date.now() - started }
  }
  if (failures.length === 0) return undefined
  failures.sort((a, b) => hosts.indexOf(a.host) - hosts.indexOf(b.host))
  // Each error names only its own host: describeError gets that host, never the step's or another's.
  const errors = failures.map(({ host, error }) => maskError(state, describeError(error, { host: host.alias })))
  state.emit({
    type: 'log',
    level: 'error',
    message: `${failures.length} of ${hosts.length} ${hosts.length === 1 ? 'host' : 'hosts'} could not be reached: nothing ran on any host.`,
  })
  const first = failures[0]
  const failure: FailureInfo = { task: '(connect)', host: first.host.alias, interrupted: false, error: errors[0] }
  return {
    status: 'failed',
    exitCode: exitCodeOf(first.error),
    failure,
    error: first.error,
    errors: errors.length > 1 ? errors : undefined,
    recoveryErrors: [],
    warnings: [],
    durationMs: Date.now() - started,
  }
}

async function recover(
  state: RunState,
  plan: Plan,
  step: PlanStep,
  failures: HostFailure[],
  warnings: ErrorInfo[],
  started: number,
): Promise<RunOutcome> {
  // An interruption wins over the errors it caused (killed commands).
  const interrupted = state.signal?.aborted === true || failures.some((f) => f.error instanceof InterruptedError)
  const first = failures.find((f) => !(f.error instanceof InterruptedError)) ?? failures[0]
  const failure: FailureInfo = {
    task: step.task.name,
    host: first.host.alias,
    phase: step.phase,
    interrupted,
    error: maskError(state, describeError(first.error, { host: first.host.alias, task: step.task.name })),
  }
  // A queued command fails in the step that sent it; the failure belongs to the task that queued it.
  failure.task = failure.error.task ?? failure.task
  const recoveryErrors: ErrorInfo[] = []
  // What the failed phase queued and never sent will not run: the steps that queued it end failed, before the recovery.
  const stopped = new DeployError(`the run stopped: ${failure.task} failed on ${failure.host}`)
  state.dropQueued((queued, host) => notRunError(state, host, queued.task, displayOf(queued.command), stopped, queued.failure))
  if (plan.failSteps.length > 0) {
    state.recovery = { phase: step.phase, ok: false }
    state.emit({ type: 'recovery:start', phase: step.phase, failedTask: failure.task, failedHost: failure.host, interrupted: interrupted || undefined })
    for (const [index, failStep] of plan.failSteps.entries()) {
      if (failStep.hosts.length === 0) continue
      const errors = await runStep(state, failStep, index, failure, false, [])
      errors.push(...(await flushBatches(state, plan.hosts, failStep, failure)))
      recoveryErrors.push(...errors.map(({ host, error }) => maskError(state, describeError(error, { host: host.alias, task: failStep.task.name }))))
    }
    state.recovery = { phase: step.phase, ok: recoveryErrors.length === 0 }
    state.emit({
      type: 'recovery:end',
      phase: step.phase,
      failedTask: failure.task,
      failedHost: failure.host,
      interrupted: interrupted || undefined,
      ok: recoveryErrors.length === 0,
    })
  }
  const status = recoveryErrors.length > 0 ? 'rollback-failed' : interrupted ? 'interrupted' : 'failed'
  const exitCode: ExitCodeValue =
    status === 'rollback-failed' ? ExitCode.RollbackFailed : interrupted ? ExitCode.Interrupted : exitCodeOf(first.error)
  return { status, exitCode, failure, error: first.error, recoveryErrors, warnings, durationMs: Date.now() - started }
}
