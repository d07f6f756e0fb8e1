/**
 * The terminal view's state, reduced from lists of run events with no terminal: which steps are
 * listed and where, each host's part, messages under their steps, the recovery group, and what
 * run:end closes.
 */
import { describe, expect, it } from 'vitest'
import type { PlannedStep, RunEvent, StepEndEvent } from '../../src/model/events.js'
import { emptyRunView, hostsShown, reduceRunView, type RunView } from '../../src/report/run-view.js'

let clock = 1_000
const at = () => ({ time: (clock += 10), runId: 'r' })
const reduce = (events: RunEvent[], verbosity = 0, from: RunView = emptyRunView(verbosity)) => events.reduce(reduceRunView, from)
const summary = { task: 'deploy', hosts: ['web1', 'web2'], dryRun: false }

const start = (steps: PlannedStep[], recoverySteps?: PlannedStep[]): RunEvent => ({ ...at(), type: 'run:start', task: 'deploy', hosts: ['web1', 'web2'], steps, recoverySteps, dryRun: false })
const begin = (task: string, index: number, host: string, extra: object = {}): RunEvent => ({ ...at(), type: 'step:start', task, host, index, ...extra })
const end = (task: string, index: number, host: string, status: StepEndEvent['status'] = 'ok', extra: object = {}): RunEvent => ({
  ...at(),
  type: 'step:end',
  task,
  host,
  index,
  status,
  durationMs: 5,
  roundTrips: 1,
  ...extra,
})
const both = ['web1', 'web2']

describe('run view reducer', () => {
  it('lists the shown steps of the plan: hidden ones only with -v, or when every step is hidden', () => {
    const plan = [{ task: 'a', hosts: both }, { task: 'internal', hosts: both, hidden: true }, { task: 'nowhere', hosts: [] }]
    expect(reduce([start(plan)]).steps.map((r) => r.key)).toEqual(['step:0'])
    expect(reduce([start(plan)], 1).steps.map((r) => r.planned.task)).toEqual(['a', 'internal'])
    const hiddenOnly = reduce([start([{ task: 'run', hosts: ['web1'], hidden: true }])])
    expect(hiddenOnly.allHidden).toBe(true)
    expect(hiddenOnly.steps.map((r) => r.planned.task)).toEqual(['run'])
  })

  it('a step is running until every host ended it, then ok or failed', () => {
    const events = [start([{ task: 'a', hosts: both }]), begin('a', 0, 'web1'), begin('a', 0, 'web2'), end('a', 0, 'web1')]
    const running = reduce(events)
    expect(running.steps[0].state).toBe('running')
    expect(running.steps[0].hosts.map((h) => [h.host, h.end?.status])).toEqual([
      ['web1', 'ok'],
      ['web2', undefined],
    ])
    expect(hostsShown(running.steps[0])).toBe(true)
    const done = reduce([end('a', 0, 'web2')], 0, running)
    expect(done.steps[0].state).toBe('ok')
    // A step that went well lists no hosts.
    expect(hostsShown(done.steps[0])).toBe(false)
    expect(hostsShown(reduce([end('a', 0, 'web2', 'failed')], 0, running).steps[0])).toBe(true)
  })

  it('a hidden step that fails on one host comes into view with both hosts, before the first waiting step', () => {
    const view = reduce([
      start([{ task: 'a', hosts: both }, { task: 'internal', hosts: both, hidden: true }, { task: 'z', hosts: both }]),
      ...['web1', 'web2'].flatMap((h) => [begin('a', 0, h), end('a', 0, h)]),
      begin('internal', 1, 'web1', { hidden: true }),
      end('internal', 1, 'web1', 'ok', { hidden: true }),
      end('internal', 1, 'web2', 'failed', { hidden: true, error: { name: 'Error', message: 'no space left' } }),
    ])
    expect(view.steps.map((r) => [r.planned.task, r.state])).toEqual([
      ['a', 'ok'],
      ['internal', 'failed'],
      ['z', 'waiting'],
    ])
    expect(view.steps[1].ends.map((e) => e.host)).toEqual(['web1', 'web2'])
    expect(view.unseen).toEqual({})
  })

  it("puts a task's messages under its step; the engine's own change nothing (printed above)", () => {
    const started = reduce([start([{ task: 'a', hosts: ['web1'] }]), begin('a', 0, 'web1')])
    const placed = reduceRunView(started, { ...at(), type: 'log', level: 'info', host: 'web1', task: 'a', message: 'release 7 is live' })
    expect(placed.steps[0].messages.map((m) => m.message)).toEqual(['release 7 is live'])
    const engine: RunEvent = { ...at(), type: 'log', level: 'warning', message: 'SIGINT: stopping' }
    expect(reduceRunView(placed, engine)).toBe(placed)
    const debug: RunEvent = { ...at(), type: 'log', level: 'debug', host: 'web1', task: 'a', message: 'details' }
    expect(reduceRunView(placed, debug)).toBe(placed)
    expect(reduceRunView({ ...placed, verbosity: 2 }, debug).steps[0].messages).toHaveLength(2)
  })

  it('keeps the last output line and the transfer on the host running, and drops them when it ends', () => {
    const running = reduce([
      start([{ task: 'upload', hosts: ['web1'] }]),
      begin('upload', 0, 'web1'),
      { ...at(), type: 'command:output', host: 'web1', stream: 'stdout', text: 'compiling' },
      { ...at(), type: 'transfer', host: 'web1', direction: 'upload', path: '/srv/1', bytes: 3, totalBytes: 12, done: false },
    ])
    expect(running.steps[0].hosts[0]).toMatchObject({ output: 'compiling', transfer: { direction: 'upload', bytes: 3, totalBytes: 12 } })
    const ended = reduce([end('upload', 0, 'web1')], 0, running)
    expect(ended.steps[0].hosts[0].output).toBeUndefined()
    expect(ended.steps[0].hosts[0].transfer).toBeUndefined()
    // With -v the output is printed above the tree: the view keeps none.
    expect(reduce([{ ...at(), type: 'command:output', host: 'web1', stream: 'stdout', text: 'x' }], 1, reduce([start([{ task: 'a', hosts: ['web1'] }]), begin('a', 0, 'web1')], 1)).steps[0].hosts[0].output).toBeUndefined()
  })

  it('the recovery marks the steps left not run and lists its own steps apart, with its hidden steps’ messages', () => {
    const failed = reduce([
      start([{ task: 'check', hosts: ['web1'] }, { task: 'symlink', hosts: ['web1'] }], [{ task: 'revert', hosts: ['web1'], hidden: true }, { task: 'unlock', hosts: ['web1'] }]),
      begin('check', 0, 'web1'),
      end('check', 0, 'web1', 'failed', { error: { name: 'Error', message: 'boom' } }),
      { ...at(), type: 'recovery:start', phase: 'prepare', failedTask: 'check', failedHost: 'web1' },
      begin('revert', 0, 'web1', { recovery: true, hidden: true }),
      { ...at(), type: 'log', level: 'warning', host: 'web1', task: 'revert', message: 'switched back to release 1' },
      end('revert', 0, 'web1', 'ok', { recovery: true, hidden: true }),
      { ...at(), type: 'recovery:end', phase: 'prepare', failedTask: 'check', failedHost: 'web1', ok: true },
    ])
    expect(failed.steps.map((r) => r.state)).toEqual(['failed', 'not-run'])
    expect(failed.recovery?.steps.map((r) => [r.key, r.state])).toEqual([['recovery:1', 'not-run']])
    expect(failed.recovery?.messages.map((m) => m.message)).toEqual(['switched back to release 1'])
    expect(failed.recovery?.end?.ok).toBe(true)
  })

  it('run:end puts a queued failure back on the step that queued it and closes what was left open', () => {
    const queued = { name: 'CommandError', message: 'warm-cache failed', host: 'web1', task: 'warm' }
    const view = reduce([
      start([{ task: 'warm', hosts: both }, { task: 'last', hosts: both }, { task: 'never', hosts: both }]),
      ...both.flatMap((h) => [begin('warm', 0, h), end('warm', 0, h)]),
      begin('last', 1, 'web1'),
      begin('last', 1, 'web2'),
      end('last', 1, 'web2'),
      { ...at(), type: 'run:end', status: 'failed', exitCode: 1, durationMs: 90, roundTrips: { web1: 2, web2: 2 }, summary, error: queued },
    ])
    const [warm, last, never] = view.steps
    expect(warm.state).toBe('failed')
    expect(warm.blamed).toEqual(queued)
    expect(warm.hosts.find((h) => h.host === 'web1')?.blamed).toEqual(queued)
    expect(hostsShown(warm)).toBe(true)
    expect(last.hosts.find((h) => h.host === 'web1')?.stopped).toBe(true)
    expect(hostsShown(last)).toBe(true)
    expect(never.state).toBe('not-run')
    expect(view.end?.summary).toEqual(summary)
  })
})
