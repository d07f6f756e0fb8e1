/** The line reporter for CI and pipes: one line per step, -v, GitHub Actions groups and annotations. */
import { describe, expect, it } from 'vitest'
import type { ErrorInfo, RunEvent } from '../../src/model/events.js'
import { createPlainReporter, type PlainReporterOptions } from '../../src/report/plain.js'

let clock = Date.UTC(2024, 0, 2, 3, 4, 5)
const at = () => ({ time: (clock += 5), runId: 'run-1' })

function step(task: string, index: number, host: string, end: Partial<Extract<RunEvent, { type: 'step:end' }>> = {}): RunEvent[] {
  const common = { task, host, index, hidden: end.hidden, recovery: end.recovery }
  return [
    { ...at(), type: 'step:start', ...common },
    { ...at(), type: 'step:end', ...common, status: 'ok', durationMs: 10, roundTrips: 1, ...end },
  ]
}

const failure: ErrorInfo = {
  name: 'CommandError',
  message: 'Command on web2 exited with code 3: ./check',
  host: 'web2',
  task: 'check',
  command: 'set -e\n./check',
  exitCode: 3,
  stderr: 'APP_KEY is empty\n100% broken\r',
}

const events: RunEvent[] = [
  {
    ...at(),
    type: 'run:start',
    task: 'deploy',
    hosts: ['web1', 'web2'],
    steps: [
      { task: 'lock', hosts: ['web1', 'web2'] },
      { task: 'internal', hosts: ['web1', 'web2'], hidden: true },
      { task: 'check', hosts: ['web1', 'web2'] },
      { task: 'migrate', hosts: ['web1'], once: true },
    ],
    recoverySteps: [{ task: 'unlock', hosts: ['web1', 'web2'] }],
    dryRun: false,
  },
  // web2 ends first: the line still lists hosts in the plan's order.
  { ...at(), type: 'step:start', task: 'lock', host: 'web1', index: 0 },
  { ...at(), type: 'step:start', task: 'lock', host: 'web2', index: 0 },
  { ...at(), type: 'step:end', task: 'lock', host: 'web2', index: 0, status: 'ok', durationMs: 12, roundTrips: 1 },
  { ...at(), type: 'step:end', task: 'lock', host: 'web1', index: 0, status: 'ok', durationMs: 30, roundTrips: 1 },
  ...step('internal', 1, 'web1', { hidden: true, roundTrips: 0 }),
  ...step('internal', 1, 'web2', { hidden: true, roundTrips: 0 }),
  { ...at(), type: 'step:start', task: 'check', host: 'web1', index: 2 },
  { ...at(), type: 'step:start', task: 'check', host: 'web2', index: 2 },
  { ...at(), type: 'command:start', host: 'web2', task: 'check', command: 'set -e\n./check' },
  { ...at(), type: 'command:output', host: 'web2', task: 'check', stream: 'stdout', text: '::set-output name=x::injected' },
  { ...at(), type: 'command:end', host: 'web2', task: 'check', exitCode: 3, durationMs: 4 },
  { ...at(), type: 'step:end', task: 'check', host: 'web1', index: 2, status: 'ok', durationMs: 8, roundTrips: 1 },
  { ...at(), type: 'step:end', task: 'check', host: 'web2', index: 2, status: 'failed', durationMs: 9, roundTrips: 1, error: failure },
  { ...at(), type: 'recovery:start', phase: 'prepare', failedTask: 'check', failedHost: 'web2' },
  ...step('unlock', 0, 'web1', { recovery: true }),
  ...step('unlock', 0, 'web2', { recovery: true }),
  { ...at(), type: 'recovery:end', phase: 'prepare', failedTask: 'check', failedHost: 'web2', ok: true },
  { ...at(), type: 'run:end', status: 'failed', exitCode: 1, durationMs: 2000, roundTrips: { web1: 3, web2: 3 }, summary: { task: 'deploy', hosts: ['web1', 'web2'], dryRun: false, recovery: { phase: 'prepare', ok: true } }, error: failure },
]

function report(options: Partial<PlainReporterOptions> = {}, list = events) {
  const out: string[] = []
  const err: string[] = []
  const sink = createPlainReporter({ verbosity: 0, color: false, write: (l) => out.push(l), writeError: (l) => err.push(l), ...options })
  list.forEach(sink)
  return { out, err }
}

describe('plain reporter, default verbosity', () => {
  it('one line per step for all its hosts; hidden steps left out; the failure in place', () => {
    const { out } = report()
    expect(out).toEqual([
      'Running deploy on web1, web2',
      '[web1, web2] ✔ lock 30 ms · 1 round trip each',
      '[web1] ✔ check 8 ms · 1 round trip',
      '[web2] ✖ check 9 ms · 1 round trip',
      '[web2]   Command on web2 exited with code 3: ./check',
      '↺ check failed on web2 (prepare phase): recovering on every host',
      '[web1, web2] ↺ ✔ unlock 10 ms · 1 round trip each',
      '↺ recovered on every host (check failed on web2 (prepare phase))',
    ])
  })

  it('the failure in full at the end, on the error stream, then one status line', () => {
    const { err } = report()
    expect(err).toEqual([
      '',
      '✖ Command on web2 exited with code 3: ./check',
      '  task:    check',
      '  host:    web2',
      '  command: ./check',
      '  exit:    3',
      '  stderr:',
      '    APP_KEY is empty',
      '    100% broken\r',
      '✖ deploy failed after 2.0 s (exit 1: a task failed); nothing was switched anywhere',
    ])
  })

  it('a hidden step that fails is shown', () => {
    const { out } = report({}, [
      events[0],
      ...step('internal', 1, 'web1', { hidden: true, status: 'failed', error: { name: 'Error', message: 'boom' } }),
      ...step('internal', 1, 'web2', { hidden: true }),
    ])
    expect(out).toContain('[web1] ✖ internal 10 ms · 1 round trip')
    expect(out).toContain('[web1]   boom')
  })

  it('a task made only of hidden steps (dep run, dep releases) shows them', () => {
    const { out } = report({}, [
      { ...at(), type: 'run:start', task: 'run', hosts: ['web1'], steps: [{ task: 'run', hosts: ['web1'], hidden: true }], dryRun: false },
      ...step('run', 0, 'web1', { hidden: true }),
    ])
    expect(out).toContain('[web1] ✔ run 10 ms · 1 round trip')
  })

  it('a step whose commands another step sent says where they ran, not a near-zero time', () => {
    const list: RunEvent[] = [
      { ...at(), type: 'run:start', task: 'deploy', hosts: ['web1'], steps: [{ task: 'artisan:config:cache', hosts: ['web1'] }, { task: 'laravel:caches', hosts: ['web1'] }, { task: 'deploy:update_code', hosts: ['web1'] }], dryRun: false },
      ...step('laravel:caches', 1, 'web1', { durationMs: 1400, roundTrips: 1 }),
      ...step('artisan:config:cache', 0, 'web1', { durationMs: 1, roundTrips: 0, queued: 1, sentBy: 'laravel:caches' }),
      ...step('deploy:update_code', 2, 'web1', { durationMs: 40, roundTrips: 1, queued: 1, sentBy: 'deploy:prepared' }),
    ]
    expect(report({}, list).out).toEqual([
      'Running deploy on web1',
      '[web1] ✔ laravel:caches 1.4 s · 1 round trip',
      '[web1] ✔ artisan:config:cache queued · ran in laravel:caches',
      '[web1] ✔ deploy:update_code 40 ms · 1 round trip · +1 queued, ran in deploy:prepared',
    ])
  })

  it('more than four hosts are counted, not named', () => {
    const hosts = ['a', 'b', 'c', 'd', 'e']
    const { out } = report({}, [
      { ...at(), type: 'run:start', task: 't', hosts, steps: [{ task: 't', hosts }], dryRun: false },
      ...hosts.flatMap((h) => step('t', 0, h, { roundTrips: 2 })),
    ])
    expect(out[1]).toBe('[5 hosts] ✔ t 10 ms · 2 round trips each')
  })

  it('no colour codes unless asked', () => {
    expect(report().out.join('\n')).not.toMatch(/\u001B\[/)
    expect(report({ color: true }).out.join('\n')).toMatch(/\u001B\[32m✔/)
  })
})

describe('plain reporter, -v and -vv', () => {
  it('-v: every step per host, commands without set -e, output, hidden steps too', () => {
    const { out } = report({ verbosity: 1 })
    expect(out).toContain('[web1] lock')
    expect(out).toContain('[web2] ✔ lock 12 ms · 1 round trip')
    expect(out).toContain('[web1] internal')
    expect(out).toContain('[web2] $ ./check')
    expect(out).toContain('[web2] ::set-output name=x::injected')
    expect(out.some((l) => l.includes('exit 3 in'))).toBe(false)
  })

  it('-vv: exit codes and debug messages', () => {
    const { out } = report({ verbosity: 2 }, [...events.slice(0, 14), { ...at(), type: 'log', level: 'debug', host: 'web1', message: 'probe: 3 releases' }])
    expect(out).toContain('[web2] exit 3 in 4 ms')
    expect(out).toContain('[web1] probe: 3 releases')
    expect(report({ verbosity: 1 }, [events[0], { ...at(), type: 'log', level: 'debug', message: 'hidden' }]).out).not.toContain('hidden')
  })

  it('multi-line messages keep the host prefix on every line', () => {
    const { out } = report({}, [events[0], { ...at(), type: 'log', level: 'info', host: 'web1', message: 'releases:\n  1 live\n  2 failed' }])
    expect(out.slice(1)).toEqual(['[web1] releases:', '[web1]   1 live', '[web1]   2 failed'])
  })
})

describe('plain reporter on GitHub Actions', () => {
  it('wraps each step in a group, failures outside it, with an ::error:: annotation', () => {
    const { out } = report({ githubActions: true })
    const group = out.indexOf('::group::check (2 hosts)')
    const end = out.indexOf('::endgroup::', group)
    expect(group).toBeGreaterThan(-1)
    expect(out.indexOf('[web2] ✖ check 9 ms · 1 round trip')).toBeGreaterThan(end)
    const annotation = out.find((l) => l.startsWith('::error '))!
    // Properties escape % CR LF : and ,; the message escapes % CR LF.
    expect(annotation).toMatch(/^::error title=check failed on web2::/)
    expect(annotation).toContain('Command on web2 exited with code 3: ./check%0Acommand: ./check%0Aexit: 3%0Astderr:%0AAPP_KEY is empty%0A100%25 broken%0D')
    expect(annotation).not.toMatch(/[\r\n]/)
    expect(out.filter((l) => l.startsWith('::group::')).length).toBe(out.filter((l) => l === '::endgroup::').length)
    expect(out).not.toContain('::group::internal (2 hosts)')
  })

  it('fences command output with ::stop-commands:: so it cannot issue workflow commands', () => {
    const { out } = report({ githubActions: true, verbosity: 1 })
    const stop = out.findIndex((l) => l.startsWith('::stop-commands::'))
    const token = out[stop].slice('::stop-commands::'.length)
    expect(token).toMatch(/^[0-9a-f-]{36}$/)
    const injected = out.indexOf('[web2] ::set-output name=x::injected')
    const resume = out.indexOf(`::${token}::`)
    expect(stop).toBeLessThan(injected)
    expect(resume).toBeGreaterThan(injected)
    // Our own workflow commands come after the fence is lifted.
    expect(out.indexOf('::endgroup::', injected)).toBeGreaterThan(resume)
  })

  it('an error annotation points at the file and line of an exception', () => {
    const error: ErrorInfo = { name: 'TypeError', message: 'x is not a function', location: '/work/app/deployfile.ts:12:5', task: 't', host: 'h' }
    const { out } = report({ githubActions: true }, [
      { ...at(), type: 'run:start', task: 't', hosts: ['h'], steps: [{ task: 't', hosts: ['h'] }], dryRun: false },
      ...step('t', 0, 'h', { status: 'failed', error }),
      { ...at(), type: 'run:end', status: 'failed', exitCode: 1, durationMs: 5, roundTrips: { h: 0 }, summary: { task: 't', hosts: ['h'], dryRun: false }, error },
    ])
    const annotations = out.filter((l) => l.startsWith('::error '))
    expect(annotations).toHaveLength(1) // not again at the end
    expect(annotations[0]).toMatch(/^::error title=t failed on h,file=\/work\/app\/deployfile.ts,line=12,col=5::x is not a function/)
  })
})
