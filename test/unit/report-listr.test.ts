/**
 * The terminal view (listr2), fed with run events and drawn into fake TTY
 * streams: the final frame must show the plan's steps, hosts under a step that
 * failed, the failure in place, recovery steps apart, hidden steps left out.
 */
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import type { RunEvent, RunSummary } from '../../src/model/events.js'
import { createListrReporter } from '../../src/report/listr.js'

const ANSI = /\u001B\[[0-9;?]*[A-Za-z]/g

function tty(): { stream: NodeJS.WriteStream; text: () => string } {
  let text = ''
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += chunk.toString()
      done()
    },
  }) as unknown as NodeJS.WriteStream
  Object.assign(stream, { isTTY: true, columns: 120, rows: 60 })
  return { stream, text: () => text }
}

/** The last frame the renderer drew (after its last erase, before it showed the cursor again), without colours. */
function finalFrame(text: string): string {
  const start = Math.max(text.lastIndexOf('\u001B[G') + 3, text.lastIndexOf('\u001B[?25l') + 6)
  return text.slice(start, text.lastIndexOf('\u001B[?25h')).replace(ANSI, '')
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
let clock = Date.UTC(2024, 0, 2, 3, 4, 5)
const at = () => ({ time: (clock += 7), runId: 'run-1' })
const summary = (hosts: string[], recovery?: RunSummary['recovery']): RunSummary => ({ task: 'deploy', hosts, dryRun: false, recovery })

function stepEvents(task: string, index: number, host: string, extra: Partial<RunEvent> = {}, status: 'ok' | 'failed' = 'ok'): RunEvent[] {
  return [
    { ...at(), type: 'step:start', task, host, index, ...extra } as RunEvent,
    { ...at(), type: 'step:end', task, host, index, status, durationMs: 7, roundTrips: 1, ...extra } as RunEvent,
  ]
}

async function run(events: RunEvent[], verbosity = 0, color = false) {
  const out = tty()
  const err = tty()
  const view = createListrReporter({ verbosity, color, stdout: out.stream, stderr: err.stream })
  view.sink(events[0])
  await sleep(60) // the renderer starts asynchronously, as in a real run
  for (const event of events.slice(1)) view.sink(event)
  await view.close()
  return { out: out.text(), err: err.text(), frame: finalFrame(out.text()) }
}

const failure = {
  name: 'CommandError',
  message: 'Command on web2 exited with code 3: ./check',
  host: 'web2',
  task: 'check',
  command: './check',
  exitCode: 3,
  stderr: 'line one\nAPP_KEY is empty',
}

const failingRun: RunEvent[] = [
  {
    ...at(),
    type: 'run:start',
    task: 'deploy',
    hosts: ['web1', 'web2'],
    steps: [
      { task: 'lock', hosts: ['web1', 'web2'], phase: 'prepare' },
      { task: 'internal', hosts: ['web1', 'web2'], phase: 'prepare', hidden: true },
      { task: 'check', hosts: ['web1', 'web2'], phase: 'prepare' },
      { task: 'migrate', hosts: ['web1'], phase: 'prepare', once: true },
      { task: 'symlink', hosts: ['web1', 'web2'], phase: 'switch' },
    ],
    recoverySteps: [
      { task: 'revert', hosts: ['web1', 'web2'], hidden: true },
      { task: 'unlock', hosts: ['web1', 'web2'], phase: 'finish' },
    ],
    dryRun: false,
  },
  ...stepEvents('lock', 0, 'web1'),
  ...stepEvents('lock', 0, 'web2'),
  ...stepEvents('internal', 1, 'web1', { hidden: true, phase: 'prepare' }),
  ...stepEvents('internal', 1, 'web2', { hidden: true, phase: 'prepare' }),
  { ...at(), type: 'step:start', task: 'check', host: 'web1', index: 2 },
  { ...at(), type: 'step:start', task: 'check', host: 'web2', index: 2 },
  { ...at(), type: 'command:start', host: 'web2', task: 'check', command: 'set -e\n./check' },
  { ...at(), type: 'command:output', host: 'web2', task: 'check', stream: 'stderr', text: 'APP_KEY is empty' },
  { ...at(), type: 'step:end', task: 'check', host: 'web2', index: 2, status: 'failed', durationMs: 12, roundTrips: 1, error: failure },
  { ...at(), type: 'step:end', task: 'check', host: 'web1', index: 2, status: 'ok', durationMs: 20, roundTrips: 1 },
  { ...at(), type: 'recovery:start', phase: 'prepare', failedTask: 'check', failedHost: 'web2' },
  ...stepEvents('revert', 0, 'web1', { recovery: true, hidden: true }),
  ...stepEvents('revert', 0, 'web2', { recovery: true, hidden: true }),
  ...stepEvents('unlock', 1, 'web1', { recovery: true, phase: 'finish' }),
  ...stepEvents('unlock', 1, 'web2', { recovery: true, phase: 'finish' }),
  { ...at(), type: 'recovery:end', phase: 'prepare', failedTask: 'check', failedHost: 'web2', ok: true },
  { ...at(), type: 'run:end', status: 'failed', exitCode: 1, durationMs: 300, roundTrips: { web1: 4, web2: 4 }, summary: summary(['web1', 'web2'], { phase: 'prepare', ok: true }), error: failure },
]

describe('listr view', () => {
  it('draws the plan: done steps collapsed, the failed step with its hosts and the error in place', async () => {
    const { frame } = await run(failingRun)
    const lines = frame.split('\n').map((l) => l.trimEnd())
    expect(lines).toContainEqual(expect.stringMatching(/^✔ lock \d+ ms · 2 hosts · 1 round trip each$/))
    expect(frame).not.toMatch(/^\s+✔ web1 7 ms/m) // a step that went well lists no hosts
    expect(frame).toMatch(/^✖ check .*2 hosts/m)
    expect(frame).toMatch(/^ {2}✔ web1 20 ms · 1 round trip$/m)
    expect(frame).toMatch(/^ {2}✖ web2 12 ms · 1 round trip$/m)
    expect(frame).toContain('› Command on web2 exited with code 3: ./check')
    expect(frame).toContain('│ APP_KEY is empty')
    // Not run: shown, marked.
    expect(frame).toContain('migrate (once, on web1) — not run')
    expect(frame).toContain('symlink — not run')
  })

  it('keeps hidden steps out, and shows the recovery apart with its steps', async () => {
    const { frame } = await run(failingRun)
    expect(frame).not.toContain('internal')
    expect(frame).not.toContain('revert')
    const recovery = frame.indexOf('↺ recovered on every host (check failed on web2 (prepare phase))')
    expect(recovery).toBeGreaterThan(frame.indexOf('symlink'))
    expect(frame.slice(recovery)).toMatch(/^ {2}✔ unlock/m)
  })

  it('ends with the failure in full on stderr and one status line', async () => {
    const { err, out } = await run(failingRun)
    expect(err).toContain('✖ Command on web2 exited with code 3: ./check')
    expect(err).toMatch(/host: +web2/)
    expect(err).toMatch(/exit: +3/)
    expect(err).toContain('    APP_KEY is empty')
    expect(err.trimEnd().split('\n').at(-1)).toBe('✖ deploy failed after 300 ms (exit 1: a task failed); nothing was switched anywhere')
    expect(out).not.toContain('deploy failed after')
  })

  it('without colour writes no colour codes', async () => {
    const { out, err } = await run(failingRun)
    expect(out).not.toMatch(/\u001B\[\d+(;\d+)*m/)
    expect(err).not.toMatch(/\u001B\[\d+(;\d+)*m/)
    const coloured = await run(failingRun, 0, true)
    expect(coloured.out).toMatch(/\u001B\[3\dm/)
  })

  it('-v prints each command and its output above the tree, prefixed by host, and lists hidden steps', async () => {
    const { out, frame } = await run(failingRun, 1)
    const text = out.replace(ANSI, '')
    expect(text).toContain('[web2] $ ./check')
    expect(text).not.toContain('$ set -e')
    expect(text).toContain('[web2] APP_KEY is empty')
    expect(frame).toContain('internal (hidden)')
    // Above the tree: the lines come before the final frame.
    expect(text.indexOf('[web2] $ ./check')).toBeLessThan(text.lastIndexOf('✔ lock'))
  })

  it('a hidden step that fails comes into view, in its place', async () => {
    const events: RunEvent[] = [
      { ...at(), type: 'run:start', task: 'deploy', hosts: ['web1'], steps: [{ task: 'a', hosts: ['web1'] }, { task: 'secret-sauce', hosts: ['web1'], hidden: true }, { task: 'z', hosts: ['web1'] }], dryRun: false },
      ...stepEvents('a', 0, 'web1'),
      ...stepEvents('secret-sauce', 1, 'web1', { hidden: true, error: { name: 'Error', message: 'sauce spilled' } } as Partial<RunEvent>, 'failed'),
      { ...at(), type: 'run:end', status: 'failed', exitCode: 1, durationMs: 30, roundTrips: { web1: 1 }, summary: summary(['web1']), error: { name: 'Error', message: 'sauce spilled' } },
    ]
    const { frame } = await run(events)
    const lines = frame.split('\n').map((l) => l.trimEnd()).filter(Boolean)
    expect(lines[0]).toMatch(/^✔ a /)
    expect(lines[1]).toMatch(/^✖ secret-sauce \(hidden\)/)
    expect(lines[2]).toBe('› sauce spilled'.padStart(2 + '› sauce spilled'.length))
    expect(lines[3]).toBe('◼ z — not run')
  })

  it('a hidden step that fails on one of two hosts comes in with both hosts', async () => {
    const events: RunEvent[] = [
      { ...at(), type: 'run:start', task: 'deploy', hosts: ['web1', 'web2'], steps: [{ task: 'internal', hosts: ['web1', 'web2'], hidden: true }, { task: 'z', hosts: ['web1', 'web2'] }], dryRun: false },
      ...stepEvents('internal', 0, 'web1', { hidden: true }),
      ...stepEvents('internal', 0, 'web2', { hidden: true, error: { name: 'Error', message: 'no space left' } } as Partial<RunEvent>, 'failed'),
      { ...at(), type: 'run:end', status: 'failed', exitCode: 1, durationMs: 30, roundTrips: { web1: 1, web2: 1 }, summary: summary(['web1', 'web2']) },
    ]
    const { frame } = await run(events)
    expect(frame).toMatch(/^✖ internal \(hidden\) .*2 hosts/m)
    expect(frame).toMatch(/^ {2}✔ web1 7 ms · 1 round trip$/m)
    expect(frame).toMatch(/^ {2}✖ web2 7 ms · 1 round trip$/m)
    expect(frame).toContain('› no space left')
    expect(frame).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏❯]/) // nothing left spinning
  })

  it('a queued command that fails later is shown on the step that queued it', async () => {
    const queued = { name: 'CommandError', message: 'Command on web1 (queued by warm) exited with code 5: warm-cache', host: 'web1', task: 'warm', exitCode: 5, stderr: 'not writable' }
    const events: RunEvent[] = [
      { ...at(), type: 'run:start', task: 'deploy', hosts: ['web1'], steps: [{ task: 'warm', hosts: ['web1'] }, { task: 'last', hosts: ['web1'] }], dryRun: false },
      ...stepEvents('warm', 0, 'web1'),
      ...stepEvents('last', 1, 'web1'),
      { ...at(), type: 'log', level: 'error', host: 'web1', task: 'last', message: queued.message },
      { ...at(), type: 'run:end', status: 'failed', exitCode: 1, durationMs: 30, roundTrips: { web1: 1 }, summary: summary(['web1']), error: queued },
    ]
    const { frame } = await run(events)
    expect(frame).toMatch(/^✖ warm /m)
    expect(frame).toContain('› Command on web1 (queued by warm) exited with code 5: warm-cache')
    expect(frame).toContain('│ not writable')
    expect(frame).toMatch(/^✔ last /m)
  })

  it('messages from tasks stay under the step that printed them; a success ends with one line on stdout', async () => {
    const events: RunEvent[] = [
      { ...at(), type: 'run:start', task: 'deploy', hosts: ['web1'], steps: [{ task: 'a', hosts: ['web1'] }, { task: 'b', hosts: ['web1'] }], dryRun: false },
      { ...at(), type: 'step:start', task: 'a', host: 'web1', index: 0 },
      { ...at(), type: 'log', level: 'info', host: 'web1', task: 'a', message: 'release 7 is live' },
      { ...at(), type: 'log', level: 'warning', host: 'web1', task: 'a', message: 'disk almost full' },
      { ...at(), type: 'step:end', task: 'a', host: 'web1', index: 0, status: 'ok', durationMs: 5, roundTrips: 2 },
      { ...at(), type: 'step:start', task: 'b', host: 'web1', index: 1 },
      { ...at(), type: 'step:end', task: 'b', host: 'web1', index: 1, status: 'ok', durationMs: 5, roundTrips: 0 },
      { ...at(), type: 'run:end', status: 'success', exitCode: 0, durationMs: 40, roundTrips: { web1: 2 }, summary: summary(['web1']) },
    ]
    const { out, err, frame } = await run(events)
    // In the final screen, in order: step a, its two messages, then step b.
    expect(frame).toMatch(/^✔ a \d+ ms · 2 round trips\n\s+\[web1\] release 7 is live\n\s+\[web1\] ⚠ disk almost full\n✔ b /m)
    // Not above the tree.
    const above = out.replace(ANSI, '').split('✔ a')[0]
    expect(above).not.toContain('release 7 is live')
    expect(out.replace(ANSI, '').trimEnd().split('\n').at(-1)).toBe('✔ deploy finished in 40 ms, 2 round trips')
    expect(err).toBe('')
  })

  it("a hidden recovery step's message (switched back) goes under the recovery, not above the steps", async () => {
    const events: RunEvent[] = [
      ...failingRun.filter((e) => e.type !== 'run:end' && e.type !== 'recovery:end'),
    ]
    const recoveryStart = events.findIndex((e) => e.type === 'recovery:start')
    expect(recoveryStart).toBeGreaterThan(0)
    const switched: RunEvent = { ...at(), type: 'log', level: 'warning', host: 'web2', task: 'revert', message: 'switched back to release 1' }
    const ended = failingRun.filter((e) => e.type === 'recovery:end' || e.type === 'run:end')
    const { out, frame } = await run([...events, switched, ...ended])
    const lines = frame.split('\n')
    const group = lines.findIndex((l) => l.includes('recovered on every host') || l.includes('undoing'))
    const message = lines.findIndex((l) => l.includes('[web2] ⚠ switched back to release 1'))
    expect(group, frame).toBeGreaterThanOrEqual(0)
    expect(message, frame).toBeGreaterThan(group)
    expect(out.replace(ANSI, '').split(lines[0])[0]).not.toContain('switched back')
  })

  it('shows upload progress on the host while it runs', async () => {
    const out = tty()
    const view = createListrReporter({ verbosity: 0, color: false, stdout: out.stream, stderr: tty().stream })
    view.sink({ ...at(), type: 'run:start', task: 'deploy', hosts: ['web1', 'web2'], steps: [{ task: 'upload', hosts: ['web1', 'web2'] }], dryRun: false })
    view.sink({ ...at(), type: 'step:start', task: 'upload', host: 'web1', index: 0 })
    view.sink({ ...at(), type: 'step:start', task: 'upload', host: 'web2', index: 0 })
    view.sink({ ...at(), type: 'transfer', host: 'web1', task: 'upload', direction: 'upload', path: '/srv/r/1', bytes: 3 * 1024 * 1024, totalBytes: 12 * 1024 * 1024, done: false })
    await sleep(250) // a frame or two
    const drawn = out.text().replace(ANSI, '')
    expect(drawn).toContain('web1 ↑ 3.0 MB / 12.0 MB (25 %)')
    view.sink({ ...at(), type: 'run:end', status: 'interrupted', exitCode: 130, durationMs: 40, roundTrips: {}, summary: summary(['web1', 'web2']) })
    await view.close()
  })

  it('close() without a run draws nothing and does not hang', async () => {
    const out = tty()
    const view = createListrReporter({ verbosity: 0, color: false, stdout: out.stream, stderr: tty().stream })
    await view.close()
    expect(out.text()).toBe('')
  })
})
