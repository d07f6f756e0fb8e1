/** The notify plugin's pure parts: which notification each run calls for, and every channel's payload. */
import { describe, expect, it } from 'vitest'
import type { RunEvent } from 'deployfile'
import { maskNotification, RunTracker, type Notification } from '../../plugins/notify/notification.js'
import { discordPayload, facts, formatDuration, genericPayload, headline, hostList, slackPayload, teamsPayload } from '../../plugins/notify/payloads.js'

const base = { time: Date.UTC(2026, 11, 1, 6, 0, 0), runId: 'run-1' }
const start = (task = 'deploy', dryRun = false): RunEvent => ({ ...base, type: 'run:start', task, hosts: ['web1', 'web2'], steps: [], dryRun })
const release = (host: string): RunEvent => ({ ...base, type: 'release', host, release: '7', revision: 'a'.repeat(40), previous: '6' })
type Recovered = { phase: 'prepare' | 'post-switch'; ok: boolean }
/** run:end as the engine emits it: its summary says what the recovery did, if one ran. */
const end = (status: 'success' | 'failed' | 'rollback-failed', error?: { task: string; host: string; message: string }, recovered?: Recovered): RunEvent => ({
  ...base,
  type: 'run:end',
  summary: { task: 'deploy', hosts: ['web1', 'web2'], dryRun: false, ...(recovered ? { recovery: recovered } : {}) },
  status,
  exitCode: status === 'success' ? 0 : status === 'failed' ? 1 : 5,
  durationMs: 12_345,
  roundTrips: { web1: 9, web2: 9 },
  ...(error ? { error: { name: 'CommandError', ...error } } : {}),
})
const recovery = (phase: 'prepare' | 'post-switch', ok: boolean): RunEvent[] => [
  { ...base, type: 'recovery:start', phase, failedTask: 'deploy:healthcheck', failedHost: 'web2' },
  { ...base, type: 'recovery:end', phase, failedTask: 'deploy:healthcheck', failedHost: 'web2', ok },
]

function notifications(events: RunEvent[]): Notification[] {
  const tracker = new RunTracker({ app: 'site', who: 'alice' })
  return events.map((e) => tracker.observe(e)).filter((n): n is Notification => n !== undefined)
}

describe('which notification a run calls for', () => {
  it('a deploy: started, then succeeded with release, revision, hosts and duration', () => {
    const [started, ended] = notifications([start(), release('web1'), release('web2'), end('success')])
    expect(started).toEqual({
      schema: 'deployfile.notification/1',
      event: 'deploy.started',
      task: 'deploy',
      status: 'started',
      app: 'site',
      who: 'alice',
      release: null,
      revision: null,
      previous_release: null,
      hosts: ['web1', 'web2'],
      duration_ms: null,
      failed_step: null,
      failed_host: null,
      error: null,
      run_id: 'run-1',
      time: '2026-12-01T06:00:00.000Z',
    })
    expect(ended).toMatchObject({ event: 'deploy.succeeded', status: 'success', release: '7', revision: 'a'.repeat(40), previous_release: '6', duration_ms: 12_345, error: null })
  })

  it('a failure before the switch is deploy.failed, naming the failed step and host', () => {
    const [, ended] = notifications([start(), ...recovery('prepare', true), end('failed', { task: 'deploy:vendors', host: 'web2', message: 'composer failed' }, { phase: 'prepare', ok: true })])
    expect(ended).toMatchObject({ event: 'deploy.failed', status: 'failed', failed_step: 'deploy:vendors', failed_host: 'web2', error: 'composer failed' })
  })

  it('a failure after the switch that every host undid is deploy.reverted', () => {
    const [, ended] = notifications([start(), release('web1'), ...recovery('post-switch', true), end('failed', { task: 'deploy:healthcheck', host: 'web2', message: 'HTTP 500' }, { phase: 'post-switch', ok: true })])
    expect(ended).toMatchObject({ event: 'deploy.reverted', failed_step: 'deploy:healthcheck', previous_release: '6' })
  })

  it('a revert that failed is deploy.failed with status rollback-failed', () => {
    const [, ended] = notifications([start(), ...recovery('post-switch', false), end('rollback-failed', { task: 'deploy:healthcheck', host: 'web2', message: 'x' }, { phase: 'post-switch', ok: false })])
    expect(ended).toMatchObject({ event: 'deploy.failed', status: 'rollback-failed' })
    expect(headline(ended)).toContain('some hosts could not be put back')
  })

  it('a rolling deploy that left a host out (--max-fail) is deploy.succeeded with status partial, naming the host', () => {
    const partial: RunEvent = {
      ...base,
      type: 'run:end',
      summary: { task: 'deploy', hosts: ['web1', 'web2'], dryRun: false, leftOut: [{ host: 'web2', task: 'deploy:healthcheck', message: 'HTTP 500' }] },
      status: 'partial',
      exitCode: 7,
      durationMs: 12_345,
      roundTrips: { web1: 5, web2: 6 },
    }
    const [, ended] = notifications([start(), release('web1'), ...recovery('post-switch', true), partial])
    expect(ended).toMatchObject({ event: 'deploy.succeeded', status: 'partial', failed_step: 'deploy:healthcheck', failed_host: 'web2', error: 'web2: HTTP 500' })
    expect(headline(ended)).toContain('but web2 stayed on the release they served (deploy:healthcheck failed on web2)')
  })

  it('dep rollback: one notification at its end; other tasks and dry runs none', () => {
    expect(notifications([start('rollback'), release('web1'), end('success')]).map((n) => [n.event, n.release])).toEqual([['rollback.succeeded', '7']])
    expect(notifications([start('rollback'), end('failed', { task: 'rollback:switch', host: 'web1', message: 'no' })]).map((n) => n.event)).toEqual(['rollback.failed'])
    expect(notifications([start('releases'), end('success')])).toEqual([])
    expect(notifications([start('deploy', true), end('success')])).toEqual([])
  })

  it('masks every string but the event name', () => {
    const [n] = notifications([start()])
    const masked = maskNotification({ ...n, error: 'token s3cr3t leaked', hosts: ['s3cr3t-host'] }, (t) => t.replaceAll('s3cr3t', '***'))
    expect(masked.error).toBe('token *** leaked')
    expect(masked.hosts).toEqual(['***-host'])
    expect(masked.event).toBe('deploy.started')
  })
})

const reverted: Notification = {
  schema: 'deployfile.notification/1',
  event: 'deploy.reverted',
  task: 'deploy',
  status: 'failed',
  app: 'site',
  who: 'alice',
  release: '7',
  revision: '0123456789abcdef0123456789abcdef01234567',
  previous_release: '6',
  hosts: ['web1', 'web2'],
  duration_ms: 12_345,
  failed_step: 'deploy:healthcheck',
  failed_host: 'web2',
  error: 'GET /health: HTTP 500 <@everyone>',
  run_id: 'run-1',
  time: '2026-12-01T06:00:00.000Z',
}
const line = "↩️ alice's deploy of site release 7 (0123456789ab) failed (deploy:healthcheck failed on web2); every host went back to release 6 in 12.3 s"

describe('payloads', () => {
  it('formats durations and long host lists', () => {
    expect(formatDuration(12_345)).toBe('12.3 s')
    expect(formatDuration(125_000)).toBe('2 min 5 s')
    expect(hostList(Array.from({ length: 12 }, (_, i) => `web${i + 1}`))).toBe('web1, web2, web3, web4, web5, web6, web7, web8, web9, web10 (+2 more)')
  })

  it('headline and facts', () => {
    expect(headline(reverted)).toBe(line)
    expect(facts(reverted)).toEqual([
      { name: 'Who', value: 'alice' },
      { name: 'Release', value: '7' },
      { name: 'Revision', value: '0123456789abcdef0123456789abcdef01234567' },
      { name: 'Back to', value: '6' },
      { name: 'Hosts', value: 'web1, web2' },
      { name: 'Duration', value: '12.3 s' },
      { name: 'Failed step', value: 'deploy:healthcheck on web2' },
    ])
  })

  it('Slack: text and blocks, markup in the error escaped', () => {
    expect(slackPayload(reverted)).toEqual({
      text: line,
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: '↩️ Deploy failed and was reverted: site', emoji: true } },
        { type: 'section', text: { type: 'mrkdwn', text: line } },
        {
          type: 'section',
          fields: [
            { type: 'mrkdwn', text: '*Who*\nalice' },
            { type: 'mrkdwn', text: '*Release*\n7' },
            { type: 'mrkdwn', text: '*Revision*\n0123456789abcdef0123456789abcdef01234567' },
            { type: 'mrkdwn', text: '*Back to*\n6' },
            { type: 'mrkdwn', text: '*Hosts*\nweb1, web2' },
            { type: 'mrkdwn', text: '*Duration*\n12.3 s' },
            { type: 'mrkdwn', text: '*Failed step*\ndeploy:healthcheck on web2' },
          ],
        },
        { type: 'section', text: { type: 'mrkdwn', text: '```GET /health: HTTP 500 &lt;@everyone&gt;```' } },
        { type: 'context', elements: [{ type: 'mrkdwn', text: 'deployfile · deploy · run run-1' }] },
      ],
    })
  })

  it('Discord: content and one embed; mentions never ping', () => {
    const payload = discordPayload(reverted)
    expect(payload).toMatchObject({ content: line, allowed_mentions: { parse: [] } })
    expect((payload.embeds as unknown[])[0]).toEqual({
      title: '↩️ Deploy failed and was reverted: site',
      color: 0xf59e0b,
      fields: [
        { name: 'Who', value: 'alice', inline: true },
        { name: 'Release', value: '7', inline: true },
        { name: 'Revision', value: '0123456789abcdef0123456789abcdef01234567', inline: true },
        { name: 'Back to', value: '6', inline: true },
        { name: 'Hosts', value: 'web1, web2', inline: false },
        { name: 'Duration', value: '12.3 s', inline: true },
        { name: 'Failed step', value: 'deploy:healthcheck on web2', inline: false },
      ],
      description: '```\nGET /health: HTTP 500 <@everyone>\n```',
      footer: { text: 'deployfile · deploy · run run-1' },
      timestamp: '2026-12-01T06:00:00.000Z',
    })
  })

  it('Teams: an Adaptive Card with a fact set', () => {
    const payload = teamsPayload(reverted) as { type: string; attachments: Array<{ contentType: string; content: { type: string; version: string; body: unknown[] } }> }
    expect(payload.type).toBe('message')
    expect(payload.attachments[0].contentType).toBe('application/vnd.microsoft.card.adaptive')
    expect(payload.attachments[0].content.type).toBe('AdaptiveCard')
    expect(payload.attachments[0].content.body).toEqual([
      { type: 'TextBlock', size: 'Medium', weight: 'Bolder', text: '↩️ Deploy failed and was reverted: site', wrap: true },
      { type: 'TextBlock', text: line, wrap: true },
      { type: 'FactSet', facts: facts(reverted).map((f) => ({ title: f.name, value: f.value })) },
      { type: 'TextBlock', text: 'GET /health: HTTP 500 <@everyone>', wrap: true, fontType: 'Monospace', color: 'Attention' },
    ])
  })

  it('an interrupted run says so instead of naming a step', () => {
    expect(headline({ ...reverted, event: 'deploy.failed', status: 'interrupted', failed_step: null })).toBe(
      "❌ alice's deploy of site failed (interrupted); nothing went live in 12.3 s",
    )
  })

  it('generic JSON: the notification itself', () => {
    expect(genericPayload(reverted)).toBe(reverted)
  })

  it('long errors are clipped for chats', () => {
    const long = slackPayload({ ...reverted, error: 'x'.repeat(5000) }).blocks as Array<{ text?: { text: string } }>
    expect(long[3].text!.text.length).toBeLessThan(1000)
  })
})
