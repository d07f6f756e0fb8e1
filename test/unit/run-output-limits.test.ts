/**
 * What run() keeps of a command's output (issue 11, item 5): a bounded tail for streamed commands
 * (with a warning), everything for quiet ones or when asked, and a masked 64 KiB tail in errors.
 * Real /bin/sh through the local transport.
 */
import { describe, expect, it } from 'vitest'
import { task } from '../../src/dsl/tasks.js'
import { localhost } from '../../src/dsl/hosts.js'
import { DEFAULT_MAX_OUTPUT } from '../../src/executor/context.js'
import { declare, ofType, runPlan } from './helpers.js'

const SIX_MB = "head -c 6000000 /dev/zero | tr '\\0' a; echo; echo END"

describe('run() output limits', () => {
  it('returns the last 4 MiB of a streamed command, with a warning; all of a quiet one or when asked', async () => {
    const lengths: Record<string, number> = {}
    const ends: Record<string, boolean> = {}
    const registry = await declare(() => {
      localhost('local')
      task('big', async (ctx) => {
        for (const [name, options] of [
          ['streamed', {}],
          ['quiet', { quiet: true }],
          ['all', { maxOutput: Infinity }],
          ['none', { maxOutput: 0 }],
        ] as const) {
          const out = await ctx.run(SIX_MB, options)
          lengths[name] = out.length
          ends[name] = out.endsWith('END')
        }
      })
    })
    const { outcome, events } = await runPlan(registry, 'big', { local: true })
    expect(outcome.exitCode).toBe(0)
    expect(lengths.streamed).toBeLessThanOrEqual(DEFAULT_MAX_OUTPUT)
    expect(lengths.streamed).toBeGreaterThan(DEFAULT_MAX_OUTPUT - 10)
    expect(ends.streamed).toBe(true)
    expect(lengths.quiet).toBe(6_000_000 + 4)
    expect(lengths.all).toBe(6_000_000 + 4)
    expect(lengths.none).toBe(0)
    const warnings = ofType(events, 'log').filter((e) => e.level === 'warning')
    // One warning: for the streamed command only (the others said what they wanted).
    expect(warnings.map((w) => w.message)).toEqual([expect.stringMatching(/returned only its last 4 MiB/)])
  }, 120_000)

  it('a CommandError carries the masked last 64 KiB of stderr, never the half of a secret cut by the tail', async () => {
    const SECRET = 'firstHALFsecondHALF-x'
    // 1 MiB of stderr is kept: the cut falls in the middle of the secret, in a line without newlines.
    const script = `head -c 100000 /dev/zero | tr '\\0' p >&2; printf %s ${SECRET} >&2; head -c ${1024 * 1024 - 10} /dev/zero | tr '\\0' q >&2; exit 3`
    // And stdout with maxOutput 1000: the kept 1000 bytes start inside the secret.
    const stdoutScript = `head -c 100000 /dev/zero | tr '\\0' p; printf %s ${SECRET}; head -c 990 /dev/zero | tr '\\0' q; exit 4`
    const registry = await declare(() => {
      localhost('local')
      task('fails', async (ctx) => {
        ctx.addSecrets(SECRET)
        await ctx.run(script, { quiet: true })
      })
      task('fails-stdout', async (ctx) => {
        ctx.addSecrets(SECRET)
        await ctx.run(stdoutScript, { quiet: true, maxOutput: 1000 })
      })
    })
    const { outcome, events } = await runPlan(registry, 'fails', { local: true })
    expect(outcome.exitCode).toBe(1)
    const all = JSON.stringify(events)
    expect(all).not.toContain('secondHALF')
    expect(all).not.toContain('HALF-x')
    const error = ofType(events, 'step:end').find((e) => e.error)!.error!
    expect(error.stderr!.length).toBeLessThanOrEqual(64 * 1024)
    expect(error.stderr).toMatch(/q+$/)

    const viaStdout = await runPlan(registry, 'fails-stdout', { local: true })
    expect(viaStdout.outcome.exitCode).toBe(1)
    const shown = JSON.stringify(viaStdout.events)
    expect(shown).not.toContain('HALF')
    const stdoutError = ofType(viaStdout.events, 'step:end').find((e) => e.error)!.error!
    // What is left: the q's after the secret (its cut-off tail dropped, not shown).
    expect(stdoutError.stdout).toMatch(/^q+$/)
  }, 120_000)
})
