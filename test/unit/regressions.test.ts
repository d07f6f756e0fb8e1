/**
 * Regressions: bugs found while writing the unit tests, each pinned by the
 * behaviour the code must keep now that it is fixed.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { common } from '../../recipes/common.js'
import { task, use } from '../../src/dsl/tasks.js'
import { secret, set } from '../../src/dsl/settings.js'
import { host } from '../../src/dsl/hosts.js'
import { queue, run } from '../../src/dsl/runtime.js'
import { configLines } from '../../src/cli/commands/inspect.js'
import { expandHostPattern } from '../../src/model/host.js'
import { sh } from '../../src/shell/command.js'
import { SecretRegistry } from '../../src/shell/redact.js'
import { declare, ofType, runPlan, within } from './helpers.js'

const sandbox = mkdtempSync(join(tmpdir(), 'df-bugs-'))
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

describe('regressions', () => {
  // BUG 1 — recipes/common.ts:52-63 (probe) + :171 (deploy:lock)
  it('BUG 1: `dep deploy --dry-run` of the common recipe succeeds (today: exit 4, "lock held by an unknown run")', async () => {
    const build = join(sandbox, 'build1')
    mkdirSync(build, { recursive: true })
    writeFileSync(join(build, 'index.html'), 'x')
    const registry = await declare(() => {
      use(common)
      set('upload_path', build)
      set('revision', 'abc')
      host('web1', { deployPath: '/srv/app' })
    })
    // Exactly what the CLI does for --dry-run: MemoryTransports without scripted answers.
    const { outcome } = await runPlan(registry, 'deploy', { dryRun: true })
    expect(outcome.failure?.error.message).toBeUndefined()
    expect(outcome.exitCode).toBe(0)
  })

  // BUG 2 — src/transport/memory/memory-transport.ts:38 (exec never reads stdin) + src/executor/context.ts:290-296
  it('BUG 2: a dry-run upload of a directory larger than a pipe buffer finishes (today: hangs forever)', async () => {
    const build = join(sandbox, 'build2')
    mkdirSync(build, { recursive: true })
    writeFileSync(join(build, 'big.bin'), randomBytes(1024 * 1024))
    const registry = await declare(() => {
      host('web1')
      task('up', async (ctx) => ctx.upload(build, '/srv/app/releases/1'))
    })
    const { outcome } = await within(runPlan(registry, 'up', { dryRun: true }), 5000, 'the dry-run upload')
    expect(outcome.exitCode).toBe(0)
  })

  // BUG 3 — src/cli/commands/inspect.ts:49 (hostConfig without onSecret) with src/cli/main.ts:53-55 (redacts literal secrets only)
  it('BUG 3: `dep config` does not print a lazy secret through a setting that templates it', async () => {
    const registry = await declare(() => {
      secret('db_password' as never, (() => 'lazy-db-pass-123') as never)
      set('dsn' as never, 'mysql://app:{{db_password}}@db/app' as never)
      host('web1')
    })
    // What main.ts does for `dep config`.
    const secrets = new SecretRegistry()
    secrets.add(...registry.secretValues)
    const lines = (await configLines(registry, [...registry.hosts.values()], new Map())).map((line) => secrets.redact(line))
    expect(lines.join('\n')).not.toContain('lazy-db-pass-123')
  })

  // BUG 4 — src/executor/execute.ts:171-175 (recover: describeError, not masked) → src/cli/main.ts:97 prints it
  it('BUG 4: the failure a run returns (printed by the CLI) has secrets masked, like the events', async () => {
    const registry = await declare(() => {
      secret('api_token' as never, 'tok-very-secret-42' as never)
      host('web1')
      task('t', async (ctx) => {
        const token = await ctx.get<string>('api_token')
        throw new Error(`upstream refused token ${token}`)
      })
    })
    const { outcome, events } = await runPlan(registry, 't')
    // The run:end event is masked…
    expect(JSON.stringify(ofType(events, 'run:end'))).not.toContain('tok-very-secret-42')
    // …but the outcome the CLI prints to stderr is not.
    expect(outcome.failure!.error.message).not.toContain('tok-very-secret-42')
  })

  // BUG 5 — src/executor/context.ts:359 (LineSplitter masks line by line) with src/shell/redact.ts
  it('BUG 5: a multi-line secret in command output is masked', async () => {
    const key = '-----BEGIN KEY-----\nMIIEvQIBADANBgkq\n-----END KEY-----'
    const registry = await declare(() => {
      secret('deploy_key' as never, key as never)
      host('web1')
      task('t', async () => void (await run`cat key.pem`))
    })
    const { events } = await runPlan(registry, 't', { responders: [{ match: /cat key.pem/, result: { stdout: `${key}\n` } }] })
    const output = ofType(events, 'command:output').map((e) => e.text).join('\n')
    expect(output).not.toContain('MIIEvQIBADANBgkq')
  })

  // BUG 6 — src/model/config.ts:53-56 (set() drops only its own key from the cache)
  it('BUG 6: after ctx.set(), settings templated from that key see the new value', async () => {
    let seen = ''
    const registry = await declare(() => {
      host('web1', { deployPath: '/srv/app' })
      set('release_name', '1')
      set('release_path', '{{deploy_path}}/releases/{{release_name}}')
      task('t', async (ctx) => {
        await ctx.get('release_path')
        ctx.set('release_name', '2')
        seen = await ctx.get('release_path')
      })
    })
    await runPlan(registry, 't')
    expect(seen).toBe('/srv/app/releases/2')
  })

  // BUG 7 — src/model/config.ts:62-84 (a lazy value reading its own key awaits its own pending promise)
  it('BUG 7: a lazy setting that reads itself is an error, not a hang', async () => {
    const registry = await declare(() => {
      host('web1')
      set('branch', async () => {
        const { get } = await import('../../src/dsl/runtime.js')
        return `x-${await get('branch')}`
      })
      task('t', async (ctx) => void (await ctx.get('branch')))
    })
    const { outcome } = await within(runPlan(registry, 't'), 3000, 'the self-referencing lazy value')
    expect(outcome.exitCode).toBe(2)
  })

  // BUG 8 — src/shell/quote.ts:2 (`=` in SAFE_WORD)
  it('BUG 8: a quoted value in command position is a word, never an assignment', () => {
    const command = sh`${'X=injected'}; printf '%s' "$X"`
    const out = execFileSync('/bin/sh', ['-c', command.text], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    // As a literal word, `X=injected` would be a command that does not exist, and $X stays empty.
    expect(out).toBe('')
  })

  // BUG 9 — src/model/host.ts:125 and :139-141
  it('BUG 9: malformed host ranges are rejected (unclosed bracket, mixed-case letters)', () => {
    expect(() => expandHostPattern('web[1:3')).toThrow()
    expect(() => expandHostPattern('db[Y:b]')).toThrow()
  })

  // BUG 10 — src/executor/execute.ts:171 (recover) and :97 (runStep): the flushing step is named, not the queuing one
  it('BUG 10: a failing queued command is reported for the task that queued it (ctx.failure.task)', async () => {
    const registry = await declare(() => {
      host('web1')
      task('queuer', async () => void (await queue`false-queued`))
      task('runner', async () => void (await run`echo next`))
      task('all', ['queuer', 'runner'])
    })
    const { outcome } = await runPlan(registry, 'all', {
      responders: [{ match: /false-queued/, result: { code: 7, stderr: '\n@@deployfile-queued-failed 0\n' } }],
    })
    expect(outcome.failure!.error.message).toContain('queued by queuer')
    expect(outcome.failure!.task).toBe('queuer')
  })
})

