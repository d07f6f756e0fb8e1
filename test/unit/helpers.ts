/**
 * Shared helpers of the unit tests: a fresh registry for the public DSL, and
 * a run of a plan through the MemoryTransport (or the local transport) with
 * every event collected.
 */
import { Registry } from '../../src/model/registry.js'
import { withRegistry } from '../../src/dsl/registry-scope.js'
import { RunState } from '../../src/executor/run-state.js'
import { executePlan, type RunOutcome } from '../../src/executor/execute.js'
import { buildPlan } from '../../src/plan/plan.js'
import { parseRollout, type RolloutOptions } from '../../src/plan/rollout.js'
import { selectHosts } from '../../src/plan/selector.js'
import { MemoryTransport, type Responder } from '../../src/transport/memory/memory-transport.js'
import { createLocalTransport } from '../../src/transport/local/local-transport.js'
import type { RunEvent } from '../../src/model/events.js'
import type { Host } from '../../src/model/host.js'
import type { Transport } from '../../src/transport/types.js'

/** Declares things through the public API into a fresh registry. */
export async function declare(fn: () => void | Promise<void>): Promise<Registry> {
  return withRegistry(new Registry(), fn)
}

export interface RunResult {
  outcome: RunOutcome
  events: RunEvent[]
  transports: Map<string, MemoryTransport>
  state: RunState
}

export interface RunOptions {
  selectors?: string[]
  limit?: number
  overrides?: Map<string, unknown>
  responders?: Responder[] | ((host: Host) => Responder[])
  signal?: AbortSignal
  /** Use the real local transport (real /bin/sh) for every host. */
  local?: boolean
  dryRun?: boolean
  /** --strategy rolling and friends, as the CLI takes them. */
  rollout?: RolloutOptions
}

/** Plans `task` on the registry's hosts and runs it, recording everything. */
export async function runPlan(registry: Registry, task: string, options: RunOptions = {}): Promise<RunResult> {
  const hosts = selectHosts([...registry.hosts.values()], options.selectors ?? [])
  const plan = buildPlan(registry, task, hosts, { limit: options.limit, rollout: options.rollout ? parseRollout(options.rollout, hosts) : undefined })
  const events: RunEvent[] = []
  const transports = new Map<string, MemoryTransport>()
  const state = new RunState(registry, hosts, {
    runId: 'run-test-0001',
    overrides: options.overrides ?? new Map(),
    transportFor: (host): Transport => {
      if (options.local) return createLocalTransport(host)
      const responders = typeof options.responders === 'function' ? options.responders(host) : (options.responders ?? [])
      const t = new MemoryTransport(host, responders)
      transports.set(host.alias, t)
      return t
    },
    localTransportFor: options.dryRun ? (host) => new MemoryTransport(host) : createLocalTransport,
    sink: (event) => events.push(event),
    signal: options.signal,
    dryRun: options.dryRun,
  })
  try {
    const outcome = await executePlan(state, plan)
    return { outcome, events, transports, state }
  } finally {
    await state.close()
  }
}

/** The event interface that has `type` among its types (some interfaces carry two). */
export type EventOf<T extends RunEvent['type']> = RunEvent extends infer E ? (E extends RunEvent ? (T extends E['type'] ? E : never) : never) : never

/** Events of one type, typed. */
export function ofType<T extends RunEvent['type']>(events: RunEvent[], type: T): Array<EventOf<T>> {
  return events.filter((e) => e.type === type) as Array<EventOf<T>>
}

/** A promise that resolves when `n` parties arrived, and a function to arrive. */
export function barrier(n: number): { arrive: () => Promise<void>; reached: Promise<void> } {
  let count = 0
  let release!: () => void
  const reached = new Promise<void>((resolve) => (release = resolve))
  return {
    reached,
    arrive: () => {
      count += 1
      if (count >= n) release()
      return reached
    },
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Rejects when `promise` takes longer than `ms` (for tests that would otherwise hang). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)
    }),
  ])
}
