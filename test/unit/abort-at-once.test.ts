/**
 * A second Ctrl-C stops at once, but first every `ctx.onAbort()` handler says
 * what is left on its host (issue 10, scenario 12). Runs `runTask` with the
 * local transport (real /bin/sh) and a stand-in for the process's signals.
 */
import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { fail, task } from '../../src/dsl/tasks.js'
import { localhost } from '../../src/dsl/hosts.js'
import { run } from '../../src/dsl/runtime.js'
import { runTask, ABORTED_AT_ONCE_HINT, type SignalSource } from '../../src/cli/run-task.js'
import { ExitCode } from '../../src/model/errors.js'
import type { RunEvent } from '../../src/model/events.js'
import { buildPlan } from '../../src/plan/plan.js'
import { SecretRegistry } from '../../src/shell/redact.js'
import type { Registry } from '../../src/model/registry.js'
import { declare, ofType, within } from './helpers.js'

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

function start(registry: Registry, name: string) {
  const hosts = [...registry.hosts.values()]
  const events: RunEvent[] = []
  const signals = new EventEmitter()
  const outcome = runTask({
    registry,
    plan: buildPlan(registry, name, hosts),
    hosts,
    overrides: new Map(),
    sink: (event) => events.push(event),
    secrets: new SecretRegistry(),
    signals: signals as SignalSource,
  })
  const send = (signal: NodeJS.Signals) => signals.emit(signal, signal)
  return { outcome, events, send, listeners: () => signals.listenerCount('SIGINT') + signals.listenerCount('SIGTERM') + signals.listenerCount('SIGHUP') }
}

const commandStarted = (events: RunEvent[], text: string) => () => ofType(events, 'command:start').some((e) => e.command.includes(text))

describe('a second signal', () => {
  it('runs the onAbort handlers (their commands run despite the abort), prints their lines, and ends with exit 5', async () => {
    const registry = await declare(() => {
      localhost('a')
      localhost('b')
      task('hold', async (ctx) => {
        ctx.onAbort(async () => {
          const state = await ctx.run(`echo "lock held on ${ctx.host.alias}"`)
          return `${state}: run dep deploy:unlock --force ${ctx.host.alias}`
        })
        const remove = ctx.onAbort(() => 'removed handlers say nothing')
        remove()
        await run`sleep 20`
      })
      // The recovery is still busy when the second signal comes.
      fail('hold', async () => void (await run`sleep 19`))
    })
    const { outcome, events, send, listeners } = start(registry, 'hold')
    await until(commandStarted(events, 'sleep 20'), 'the sleep')
    send('SIGHUP')
    await until(commandStarted(events, 'sleep 19'), 'the recovery')
    const sent = events.length
    send('SIGINT')
    const result = await within(outcome, 15_000, 'the run after the second signal')
    expect(result.status).toBe('interrupted')
    expect(result.exitCode).toBe(ExitCode.RollbackFailed)
    const after = events.slice(sent)
    const warnings = ofType(after, 'log').filter((e) => e.level === 'warning')
    expect(warnings.map((e) => [e.host, e.message])).toEqual([
      [undefined, 'SIGINT again: stopping at once'],
      ['a', 'lock held on a: run dep deploy:unlock --force a'],
      ['b', 'lock held on b: run dep deploy:unlock --force b'],
    ])
    const end = events.at(-1)!
    if (end.type !== 'run:end') throw new Error(`last event is ${end.type}`)
    expect(end).toMatchObject({ status: 'interrupted', exitCode: 5, error: { name: 'InterruptedError', hint: ABORTED_AT_ONCE_HINT } })
    expect(ofType(events, 'run:end')).toHaveLength(1)
    expect(listeners()).toBe(0)
    // Nothing is reported after run:end, even as the plan unwinds.
    const count = events.length
    await new Promise((r) => setTimeout(r, 300))
    expect(events.length).toBe(count)
  }, 30_000)

  it('a handler that does not answer is named after the bound, and the others still print', async () => {
    const registry = await declare(() => {
      localhost('slow')
      localhost('quick')
      task('hold', async (ctx) => {
        ctx.onAbort(ctx.host.alias === 'slow' ? () => new Promise<string>(() => undefined) : () => 'quick: release 7 is live')
        await run`sleep 20`
      })
    })
    const { outcome, events, send } = start(registry, 'hold')
    await until(commandStarted(events, 'sleep 20'), 'the sleep')
    send('SIGTERM')
    send('SIGINT')
    const result = await within(outcome, 15_000, 'the run')
    expect(result.exitCode).toBe(5)
    const lines = ofType(events, 'log').filter((e) => e.host).map((e) => [e.host, e.message])
    expect(lines).toEqual([
      ['slow', 'hold: no answer within 5 s on what is left on slow; check this host by hand.'],
      ['quick', 'quick: release 7 is live'],
    ])
  }, 30_000)

  it('a SIGTERM after the first signal (CI escalating) does not cut the revert short', async () => {
    const registry = await declare(() => {
      localhost('a')
      task('hold', async (ctx) => {
        ctx.onAbort(() => 'never printed')
        await run`sleep 20`
      })
      fail('hold', async () => void (await run`sleep 1 && echo reverted`))
    })
    const { outcome, events, send } = start(registry, 'hold')
    await until(commandStarted(events, 'sleep 20'), 'the sleep')
    send('SIGINT')
    await until(commandStarted(events, 'sleep 1 && echo reverted'), 'the recovery')
    send('SIGTERM')
    const result = await within(outcome, 15_000, 'the run')
    expect(result.exitCode).toBe(ExitCode.Interrupted)
    const messages = ofType(events, 'log').map((e) => e.message)
    expect(messages).toContain('SIGTERM: already stopping; the revert goes on (SIGINT to abort at once)')
    expect(messages).not.toContain('never printed')
    expect(ofType(events, 'command:output').map((e) => e.text)).toContain('reverted')
  }, 30_000)

  it('one signal only: the run reverts and ends as before (130), handlers unused', async () => {
    const registry = await declare(() => {
      localhost('a')
      task('hold', async (ctx) => {
        ctx.onAbort(() => 'never printed')
        await run`sleep 20`
      })
    })
    const { outcome, events, send } = start(registry, 'hold')
    await until(commandStarted(events, 'sleep 20'), 'the sleep')
    send('SIGINT')
    const result = await within(outcome, 15_000, 'the run')
    expect(result.exitCode).toBe(ExitCode.Interrupted)
    expect(ofType(events, 'log').some((e) => e.message === 'never printed')).toBe(false)
  }, 30_000)
})
