/** Runs a plan: connects every host, then the steps in order (plan-run.ts), and announces the start and the end. */
import { ExitCode, InterruptedError } from '../model/errors.js'
import type { PlannedStep } from '../model/events.js'
import type { Host } from '../model/host.js'
import { rollingSpan, type Plan, type PlanStep } from '../plan/plan.js'
import { displayOf } from '../shell/command.js'
import { notRunError } from './send.js'
import type { FailureInfo } from '../dsl/context.js'
import { describeError, exitCodeOf } from './errors.js'
import type { RunOutcome } from './outcome.js'
import { PlanRun } from './plan-run.js'
import type { RunState } from './run-state.js'
import { maskError, type HostFailure } from './step.js'
import { DeployError } from '../model/errors.js'

export type { RunOutcome } from './outcome.js'

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

/**
 * Runs a plan: steps in order, each on all its hosts in parallel. A failure in
 * a `finish` step is a warning; any other failure stops the run and runs the
 * top-level task's `fail` hook on every selected host, with `ctx.failure` set
 * so recipes can discard or roll back what the failed phase left.
 *
 * With a rollout (`--strategy rolling`), the steps from the first 'switch' step
 * to the last 'post-switch' one run batch by batch: each batch runs all of them
 * and sends its queued commands before the next batch begins. With
 * `--max-fail`, a host that fails (outside the canary batch and `once` steps)
 * is undone on its own and left out while the others carry on (see leaveOut).
 */
export async function executePlan(state: RunState, plan: Plan): Promise<RunOutcome> {
  const started = Date.now()
  const rollout = plan.rollout
  state.emit({
    type: 'run:start',
    task: plan.task,
    hosts: plan.hosts.map((h) => h.alias),
    steps: plan.steps.map(plannedStep),
    recoverySteps: plan.failSteps.length > 0 ? plan.failSteps.map(plannedStep) : undefined,
    dryRun: state.dryRun,
    batches: rollout?.batches.map((batch) => batch.map((h) => h.alias)),
    canary: rollout?.canary || undefined,
    maxFail: rollout ? rollout.maxFail : undefined,
  })

  const connectFailure = state.dryRun ? undefined : await connectAll(state, plan.hosts, started)
  const steps = connectFailure ? [] : plan.steps.filter((s) => s.hosts.length > 0)
  const run = new PlanRun(state, plan, started, steps.some((s) => s.phase === 'switch'))
  const span = rollout ? rollingSpan(steps) : undefined
  let outcome: RunOutcome | undefined = connectFailure
  if (!outcome && rollout && span) {
    outcome = await run.steps(steps.slice(0, span.start))
    for (const [index, hosts] of rollout.batches.entries()) {
      if (outcome) break
      const batch = { index, hosts, canary: rollout.canary && index === 0 }
      const event = { index, of: rollout.batches.length, hosts: hosts.map((h) => h.alias), canary: batch.canary || undefined }
      state.emit({ type: 'batch:start', ...event })
      const leftBefore = state.leftOut.length
      outcome = await run.steps(steps.slice(span.start, span.end), batch)
      state.emit({ type: 'batch:end', ...event, status: outcome || state.leftOut.length > leftBefore ? 'failed' : 'ok' })
    }
    outcome ??= await run.steps(steps.slice(span.end))
  } else if (!outcome) {
    outcome = await run.steps(steps)
  }

  // Anything still queued (the run stopped before it was sent) never ran: its step says so before run:end.
  state.dropQueued((queued, host) => notRunError(state, host, queued.task, displayOf(queued.command), new DeployError('the run ended before it was sent'), queued.failure))
  outcome ??= run.outcome()
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
