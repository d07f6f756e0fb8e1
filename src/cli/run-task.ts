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
 * Runs a plan with Ctrl-C/SIGTERM handling: the first signal stops the work and
 * lets the fail hooks revert; a second one exits at once.
 */
export async function runTask(options: RunTaskOptions): Promise<RunOutcome> {
  const abort = new AbortController()
  // Every running command listens on this signal: with many hosts that is more than Node's default of 10.
  setMaxListeners(0, abort.signal)
  let signals = 0
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1
    if (signals === 1) {
      options.sink({ type: 'log', level: 'warning', message: `${signal}: stopping and reverting (again to abort at once)`, time: Date.now(), runId: '' })
      abort.abort()
    } else {
      process.exit(ExitCode.Interrupted)
    }
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
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
  // Values recipes derive from settings (the .env of the Laravel recipe) are masked from the start.
  await state.loadSecretSources()
  // Every host connects at once, not when its first command comes (the lock goes to one host first).
  if (!options.dryRun) for (const host of options.hosts) state.transportFor(host).warmUp?.()
  try {
    return await executePlan(state, options.plan)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await state.close()
  }
}
