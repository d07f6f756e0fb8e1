import pLimit from 'p-limit'
import { ExitCode, InterruptedError, type ExitCodeValue } from '../model/errors.js'
import type { ErrorInfo, PlannedStep } from '../model/events.js'
import type { Host } from '../model/host.js'
import type { Plan, PlanStep } from '../plan/plan.js'
import { TaskContext, type FailureInfo } from './context.js'
import { taskContextStorage } from './current.js'
import { describeError, exitCodeOf } from './errors.js'
import type { RunState } from './run-state.js'

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

/**
 * Runs one step on its hosts in parallel (bounded by the step's limit) and
 * waits for all of them: every step is a barrier, so no host starts a step
 * before every host finished the one before.
 */
async function runStep(state: RunState, step: PlanStep, index: number, failure?: FailureInfo, finishIsWarning = false): Promise<HostFailure[]> {
  const limit = pLimit(step.limit && step.limit > 0 ? step.limit : Math.max(1, step.hosts.length))
  const failures: HostFailure[] = []
  const recovery = failure !== undefined
  await Promise.all(
    step.hosts.map((host) =>
      limit(async () => {
        const task = step.task.name
        const started = Date.now()
        const tripsBefore = state.roundTripsOf(host)
        const fields = { task, host: host.alias, phase: step.phase, recovery: recovery || undefined, hidden: step.task.hidden || undefined, index }
        const ended = () => ({ durationMs: Date.now() - started, roundTrips: state.roundTripsOf(host) - tripsBefore })
        state.emit({ type: 'step:start', ...fields })
        const ctx = new TaskContext(host, task, state, failure, step.phase)
        try {
          if (!recovery && state.signal?.aborted) throw new InterruptedError()
          await taskContextStorage.run(ctx, () => step.task.body!(ctx))
          state.emit({ type: 'step:end', ...fields, status: 'ok', ...ended() })
        } catch (error) {
          failures.push({ host, error })
          const status = step.phase === 'finish' && !recovery && finishIsWarning ? 'warning' : 'failed'
          state.emit({ type: 'step:end', ...fields, status, ...ended(), error: describeError(error, { host: host.alias, task }) })
        }
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
  for (const [index, step] of steps.entries()) {
    const failures = await runStep(state, step, plan.steps.indexOf(step), undefined, finishIsWarning)
    // Queued commands must land before the phase ends: no host switches before every host is prepared.
    const bestEffort = step.phase === 'finish' && finishIsWarning
    if ((failures.length === 0 || bestEffort) && (index === steps.length - 1 || steps[index + 1].phase !== step.phase)) {
      failures.push(...(await flushBatches(state, plan.hosts, step)))
    }
    if (failures.length === 0) continue
    if (bestEffort) {
      for (const { host, error } of failures) {
        const info = maskError(state, describeError(error, { host: host.alias, task: step.task.name }))
        warnings.push(info)
        state.emit({ type: 'log', level: 'warning', host: host.alias, task: step.task.name, message: `Finish step failed (the deploy stays live): ${info.message}` })
      }
      continue
    }
    outcome = await recover(state, plan, step, failures, warnings, started)
    break
  }

  outcome ??= { status: 'success', exitCode: ExitCode.Success, recoveryErrors: [], warnings, durationMs: Date.now() - started }
  outcome.durationMs = Date.now() - started
  state.emit({
    type: 'run:end',
    status: outcome.status,
    exitCode: outcome.exitCode,
    durationMs: outcome.durationMs,
    roundTrips: state.roundTrips(),
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
  if (plan.failSteps.length > 0) {
    state.emit({ type: 'recovery:start', phase: step.phase, failedTask: failure.task, failedHost: failure.host })
    state.batches.clear()
    for (const [index, failStep] of plan.failSteps.entries()) {
      if (failStep.hosts.length === 0) continue
      const errors = await runStep(state, failStep, index, failure)
      errors.push(...(await flushBatches(state, plan.hosts, failStep, failure)))
      recoveryErrors.push(...errors.map(({ host, error }) => maskError(state, describeError(error, { host: host.alias, task: failStep.task.name }))))
    }
    state.emit({
      type: 'recovery:end',
      phase: step.phase,
      failedTask: failure.task,
      failedHost: failure.host,
      ok: recoveryErrors.length === 0,
    })
  }
  const status = recoveryErrors.length > 0 ? 'rollback-failed' : interrupted ? 'interrupted' : 'failed'
  const exitCode: ExitCodeValue =
    status === 'rollback-failed' ? ExitCode.RollbackFailed : interrupted ? ExitCode.Interrupted : exitCodeOf(first.error)
  return { status, exitCode, failure, error: first.error, recoveryErrors, warnings, durationMs: Date.now() - started }
}
