/** The steps of one run as they go, batch by batch for a rolling deploy, hosts left out by --max-fail. */
import type { FailureInfo } from '../dsl/context.js'
import { ExitCode, InterruptedError, type ExitCodeValue } from '../model/errors.js'
import type { ErrorInfo, LeftOutHost } from '../model/events.js'
import type { Host } from '../model/host.js'
import type { Plan, PlanStep } from '../plan/plan.js'
import { declaredExitCode, describeError } from './errors.js'
import type { RunOutcome } from './outcome.js'
import { candidatesOf, recover, recoverHost } from './recover.js'
import type { RunState } from './run-state.js'
import { flushBatches, maskError, runStep, type HostFailure, type QueuedFailure } from './step.js'

/** A batch of a rolling deploy, while its steps run. */
export interface BatchRun {
  index: number
  hosts: Host[]
  /** The canary batch: a failure there always stops the run. */
  canary: boolean
}

/** The steps of one run as they go: what failed, what was left out, and how the run ends. */
export class PlanRun {
  private readonly warnings: ErrorInfo[] = []
  /** Failures of the recoveries of hosts left out (`--max-fail`): the run ends `rollback-failed`. */
  private readonly leftOutErrors: ErrorInfo[] = []
  private readonly queuedFailures: QueuedFailure[] = []
  private queuedSeen = 0
  /** The highest exit code a failed best-effort command declared (its `failure` option), 0 when none. */
  private finishExitCode: ExitCodeValue = ExitCode.Success

  constructor(
    private readonly state: RunState,
    private readonly plan: Plan,
    private readonly started: number,
    /** Best effort only once something went live: a finish task run on its own fails like any task. */
    private readonly finishIsWarning: boolean,
  ) {}

  private isLeftOut(host: Host): boolean {
    return this.state.leftOut.some((left) => left.host === host.alias)
  }

  /**
   * The hosts `step` runs on now: its own, within the batch, less those left out. A `once`
   * step whose host was left out runs on the next host it could run on.
   */
  private hostsOf(step: PlanStep, batch?: BatchRun): Host[] {
    const within = (hosts: Host[]) => (batch ? hosts.filter((h) => batch.hosts.includes(h)) : hosts)
    if (step.task.once && step.hosts.length > 0 && this.isLeftOut(step.hosts[0])) {
      const next = within(candidatesOf(step, this.plan)).find((h) => !this.isLeftOut(h))
      return next ? [next] : []
    }
    return within(step.hosts).filter((h) => !this.isLeftOut(h))
  }

  /** Runs `steps` in order (each a barrier); returns how the run ended when it stopped, else undefined. */
  async steps(steps: PlanStep[], batch?: BatchRun): Promise<RunOutcome | undefined> {
    const { state, plan } = this
    for (const [index, planned] of steps.entries()) {
      const step = { ...planned, hosts: this.hostsOf(planned, batch) }
      // A `once` step whose host was left out ran on another host: nothing was skipped.
      const skipped = planned.task.once ? [] : (batch ? planned.hosts.filter((h) => batch.hosts.includes(h)) : planned.hosts).filter((h) => this.isLeftOut(h))
      const failures = await runStep(state, step, plan.steps.indexOf(planned), undefined, this.finishIsWarning, this.queuedFailures, batch?.index)
      this.skip(planned, skipped, batch)
      // Queued commands must land before the phase (or the batch) ends: no host switches before every host is prepared.
      const bestEffort = step.phase === 'finish' && this.finishIsWarning
      if ((failures.length === 0 || bestEffort) && (index === steps.length - 1 || steps[index + 1].phase !== step.phase)) {
        const hosts = (batch ? batch.hosts : plan.hosts).filter((h) => !this.isLeftOut(h))
        failures.push(...(await flushBatches(state, hosts, step)))
      }
      const queued = this.queuedFailures.slice(this.queuedSeen)
      this.queuedSeen = this.queuedFailures.length
      if (bestEffort) {
        this.warn(step, failures, queued)
        continue
      }
      if (failures.length === 0) continue
      if (await this.leaveOut(step, failures, batch)) continue
      return recover(state, plan, step, failures, this.warnings, this.started)
    }
    return undefined
  }

  /** Steps a left-out host does not run end `skipped` for it, so every host of a step has an end. */
  private skip(step: PlanStep, hosts: Host[], batch?: BatchRun): void {
    for (const host of hosts) {
      const fields = { task: step.task.name, host: host.alias, phase: step.phase, hidden: step.task.hidden || undefined, index: this.plan.steps.indexOf(step), batch: batch?.index }
      this.state.emit({ type: 'step:end', ...fields, status: 'skipped', durationMs: 0, roundTrips: 0 })
    }
  }

  /** Failures of a best-effort finish step: warnings; the deploy stays live. */
  private warn(step: PlanStep, failures: HostFailure[], queued: QueuedFailure[]): void {
    const seen = new Set(failures.map((f) => f.error))
    // A queued command that never ran is a failure of its own (the one that failed is already in `failures`).
    const all = [...failures.map((f) => ({ ...f, task: step.task.name })), ...queued.filter((f) => f.phase === 'finish' && !seen.has(f.error))]
    for (const { host, error, task } of all) {
      const info = maskError(this.state, describeError(error, { host: host.alias, task }))
      this.warnings.push(info)
      this.state.emit({ type: 'log', level: 'warning', host: host.alias, task, message: `Finish step failed (the deploy stays live): ${info.message}` })
      const declared = declaredExitCode(error)
      if (declared !== undefined && declared > this.finishExitCode) this.finishExitCode = declared
    }
  }

  /**
   * `--max-fail`: while the hosts that failed stay within it, each failed host
   * is undone on its own (the fail hook on it alone, `ctx.failure.leftOut`
   * set) and left out of the rest of the run; the others carry on. Never for
   * an interruption, a failure in the canary batch, a `once` step (its work
   * was the fleet's), or when no host would be left. Returns false when the
   * fleet must be recovered.
   */
  private async leaveOut(step: PlanStep, failures: HostFailure[], batch?: BatchRun): Promise<boolean> {
    const { state, plan } = this
    const maxFail = plan.rollout?.maxFail ?? 0
    const failed = [...new Set(failures.map((f) => f.host))]
    const interrupted = state.signal?.aborted === true || failures.some((f) => f.error instanceof InterruptedError)
    if (maxFail === 0 || interrupted || batch?.canary || step.task.once) return false
    // Beyond --max-fail, or no host would be left in the run: the whole fleet goes back.
    if (state.leftOut.length + failed.length > maxFail || state.leftOut.length + failed.length >= plan.hosts.length) return false
    for (const host of plan.hosts.filter((h) => failed.includes(h))) {
      const error = failures.find((f) => f.host === host)!.error
      const info = maskError(state, describeError(error, { host: host.alias, task: step.task.name }))
      const failure: FailureInfo = { task: info.task ?? step.task.name, host: host.alias, phase: step.phase, interrupted: false, leftOut: true, error: info }
      const left: LeftOutHost = { host: host.alias, task: failure.task, message: info.message }
      state.leftOut.push(left)
      // What the fail hook says on the host (the release it stays on) goes into the run's closing lines.
      const notes: string[] = []
      const untap = state.tap((event) => {
        if (event.type === 'log' && event.level === 'warning' && event.host === host.alias) notes.push(event.message)
      })
      try {
        this.leftOutErrors.push(...(await recoverHost(state, plan, host, failure)))
      } finally {
        untap()
      }
      if (notes.length > 0) left.notes = notes
    }
    return true
  }

  /** How a run that went through every step ended. */
  outcome(): RunOutcome {
    const { warnings } = this
    const durationMs = Date.now() - this.started
    if (this.leftOutErrors.length > 0) return { status: 'rollback-failed', exitCode: ExitCode.RollbackFailed, recoveryErrors: this.leftOutErrors, warnings, durationMs }
    if (this.finishExitCode !== ExitCode.Success) return { status: 'failed', exitCode: this.finishExitCode, recoveryErrors: [], warnings, durationMs }
    if (this.state.leftOut.length > 0) return { status: 'partial', exitCode: ExitCode.PartialDeploy, recoveryErrors: [], warnings, durationMs }
    return { status: 'success', exitCode: ExitCode.Success, recoveryErrors: [], warnings, durationMs }
  }
}
