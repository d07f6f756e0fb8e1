/** Before the first step every host is connected: one unreachable host stops the run with nothing run anywhere. */
import { describe, expect, it } from 'vitest'
import { task } from '../../src/dsl/tasks.js'
import { host } from '../../src/dsl/hosts.js'
import { run } from '../../src/dsl/runtime.js'
import { executePlan } from '../../src/executor/execute.js'
import { RunState } from '../../src/executor/run-state.js'
import { ConnectionError, ExitCode } from '../../src/model/errors.js'
import type { RunEvent } from '../../src/model/events.js'
import { buildPlan } from '../../src/plan/plan.js'
import { MemoryTransport } from '../../src/transport/memory/memory-transport.js'
import { declare, ofType } from './helpers.js'

async function runWithDown(down: string[], options: { dryRun?: boolean } = {}) {
  const registry = await declare(() => {
    host('w[1:10]')
    task('lock', async () => void (await run`mkdir .lock`))
    task('work', async () => void (await run`touch done`))
    task('deploy', ['lock', 'work'])
  })
  const hosts = [...registry.hosts.values()]
  const transports = new Map<string, MemoryTransport>()
  const events: RunEvent[] = []
  const state = new RunState(registry, hosts, {
    runId: 'run-connect',
    overrides: new Map(),
    transportFor: (h) => {
      const t = new MemoryTransport(h)
      if (down.includes(h.alias)) t.unreachable = new ConnectionError(`Cannot connect to ${h.alias} (10.0.0.${h.alias.slice(1)} port 22): connection refused`, 'Check it.')
      transports.set(h.alias, t)
      return t
    },
    localTransportFor: (h) => new MemoryTransport(h),
    sink: (event) => events.push(event),
    dryRun: options.dryRun,
  })
  const outcome = await executePlan(state, buildPlan(registry, 'deploy', hosts))
  await state.close()
  return { outcome, events, transports }
}

describe('connecting every host before the first step', () => {
  it('one unreachable host: exit 3, one error naming it, no step and no command on any host', async () => {
    const { outcome, events, transports } = await runWithDown(['w7'])
    expect(outcome.exitCode).toBe(ExitCode.HostUnreachable)
    expect(outcome.status).toBe('failed')
    expect(ofType(events, 'step:start')).toHaveLength(0)
    expect(ofType(events, 'command:start')).toHaveLength(0)
    for (const t of transports.values()) expect(t.operations).toHaveLength(0)
    const end = ofType(events, 'run:end')[0]
    expect(end.exitCode).toBe(3)
    expect(end.error).toMatchObject({ name: 'ConnectionError', host: 'w7', message: expect.stringContaining('Cannot connect to w7 (10.0.0.7 port 22)') })
    expect(end.errors).toBeUndefined()
    // No event names another host as the failing one.
    const mentions = events.filter((e) => JSON.stringify(e).includes('w7') && e.type !== 'run:start')
    expect(mentions).toHaveLength(1)
    expect(ofType(events, 'log').map((e) => e.message)).toEqual(['1 of 10 hosts could not be reached: nothing ran on any host.'])
  })

  it('two unreachable hosts: one error each, each naming its own host, in host order', async () => {
    const { outcome, events } = await runWithDown(['w9', 'w2'])
    expect(outcome.exitCode).toBe(3)
    const end = ofType(events, 'run:end')[0]
    expect(end.errors!.map((e) => [e.host, e.message.slice(0, 'Cannot connect to w9'.length)])).toEqual([
      ['w2', 'Cannot connect to w2'],
      ['w9', 'Cannot connect to w9'],
    ])
    for (const error of end.errors!) {
      const others = ['w2', 'w9'].filter((alias) => alias !== error.host)
      for (const other of others) expect(JSON.stringify(error)).not.toContain(other)
    }
    expect(end.error).toEqual(end.errors![0])
  })

  it('every host up: the steps run as before (connecting costs no round trip)', async () => {
    const { outcome, events } = await runWithDown([])
    expect(outcome.exitCode).toBe(0)
    expect(ofType(events, 'step:end')).toHaveLength(20)
    expect(Object.values(ofType(events, 'run:end')[0].roundTrips)).toEqual(Array(10).fill(2))
  })

  it('a dry run connects nowhere', async () => {
    const { outcome } = await runWithDown([], { dryRun: true })
    expect(outcome.exitCode).toBe(0)
  })
})
