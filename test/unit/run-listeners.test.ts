/** Run listeners (onRunEvent): every event once per run, run:end held until they settled, failures only warn. */
import { describe, expect, it } from 'vitest'
import { localhost, onRunEvent, secret, task, type RunEvent } from 'deployfile'
import { RunListeners } from '../../src/executor/run-listeners.js'
import { RunState } from '../../src/executor/run-state.js'
import { executePlan } from '../../src/executor/execute.js'
import { buildPlan } from '../../src/plan/plan.js'
import { MemoryTransport } from '../../src/transport/memory/memory-transport.js'
import type { Registry } from '../../src/model/registry.js'
import { declare } from './helpers.js'

declare module 'deployfile' {
  interface DeployConfig {
    api_token: string
  }
}

/** Runs `taskName` the way `dep` does: the run's sink goes through the listeners. */
async function run(registry: Registry, taskName: string): Promise<string[]> {
  const seen: string[] = []
  const hosts = [...registry.hosts.values()]
  const listeners = new RunListeners(registry.runListeners, (event) =>
    seen.push(event.type === 'log' ? `log:${event.level}:${event.message}` : event.type),
  )
  const state = new RunState(registry, hosts, {
    runId: 'run-1',
    overrides: new Map(),
    transportFor: (host) => new MemoryTransport(host),
    localTransportFor: (host) => new MemoryTransport(host),
    sink: listeners.sink,
  })
  listeners.attach(state, new Map())
  await executePlan(state, buildPlan(registry, taskName, hosts))
  await listeners.settle()
  await state.close()
  return seen
}

describe('run listeners', () => {
  it('see every event once per run (not per host), and run:end waits for what they started', async () => {
    const received: RunEvent['type'][] = []
    let finishedSending = false
    const registry = await declare(() => {
      localhost('a')
      localhost('b')
      task('hello', async () => {})
      onRunEvent(async (event) => {
        received.push(event.type)
        if (event.type !== 'run:end') return
        await new Promise((resolve) => setTimeout(resolve, 20))
        finishedSending = true
      })
    })
    const seen = await run(registry, 'hello')
    expect(received.filter((t) => t === 'run:start')).toHaveLength(1)
    expect(received.filter((t) => t === 'step:end')).toHaveLength(2)
    expect(finishedSending).toBe(true)
    expect(seen.at(-1)).toBe('run:end')
  })

  it('a listener that throws is one warning before run:end; the run still succeeds', async () => {
    const registry = await declare(() => {
      localhost('a')
      secret('api_token', 'tok-3141592653')
      task('hello', async () => {})
      onRunEvent(async (event, runContext) => {
        if (event.type === 'run:end') {
          await runContext.get<string>('api_token')
          throw new Error('endpoint said no to tok-3141592653')
        }
      })
    })
    const seen = await run(registry, 'hello')
    const warnings = seen.filter((line) => line.startsWith('log:warning'))
    expect(warnings).toEqual(['log:warning:A run listener failed (the run goes on): endpoint said no to ***'])
    expect(seen.indexOf(warnings[0])).toBeLessThan(seen.indexOf('run:end'))
  })

  it('a listener that throws synchronously is a warning too', async () => {
    const registry = await declare(() => {
      localhost('a')
      task('hello', async () => {})
      onRunEvent((event) => {
        if (event.type === 'run:start') throw new Error('bad listener')
      })
    })
    const seen = await run(registry, 'hello')
    expect(seen.filter((line) => line.startsWith('log:warning'))).toEqual(['log:warning:A run listener failed (the run goes on): bad listener'])
    expect(seen.at(-1)).toBe('run:end')
  })

  it('settle(limit) forwards run:end even when a listener never settles', async () => {
    const registry = await declare(() => {
      localhost('a')
      task('hello', async () => {})
      onRunEvent((event) => (event.type === 'run:end' ? new Promise<void>(() => undefined) : undefined))
    })
    const seen: string[] = []
    const listeners = new RunListeners(registry.runListeners, (event) => seen.push(event.type))
    const state = new RunState(registry, [...registry.hosts.values()], {
      runId: 'run-1',
      overrides: new Map(),
      transportFor: (host) => new MemoryTransport(host),
      localTransportFor: (host) => new MemoryTransport(host),
      sink: listeners.sink,
    })
    listeners.attach(state, new Map())
    await executePlan(state, buildPlan(registry, 'hello', [...registry.hosts.values()]))
    expect(seen).not.toContain('run:end')
    await listeners.settle(10)
    expect(seen.filter((t) => t === 'run:end')).toHaveLength(1)
  })
})
