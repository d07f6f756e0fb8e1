/** Reporters consume run events: plain lines, NDJSON, the log file, and error formatting. */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { RunEvent } from '../../src/model/events.js'
import { formatDuration, formatError } from '../../src/report/format.js'
import { createJsonReporter } from '../../src/report/json.js'
import { createLogFileReporter } from '../../src/report/log-file.js'
import { createPlainReporter } from '../../src/report/plain.js'

const sandbox = mkdtempSync(join(tmpdir(), 'df-report-'))
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

const base = { time: Date.UTC(2024, 0, 2, 3, 4, 5), runId: 'run-1' }
const events: RunEvent[] = [
  { ...base, type: 'run:start', task: 'deploy', hosts: ['web1'], steps: [], dryRun: false },
  { ...base, type: 'step:start', task: 'deploy:lock', host: 'web1', phase: 'prepare' },
  { ...base, type: 'command:start', host: 'web1', task: 'deploy:lock', command: 'set -e\nmkdir x' },
  { ...base, type: 'command:output', host: 'web1', task: 'deploy:lock', stream: 'stdout', text: 'out line' },
  { ...base, type: 'command:end', host: 'web1', task: 'deploy:lock', exitCode: 0, durationMs: 12 },
  { ...base, type: 'step:end', task: 'deploy:lock', host: 'web1', status: 'ok', durationMs: 1500, roundTrips: 1 },
  { ...base, type: 'log', level: 'warning', host: 'web1', task: 'x', message: 'careful' },
  {
    ...base,
    type: 'step:end',
    task: 'boom',
    host: 'web1',
    status: 'failed',
    durationMs: 3,
    roundTrips: 1,
    error: { name: 'CommandError', message: 'Command on web1 exited with code 3: false', host: 'web1', task: 'boom', command: 'false', exitCode: 3, stderr: 'bad' },
  },
  { ...base, type: 'run:end', status: 'failed', exitCode: 1, durationMs: 2000, roundTrips: { web1: 2 }, summary: { task: 'deploy', hosts: ['web1'], dryRun: false } },
]

describe('plain reporter', () => {
  it('verbosity 0: steps, warnings and the end, prefixed by host', () => {
    const lines: string[] = []
    const report = createPlainReporter({ verbosity: 0, color: false, write: (l) => lines.push(l) })
    events.forEach(report)
    expect(lines).toEqual([
      'Running deploy on web1',
      '[web1] ✔ deploy:lock 1.5 s · 1 round trip',
      '[web1] ⚠ careful',
      '[web1] ✖ boom 3 ms · 1 round trip',
      '[web1]   Command on web1 exited with code 3: false',
      '',
      '✖ deploy failed after 2.0 s (exit 1: a task failed)',
    ])
  })

  it('verbosity 1: commands (without set -e) and output too', () => {
    const lines: string[] = []
    const report = createPlainReporter({ verbosity: 1, color: false, write: (l) => lines.push(l) })
    events.forEach(report)
    expect(lines).toContain('[web1] $ mkdir x')
    expect(lines).toContain('[web1] out line')
    expect(lines).toContain('[web1] deploy:lock')
  })

  it('GitHub Actions: groups per task and annotations', () => {
    const lines: string[] = []
    const report = createPlainReporter({ verbosity: 0, color: false, write: (l) => lines.push(l), githubActions: true })
    events.forEach(report)
    expect(lines).toContain('::group::deploy:lock')
    // The annotation stands alone on the run's page: it names the host.
    expect(lines).toContain('::warning title=x on web1::web1: careful')
    expect(lines.some((l) => l.startsWith('::error title=boom failed on web1::'))).toBe(true)
    // Groups are closed before the closing report.
    expect(lines.lastIndexOf('::endgroup::')).toBeLessThan(lines.indexOf('✖ deploy failed after 2.0 s (exit 1: a task failed)'))
    expect(lines.filter((l) => l.startsWith('::group::')).length).toBe(lines.filter((l) => l === '::endgroup::').length)
  })
})

describe('JSON reporter', () => {
  it('writes one parseable event per line', () => {
    const lines: string[] = []
    const report = createJsonReporter((l) => lines.push(l))
    events.forEach(report)
    expect(lines).toHaveLength(events.length)
    expect(lines.map((l) => JSON.parse(l))).toEqual(events)
  })
})

describe('log file reporter', () => {
  it('writes a timestamped transcript with mode 0600', async () => {
    const path = join(sandbox, 'logs', 'deploy.log')
    const log = createLogFileReporter(path)
    events.forEach(log.sink)
    await log.close()
    const text = readFileSync(path, 'utf8')
    expect(text).toContain('2024-01-02T03:04:05.000Z run run-1 start: deploy on web1')
    expect(text).toContain('[web1] $ set -e\nmkdir x')
    expect(text).toContain('[web1] > out line')
    expect(text).toContain('[web1]   exit:    3')
    expect(text).toContain('run run-1 end: failed, exit 1, 2000 ms, round trips {"web1":2}')
    expect(statSync(path).mode & 0o777).toBe(0o600)
  })
})

describe('formatError', () => {
  it('shows message, task, host, command (without set -e), exit, stderr and hint', () => {
    const lines = formatError(
      { name: 'CommandError', message: 'failed', task: 't', host: 'h', command: 'set -e\nline1\nline2', exitCode: 2, stderr: 'e1\ne2', hint: 'fix it' },
      false,
    )
    expect(lines).toEqual([
      '✖ failed',
      '  task:    t',
      '  host:    h',
      '  command: line1\n           line2',
      '  exit:    2',
      '  stderr:',
      '    e1',
      '    e2',
      '  → fix it',
    ])
  })

  it('formatDuration', () => {
    expect(formatDuration(999)).toBe('999 ms')
    expect(formatDuration(1234)).toBe('1.2 s')
  })
})
