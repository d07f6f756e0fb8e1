import { setMaxListeners } from 'node:events'
import { randomUUID } from 'node:crypto'
import { ExitCode } from '../model/errors.js'
import type { EventSink } from '../model/events.js'
import type { Host } from '../model/host.js'
import type { Registry } from '../model/registry.js'
import { executePlan, type RunOutcome } from '../executor/execute.js'
import { RunState } from '../executor/run-state.js'
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
  /** Receives the run's state, e.g. to read recorded dry-run commands. */
  onState?: (state: RunState) => void
}

/**
 * The signals that stop a run: Ctrl-C (SIGINT), a kill or a CI cancellation (SIGTERM), a closed
 * terminal or SSH session (SIGHUP). Without a handler SIGTERM and SIGHUP kill Node at once: a deploy
 * left locked, or switched on some hosts and not on others.
 */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

/**
 * Runs a plan with signal handling: the first signal stops the work and lets the fail hooks revert.
 * A second Ctrl-C (SIGINT) exits at once: a person at the terminal wants out. A SIGTERM or SIGHUP
 * while reverting is only reported: CI runners escalate (GitHub Actions sends SIGINT, then SIGTERM
 * 7.5 s later) and must not cut a revert short; SIGKILL remains for that.
 */
export async function runTask(options: RunTaskOptions): Promise<RunOutcome> {
  const abort = new AbortController()
  // Every running command listens on this signal: with many hosts that is more than Node's default of 10.
  setMaxListeners(0, abort.signal)
  let signals = 0
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1
    const log = (message: string) => options.sink({ type: 'log', level: 'warning', message, time: Date.now(), runId: '' })
    if (signals === 1) {
      log(`${signal}: stopping and reverting${signal === 'SIGINT' ? ' (Ctrl-C again to abort at once)' : ''}`)
      abort.abort()
    } else if (signal === 'SIGINT') {
      process.exit(ExitCode.Interrupted)
    } else {
      log(`${signal}: already stopping; the revert goes on (SIGINT to abort at once)`)
    }
  }
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal)
  const state = new RunState(options.registry, options.hosts, {
    runId: randomUUID(),
    overrides: options.overrides,
    transportFor: await transportFactory(options.hosts, options.dryRun ?? false),
    localTransportFor: options.dryRun ? (host) => new MemoryTransport(host) : (await localTransportModule()).createLocalTransport,
    sink: options.sink,
    secrets: options.secrets,
    signal: abort.signal,
    dryRun: options.dryRun,
  })
  options.onState?.(state)
  // Every host connects at once, not when its first command comes (the lock goes to one host first).
  if (!options.dryRun) for (const host of options.hosts) state.transportFor(host).warmUp?.()
  try {
    return await executePlan(state, options.plan)
  } finally {
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal)
    await state.close()
  }
}
