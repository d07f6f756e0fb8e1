import { setMaxListeners } from 'node:events'
import { randomUUID } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { ExitCode } from '../model/errors.js'
import type { ErrorInfo, EventSink } from '../model/events.js'
import type { Host } from '../model/host.js'
import type { Registry } from '../model/registry.js'
import { executePlan, type RunOutcome } from '../executor/execute.js'
import { runAbortHandlers } from '../executor/abort.js'
import { loadSecretSources } from '../executor/secret-sources.js'
import type { FailureInfo } from '../dsl/context.js'
import { RunState } from '../executor/run-state.js'
import { RunListeners } from '../executor/run-listeners.js'
import type { Plan } from '../plan/plan.js'
import { MemoryTransport } from '../transport/memory/memory-transport.js'
import type { SecretRegistry } from '../shell/redact.js'
import { localTransportModule, transportFactory } from './transports.js'

/** What a run needs besides the plan. */
export interface RunTaskOptions {
  registry: Registry
  plan: Plan
  hosts: Host[]
  overrides: Map<string, unknown>
  sink: EventSink
  secrets: SecretRegistry
  dryRun?: boolean
  /** With dryRun: no transport for read-only commands either (nothing is connected). */
  offline?: boolean
  /** Receives the run's state, e.g. to read recorded dry-run commands. */
  onState?: (state: RunState) => void
  /** Where Ctrl-C and friends come from (default: the process; tests pass an emitter). */
  signals?: SignalSource
}

/** Where a run listens for Ctrl-C and friends (the process; tests pass their own emitter). */
export interface SignalSource {
  on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown
  off(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown
}

/**
 * The signals that stop a run: Ctrl-C (SIGINT), a kill or a CI cancellation (SIGTERM), a closed
 * terminal or SSH session (SIGHUP). Without a handler SIGTERM and SIGHUP kill Node at once: a deploy
 * left locked, or switched on some hosts and not on others.
 */
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
/** After stopping at once, how long closing the connections may take before the run ends anyway. */
const CLOSE_AFTER_ABORT_MS = 1_000

/** What the user is told to do after a run was stopped at once. */
export const ABORTED_AT_ONCE_HINT =
  'The run was stopped before it could undo its work: hosts may hold the deploy lock or serve the new release. ' +
  'The lines above say what each host was left with and the command that fixes it; then run dep deploy again (or dep rollback).'

/**
 * Runs a plan with Ctrl-C/SIGTERM/SIGHUP handling: the first signal stops the
 * work and lets the fail hooks revert. A second Ctrl-C (SIGINT) stops at once,
 * but first runs every `ctx.onAbort()` handler (about 5 s at most) so each host
 * says what is left, then ends the run with exit 5: a person at the terminal
 * wants out. A SIGTERM or SIGHUP while reverting is only reported: CI runners
 * escalate (GitHub Actions sends SIGINT, then SIGTERM 7.5 s later) and must not
 * cut a revert short; SIGKILL remains for that.
 */
export async function runTask(options: RunTaskOptions): Promise<RunOutcome> {
  const abort = new AbortController()
  // Every running command listens on this signal: with many hosts that is more than Node's default of 10.
  setMaxListeners(0, abort.signal)
  const signals = options.signals ?? process
  const started = Date.now()
  let received = 0
  let state: RunState | undefined
  let finished = false
  let stopNow!: (outcome: RunOutcome) => void
  const stoppedAtOnce = new Promise<RunOutcome>((resolve) => (stopNow = resolve))
  let stopping = false
  let outcome: RunOutcome | undefined
  const onSignal = (signal: NodeJS.Signals) => {
    received += 1
    const log = (message: string) => options.sink({ type: 'log', level: 'warning', message, time: Date.now(), runId: '' })
    if (received === 1) {
      log(`${signal}: stopping and reverting${signal === 'SIGINT' ? ' (Ctrl-C again to abort at once)' : ''}`)
      abort.abort()
    } else if (signal !== 'SIGINT' && !stopping) {
      received -= 1
      log(`${signal}: already stopping; the revert goes on (SIGINT to abort at once)`)
    } else if (!stopping && state && !finished) {
      stopping = true
      // Whatever happens while the handlers answer, the run ends here (never waits on the plan).
      void abortAtOnce(state, options.plan.task, signal, started).then(stopNow, () => stopNow(abortedOutcome(started)))
    } else {
      // A further Ctrl-C while the handlers answer, or nothing left to tell about: stop now.
      process.exit(finished && outcome ? outcome.exitCode : stopping ? ExitCode.RollbackFailed : ExitCode.Interrupted)
    }
  }
  for (const signal of STOP_SIGNALS) signals.on(signal, onSignal)
  // Plugins' run listeners (onRunEvent) see every event; run:end reaches the reporters once they settled.
  const listeners = new RunListeners(options.registry.runListeners, options.sink)
  state = new RunState(options.registry, options.hosts, {
    runId: randomUUID(),
    overrides: options.overrides,
    transportFor: await transportFactory(options.hosts, options.dryRun ?? false),
    // A dry run still reads each host's state (read-only commands), so names and paths are the real ones.
    readTransportFor: options.dryRun && !options.offline ? await transportFactory(options.hosts, false) : undefined,
    localTransportFor: options.dryRun ? (host) => new MemoryTransport(host) : (await localTransportModule()).createLocalTransport,
    sink: listeners.sink,
    secrets: options.secrets,
    signal: abort.signal,
    dryRun: options.dryRun,
  })
  options.onState?.(state)
  listeners.attach(state, options.overrides)
  // Values recipes derive from settings (the .env of the Laravel recipe) are masked from the start.
  await loadSecretSources(state)
  // Every host connects at once before the first step (executePlan waits for all): see connectAll.
  const running = executePlan(state, options.plan)
  // Stopped at once: the plan keeps unwinding in the background, silenced; its end must not crash the process.
  running.catch(() => undefined)
  try {
    // Once stopping at once, that is how the run ends, even if the plan finishes unwinding first.
    outcome = await Promise.race([running.then((ended) => (stopping ? stoppedAtOnce : ended)), stoppedAtOnce])
    return outcome
  } finally {
    finished = true
    for (const signal of STOP_SIGNALS) signals.off(signal, onSignal)
    // Stopped at once: listeners get half the time, so run:end still reaches the reporters.
    if (stopping) await Promise.race([Promise.all([state.close(), listeners.settle(CLOSE_AFTER_ABORT_MS / 2)]), delay(CLOSE_AFTER_ABORT_MS, undefined, { ref: false })])
    else await Promise.all([state.close(), listeners.settle()])
  }
}

/**
 * The second signal: every onAbort handler says what is left on its host (bounded), then the run
 * ends here with status `interrupted` and exit 5; whatever the plan still does is not reported.
 */
async function abortAtOnce(state: RunState, task: string, signal: NodeJS.Signals, started: number): Promise<RunOutcome> {
  // From now on the plan, still unwinding, is not reported: only what the abort says, then its run:end.
  state.silence()
  state.emit({ type: 'log', level: 'warning', message: `${signal} again: stopping at once` }, true)
  await runAbortHandlers(state)
  const error = {
    name: 'InterruptedError',
    message: `Stopped at once by a second ${signal}: the run did not finish undoing its work.`,
    hint: ABORTED_AT_ONCE_HINT,
  }
  const outcome = abortedOutcome(started, error)
  state.emit({ type: 'run:end', status: 'interrupted', exitCode: outcome.exitCode, durationMs: outcome.durationMs, roundTrips: state.roundTrips(), summary: state.summary(task), error }, true)
  return outcome
}

/** How a run stopped at once ends: interrupted, exit 5. */
function abortedOutcome(started: number, error: ErrorInfo = { name: 'InterruptedError', message: 'Stopped at once.', hint: ABORTED_AT_ONCE_HINT }): RunOutcome {
  const failure: FailureInfo = { task: '(aborted)', host: '', interrupted: true, error }
  return { status: 'interrupted', exitCode: ExitCode.RollbackFailed, failure, recoveryErrors: [], warnings: [], durationMs: Date.now() - started }
}

