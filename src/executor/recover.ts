/** Undoing a failure: the fail hook on every selected host, or on one host left out by --max-fail. */
import type { FailureInfo } from '../dsl/context.js'
import { DeployError, ExitCode, InterruptedError, type ExitCodeValue } from '../model/errors.js'
import type { ErrorInfo } from '../model/events.js'
import type { Host } from '../model/host.js'
import type { Plan, PlanStep } from '../plan/plan.js'
import { compileSelector } from '../plan/selector.js'
import { displayOf } from '../shell/command.js'
import { describeError, exitCodeOf } from './errors.js'
import type { RunOutcome } from './outcome.js'
import type { RunState } from './run-state.js'
import { notRunError } from './send.js'
import { flushBatches, maskError, runStep, type HostFailure } from './step.js'

/** Every host a step's task could run on (its `select`), for a `once` step whose host was left out. */
export function candidatesOf(step: PlanStep, plan: Plan): Host[] {
  return step.task.select ? plan.hosts.filter((h) => compileSelector(step.task.select!)(h.labels)) : plan.hosts
}

/**
 * The fail hook on one host alone (`--max-fail`): what that host queued is
 * dropped, every fail step runs on it (a `once` step too, for this host), and
 * it is left as the recovery leaves it. Returns the recovery's own failures.
 */
export async function recoverHost(state: RunState, plan: Plan, host: Host, failure: FailureInfo): Promise<ErrorInfo[]> {
  const stopped = new DeployError(`${failure.task} failed on ${host.alias}: the host is left out of the run`)
  state.dropQueued((queued, alias) => notRunError(state, alias, queued.task, displayOf(queued.command), stopped, queued.failure), host.alias)
  const fields = { phase: failure.phase, failedTask: failure.task, failedHost: host.alias, host: host.alias }
  state.emit({ type: 'recovery:start', ...fields })
  const errors: ErrorInfo[] = []
  for (const [index, failStep] of plan.failSteps.entries()) {
    const runsHere = failStep.task.once ? candidatesOf(failStep, plan).includes(host) : failStep.hosts.includes(host)
    if (!runsHere) continue
    const step = { ...failStep, hosts: [host] }
    const failed = await runStep(state, step, index, failure, false, [])
    failed.push(...(await flushBatches(state, [host], step, failure)))
    errors.push(...failed.map(({ error }) => maskError(state, describeError(error, { host: host.alias, task: failStep.task.name }))))
  }
  state.emit({ type: 'recovery:end', ...fields, ok: errors.length === 0 })
  return errors
}

/**
 * The fail hook on every selected host after `step` failed on `failures`' hosts, with
 * `ctx.failure` set; returns how the run ended.
 */
export async function recover(
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
