/** Shared formatting: errors, summaries, GitHub escaping, JSON lines, and which output a run gets. */
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { RunEndEvent } from '../../src/model/events.js'
import {
  escapeGithubData,
  escapeGithubProperty,
  formatBytes,
  formatDuration,
  formatError,
  githubAnnotation,
  roundTripsText,
  runSummary,
} from '../../src/report/format.js'
import { errorLine, planLine } from '../../src/report/json.js'
import { commandLine, useColor, useTerminalView } from '../../src/cli/reporters.js'
import { describeError } from '../../src/executor/errors.js'
import { userLocation } from '../../src/model/user-location.js'

describe('formatError', () => {
  it('names a JavaScript exception kind and where it was thrown; hints keep their lines indented', () => {
    expect(formatError({ name: 'TypeError', message: 'x is not a function', location: '/app/deployfile.ts:3:7', hint: 'Fix it.\n  3 | x()' }, false)).toEqual([
      '✖ TypeError: x is not a function',
      '  at:      /app/deployfile.ts:3:7',
      '  → Fix it.',
      '      3 | x()',
    ])
    expect(formatError({ name: 'ConfigError', message: 'bad' }, false)).toEqual(['✖ bad'])
  })
})

describe('numbers', () => {
  it('durations, bytes, round trips', () => {
    expect(formatDuration(0)).toBe('0 ms')
    expect(formatDuration(1500)).toBe('1.5 s')
    expect(formatDuration(125_000)).toBe('2 min 5 s')
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1536)).toBe('1.5 KB')
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MB')
    expect(roundTripsText([0, 0])).toBe('')
    expect(roundTripsText([1])).toBe('1 round trip')
    expect(roundTripsText([2, 2])).toBe('2 round trips each')
    expect(roundTripsText([1, 3])).toBe('1–3 round trips')
  })
})

describe('runSummary', () => {
  const end = (over: Partial<RunEndEvent>): RunEndEvent => ({ type: 'run:end', time: 0, runId: 'r', status: 'success', exitCode: 0, durationMs: 1200, roundTrips: { a: 5, b: 5 }, summary: { task: 'deploy', hosts: ['a', 'b'], dryRun: false }, ...over })
  const recovered = (phase: 'prepare' | 'post-switch') => ({ summary: { task: 'deploy', hosts: ['a', 'b'], dryRun: false, recovery: { phase, ok: true } } })

  it('says how it ended, with the exit code and what the recovery did', () => {
    expect(runSummary(end({}), false).status).toBe('✔ deploy finished in 1.2 s, 5 round trips per host')
    expect(runSummary(end({ status: 'failed', exitCode: 4, ...recovered('prepare') }), false).status).toBe(
      '✖ deploy failed after 1.2 s (exit 4: the deploy lock is held by another run; nothing changed); nothing was switched anywhere',
    )
    expect(runSummary(end({ status: 'failed', exitCode: 1, ...recovered('post-switch') }), false).status).toContain(
      'the hosts that switched went back',
    )
    expect(runSummary(end({ status: 'rollback-failed', exitCode: 5 }), false).status).toBe('✖ deploy failed and undoing it failed too (exit 5): hosts need a look')
    expect(runSummary(end({ status: 'interrupted', exitCode: 130 }), false).status).toBe('✖ deploy interrupted after 1.2 s (exit 130)')
  })

  it('lists the failure, the recovery failures and the finish warnings', () => {
    const { details } = runSummary(
      end({
        status: 'rollback-failed',
        exitCode: 5,
        error: { name: 'Error', message: 'first' },
        recoveryErrors: [{ name: 'Error', message: 'second' }],
        warnings: [{ name: 'Error', message: 'cleanup' }],
      }),
      false,
    )
    expect(details).toEqual(['⚠ finish step failed (the deploy stays live): cleanup', '✖ first', 'Undoing the failure failed too (1 error):', '✖ second'])
  })
})

describe('GitHub Actions escaping', () => {
  it('escapes % CR LF in data, and : , too in properties', () => {
    expect(escapeGithubData('100%\r\nnext')).toBe('100%25%0D%0Anext')
    expect(escapeGithubProperty('a:b,c%\n')).toBe('a%3Ab%2Cc%25%0A')
    const line = githubAnnotation('error', 'deploy:lock failed on web1', { message: 'held\nby ci' })
    expect(line).toBe('::error title=deploy%3Alock failed on web1::held%0Aby ci')
  })

  it('paths inside GITHUB_WORKSPACE are made relative for file=', () => {
    vi.stubEnv('GITHUB_WORKSPACE', '/home/runner/work/app')
    expect(githubAnnotation('error', 't', { message: 'm', location: '/home/runner/work/app/deployfile.ts:4:2' })).toBe('::error title=t,file=deployfile.ts,line=4,col=2::m')
    vi.unstubAllEnvs()
  })
})

describe('JSON lines', () => {
  it('an error before the run is one JSON object with type error', () => {
    const parsed = JSON.parse(errorLine({ name: 'ConfigError', message: 'Task "x" is not defined.' }, 2))
    expect(parsed).toMatchObject({ type: 'error', exitCode: 2, error: { name: 'ConfigError', message: 'Task "x" is not defined.' } })
    expect(typeof parsed.time).toBe('number')
    expect(JSON.parse(planLine({ task: 'deploy', hosts: ['a'], steps: [{ task: 's', hosts: ['a'] }], recoverySteps: [] }))).toEqual({
      type: 'plan',
      task: 'deploy',
      hosts: ['a'],
      steps: [{ task: 's', hosts: ['a'] }],
      recoverySteps: [],
    })
  })
})

describe('where an exception came from', () => {
  it('skips this package and node_modules frames', () => {
    const error = new Error('x')
    error.stack = [
      'Error: x',
      '    at run (file:///proj/node_modules/deployfile/dist/chunk.js:10:5)',
      '    at Object.body (/proj/deploy/tasks.ts:14:11)',
      '    at /proj/deployfile.ts:3:1',
    ].join('\n')
    expect(userLocation(error)).toBe('/proj/deploy/tasks.ts:14:11')
    expect(describeError(error, { host: 'h', task: 't' })).toMatchObject({ location: '/proj/deploy/tasks.ts:14:11', hint: expect.stringContaining('/proj/deploy/tasks.ts:14:11') })
    error.stack = 'Error: x\n    at node:internal/process/task_queues:95:5'
    expect(userLocation(error)).toBeUndefined()
  })
})

describe('which output', () => {
  const tty = { isTTY: true, columns: 100 } as NodeJS.WriteStream
  const pipe = { isTTY: false } as NodeJS.WriteStream
  afterEach(() => {
    vi.unstubAllEnvs()
  })
  const env = (vars: Record<string, string | undefined>) => {
    for (const key of ['CI', 'GITHUB_ACTIONS', 'NO_COLOR', 'FORCE_COLOR', 'TERM']) vi.stubEnv(key, undefined as unknown as string)
    for (const [key, value] of Object.entries(vars)) vi.stubEnv(key, value as string)
  }

  it('colour: a TTY outside CI; NO_COLOR wins over the TTY; FORCE_COLOR forces; --color/--no-color win', () => {
    env({})
    expect(useColor({ option: [], verbose: 0 }, tty, false)).toBe(true)
    expect(useColor({ option: [], verbose: 0 }, pipe)).toBe(false)
    env({ NO_COLOR: '1' })
    expect(useColor({ option: [], verbose: 0 }, tty)).toBe(false)
    env({ FORCE_COLOR: '1' })
    expect(useColor({ option: [], verbose: 0 }, pipe)).toBe(true)
    env({ FORCE_COLOR: '0' })
    expect(useColor({ option: [], verbose: 0 }, tty)).toBe(false)
    env({})
    expect(useColor({ option: [], verbose: 0 }, tty, true)).toBe(false) // on CI (ci-info)
    env({ NO_COLOR: '1' })
    expect(useColor({ option: [], verbose: 0, color: true }, pipe)).toBe(true)
    env({ FORCE_COLOR: '1' })
    expect(useColor({ option: [], verbose: 0, color: false }, tty)).toBe(false)
  })

  it('the live tree only on a sized TTY, outside CI, not with --json or TERM=dumb', () => {
    env({})
    expect(useTerminalView({ option: [], verbose: 0 }, tty, false)).toBe(true)
    expect(useTerminalView({ option: [], verbose: 0, json: true }, tty)).toBe(false)
    expect(useTerminalView({ option: [], verbose: 0 }, pipe)).toBe(false)
    expect(useTerminalView({ option: [], verbose: 0 }, { isTTY: true, columns: 0 } as NodeJS.WriteStream)).toBe(false)
    expect(useTerminalView({ option: [], verbose: 0 }, tty, true)).toBe(false)
    env({ TERM: 'dumb' })
    expect(useTerminalView({ option: [], verbose: 0 }, tty, false)).toBe(false)
  })

  it("the log file's header is the command line commander parsed, -o values left out", () => {
    const line = commandLine({ name: 'deploy', args: ['stage=prod'], options: { option: ['db_password=hunter2', 'branch=main'], verbose: 2, dryRun: true, color: false } })
    expect(line).toBe(`dep deploy stage=prod -o db_password=… -o branch=… -vv --dry-run --no-color (in ${process.cwd()})`)
  })
})
