import pLimit from 'p-limit'
import { ExitCode, InterruptedError, type ExitCodeValue } from '../model/errors.js'
import type { ErrorInfo, LeftOutHost, PlannedStep } from '../model/events.js'
import type { Host } from '../model/host.js'
import { rollingSpan, type Plan, type PlanStep } from '../plan/plan.js'
import { compileSelector } from '../plan/selector.js'
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
  /** `partial`: every host went live but those left out by `--max-fail` (exit 7). */
  status: 'success' | 'partial' | 'failed' | 'rollback-failed' | 'interrupted'
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

/** A batch of a rolling deploy, while its steps run. */
interface BatchRun {
  index: number
  hosts: Host[]
  /** The canary batch: a failure there always stops the run. */
  canary: boolean
}

/** The steps of one run as they go: what failed, what was left out, and how the run ends. */
class PlanRun {
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

/** Every host a step's task could run on (its `select`), for a `once` step whose host was left out. */
function candidatesOf(step: PlanStep, plan: Plan): Host[] {
  return step.task.select ? plan.hosts.filter((h) => compileSelector(step.task.select!)(h.labels)) : plan.hosts
}

/**
 * The fail hook on one host alone (`--max-fail`): what that host queued is
 * dropped, every fail step runs on it (a `once` step too, for this host), and
 * it is left as the recovery leaves it. Returns the recovery's own failures.
 */
async function recoverHost(state: RunState, plan: Plan, host: Host, failure: FailureInfo): Promise<ErrorInfo[]> {
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
