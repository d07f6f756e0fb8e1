/** The log file: a full, timestamped transcript whatever the verbosity. */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { RunEvent } from '../../src/model/events.js'
import { ConfigError } from '../../src/model/errors.js'
import { createLogFileReporter } from '../../src/report/log-file.js'

const sandbox = mkdtempSync(join(tmpdir(), 'df-log-'))
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

const t = Date.UTC(2024, 0, 2, 3, 4, 5)
const base = { time: t, runId: 'run-9' }
const failure = { name: 'CommandError', message: 'Command on web1 exited with code 2: migrate', host: 'web1', task: 'migrate', command: 'migrate', exitCode: 2, stderr: 'table exists' }
const events: RunEvent[] = [
  { ...base, type: 'run:start', task: 'deploy', hosts: ['web1'], steps: [{ task: 'upload', hosts: ['web1'], phase: 'prepare' }, { task: 'internal', hosts: ['web1'], hidden: true }], recoverySteps: [{ task: 'unlock', hosts: ['web1'] }], dryRun: false },
  { ...base, type: 'step:start', task: 'upload', host: 'web1', phase: 'prepare', index: 0 },
  { ...base, type: 'command:start', host: 'web1', task: 'upload', command: 'mkdir -p /srv/a && tar -x' },
  { ...base, type: 'transfer', host: 'web1', task: 'upload', direction: 'upload', path: '/srv/a', bytes: 1024, totalBytes: 4096, done: false },
  { ...base, type: 'transfer', host: 'web1', task: 'upload', direction: 'upload', path: '/srv/a', bytes: 2048, totalBytes: 4096, done: false },
  { ...base, type: 'transfer', host: 'web1', task: 'upload', direction: 'upload', path: '/srv/a', bytes: 4096, totalBytes: 4096, done: true },
  { ...base, type: 'command:output', host: 'web1', task: 'upload', stream: 'stdout', text: 'first line' },
  { ...base, type: 'command:output', host: 'web1', task: 'upload', stream: 'stderr', text: 'a warning line' },
  { ...base, type: 'command:end', host: 'web1', task: 'upload', exitCode: 0, durationMs: 33 },
  { ...base, type: 'command:start', host: 'web1', task: 'upload', command: 'git rev-parse HEAD', local: true },
  { ...base, type: 'lock:taken', host: 'web1', owner: 'ci' },
  { ...base, type: 'log', level: 'debug', host: 'web1', task: 'upload', message: 'a debug message' },
  { ...base, type: 'step:end', task: 'upload', host: 'web1', phase: 'prepare', index: 0, status: 'failed', durationMs: 40, roundTrips: 2, error: failure },
  { ...base, type: 'recovery:start', phase: 'prepare', failedTask: 'upload', failedHost: 'web1' },
  { ...base, type: 'step:start', task: 'unlock', host: 'web1', recovery: true, index: 0 },
  { ...base, type: 'step:end', task: 'unlock', host: 'web1', recovery: true, index: 0, status: 'failed', durationMs: 1, roundTrips: 1, error: { name: 'Error', message: 'unlock broke' } },
  { ...base, type: 'recovery:end', phase: 'prepare', failedTask: 'upload', failedHost: 'web1', ok: false },
  { ...base, type: 'run:end', status: 'rollback-failed', exitCode: 5, durationMs: 99, roundTrips: { web1: 3 }, summary: { task: 'deploy', hosts: ['web1'], dryRun: false, recovery: { phase: 'prepare', ok: false } }, error: failure, recoveryErrors: [{ name: 'Error', message: 'unlock broke', host: 'web1', task: 'unlock' }] },
]

async function transcript(name: string, list = events, header?: string): Promise<string> {
  const path = join(sandbox, name)
  const log = createLogFileReporter(path, { header })
  list.forEach(log.sink)
  await log.close()
  return readFileSync(path, 'utf8')
}

describe('log file', () => {
  it('has every command, every output line, with timestamps, whatever the verbosity', async () => {
    const text = await transcript('all.log', events, 'dep deploy -o db_password=… (in /app)')
    const lines = text.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z dep deploy -o db_password=… \(in \/app\)$/)
    for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z /)
    expect(text).toContain('2024-01-02T03:04:05.000Z run run-9 start: deploy on web1')
    expect(text).toContain('plan 1. upload (prepare) on web1')
    expect(text).toContain('plan 2. internal on web1 [hidden]')
    expect(text).toContain('on failure: unlock on web1')
    expect(text).toContain('[web1] $ mkdir -p /srv/a && tar -x')
    expect(text).toContain('[web1] > first line')
    expect(text).toContain('[web1] 2> a warning line')
    expect(text).toContain('[web1] exit 0 (33 ms)')
    expect(text).toContain('[web1] local$ git rev-parse HEAD')
    expect(text).toContain('[web1] lock taken (ci)')
    expect(text).toContain('[web1] debug: a debug message')
  })

  it('has transfers (start and end, not every progress tick), the recovery, and the failures in full', async () => {
    const text = await transcript('fail.log')
    expect(text).toContain('[web1] upload /srv/a: 1.0 KB of 4.0 KB')
    expect(text).not.toContain('2.0 KB of 4.0 KB')
    expect(text).toContain('[web1] upload /srv/a: 4.0 KB of 4.0 KB, done')
    expect(text).toContain('[web1] step upload failed in 40 ms, 2 round trips')
    expect(text).toContain('[web1]   exit:    2')
    expect(text).toContain('[web1]     table exists')
    expect(text).toContain('recovery start: upload failed on web1 (prepare phase)')
    expect(text).toContain('[web1] step unlock start [recovery]')
    expect(text).toContain('recovery end: FAILED')
    expect(text).toMatch(/recovery error:\n.*✖ unlock broke/)
    expect(text).toContain('run run-9 end: rollback-failed, exit 5, 99 ms, round trips {"web1":3}')
  })

  it('appends (one file, many runs) with mode 0600', async () => {
    await transcript('twice.log', events.slice(0, 1))
    const text = await transcript('twice.log', events.slice(0, 1))
    expect(text.match(/run run-9 start/g)).toHaveLength(2)
    expect(statSync(join(sandbox, 'twice.log')).mode & 0o777).toBe(0o600)
  })

  it('a log that cannot be written is reported once and does not stop the run', async () => {
    // A directory where the file should be: opening it fails, even for root.
    const dir = join(sandbox, 'is-a-dir.log')
    mkdirSync(dir)
    const errors: Error[] = []
    const log = createLogFileReporter(dir, { onError: (e) => errors.push(e) })
    events.forEach(log.sink)
    await log.close()
    await new Promise((r) => setTimeout(r, 20))
    expect(errors).toHaveLength(1)
    expect(errors[0].message).toMatch(/EISDIR/)
  })

  it('a log file in a directory that cannot be made is a ConfigError naming it', () => {
    const file = join(sandbox, 'a-file')
    writeFileSync(file, '')
    chmodSync(file, 0o600)
    expect(() => createLogFileReporter(join(file, 'sub', 'x.log'))).toThrow(ConfigError)
  })
})
