/** The Markdown job summary (`--summary`, $GITHUB_STEP_SUMMARY), built from run events only. */
import { describe, expect, it } from 'vitest'
import type { RunEvent } from 'deployfile'
import { stepSummary } from '../../src/report/step-summary.js'
import { formatDuration } from '../../src/report/format.js'

const base = { time: 0, runId: 'r' }
const start: RunEvent = { ...base, type: 'run:start', task: 'deploy', hosts: ['web1', 'web2'], steps: [], dryRun: false }
const releases: RunEvent[] = ['web1', 'web2'].map((host) => ({ ...base, type: 'release', host, release: '7', revision: 'abc123', previous: '6' }))

describe('step summary', () => {
  it('a deploy that went live: hosts, release, revision, duration, round trips', () => {
    const end: RunEvent = { ...base, type: 'run:end', summary: { task: 'deploy', hosts: ['web1', 'web2'], dryRun: false }, status: 'success', exitCode: 0, durationMs: 2_500, roundTrips: { web1: 9, web2: 10 } }
    expect(stepSummary([start, ...releases, end])).toBe(
      [
        '### dep deploy: ✅ succeeded',
        '',
        `2 hosts · release \`7\` · ${formatDuration(2_500)} · 19 round trips · exit 0`,
        '',
        '| Host | Release | Revision | Round trips |',
        '|---|---|---|---:|',
        '| web1 | `7` | `abc123` | 9 |',
        '| web2 | `7` | `abc123` | 10 |',
        '',
        '',
      ].join('\n'),
    )
  })

  it('a partial rolling deploy: the host left out on the release it served, and why', () => {
    const end: RunEvent = {
      ...base,
      type: 'run:end',
      summary: { task: 'deploy', hosts: ['web1', 'web2'], dryRun: false, leftOut: [{ host: 'web2', task: 'deploy:healthcheck', message: 'HTTP 500' }] },
      status: 'partial',
      exitCode: 7,
      durationMs: 2_500,
      roundTrips: { web1: 5, web2: 6 },
    }
    const text = stepSummary([start, ...releases, end])!
    expect(text).toContain('### dep deploy: ⚠️ live, but some hosts were left out')
    expect(text).toContain('| web1 | `7` | `abc123` | 5 |')
    expect(text).toContain('| web2 | `6` (left out) | – | 6 |')
    expect(text).toContain('⚠️ `web2` left out (--max-fail): deploy:healthcheck failed there (HTTP 500); it stays on the release it served.')
  })

  it('a failure after the switch: the failed step, the error and the automatic revert', () => {
    const text = stepSummary([
      start,
      ...releases,
      { ...base, type: 'recovery:start', phase: 'post-switch', failedTask: 'deploy:healthcheck', failedHost: 'web2' },
      { ...base, type: 'recovery:end', phase: 'post-switch', failedTask: 'deploy:healthcheck', failedHost: 'web2', ok: true },
      {
        ...base,
        type: 'run:end',
        summary: { task: 'deploy', hosts: ['web1', 'web2'], dryRun: false, recovery: { phase: 'post-switch', ok: true } },
        status: 'failed',
        exitCode: 1,
        durationMs: 3_000,
        roundTrips: { web1: 12, web2: 12 },
        error: { name: 'DeployError', message: 'health check: HTTP 500 | ``` not ok', task: 'deploy:healthcheck', host: 'web2' },
      },
    ])!
    expect(text).toContain('### dep deploy: ❌ failed')
    expect(text).toContain('Automatic revert: every host went back to release `6`.')
    expect(text).toContain('**Failure** (step `deploy:healthcheck` on `web2`):\n\n````\nhealth check: HTTP 500 | ``` not ok\n````')
  })

  it('no run:end, no summary', () => {
    expect(stepSummary([start])).toBeUndefined()
  })
})
