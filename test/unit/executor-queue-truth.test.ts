/**
 * Step lines tell the truth about queued commands (issue 10, scenario 8): a
 * step that queued commands ends only once they ran, failed where they failed
 * or never ran, and a command's `failure` option gives its error an exit code
 * and hint that a best-effort finish phase turns into the run's exit code.
 */
import { describe, expect, it } from 'vitest'
import { fail, task } from '../../src/dsl/tasks.js'
import { host } from '../../src/dsl/hosts.js'
import { queue, run } from '../../src/dsl/runtime.js'
import { executePlan } from '../../src/executor/execute.js'
import { RunState } from '../../src/executor/run-state.js'
import { ConnectionError, ExitCode } from '../../src/model/errors.js'
import type { RunEvent } from '../../src/model/events.js'
import type { Host } from '../../src/model/host.js'
import type { Registry } from '../../src/model/registry.js'
import { buildPlan } from '../../src/plan/plan.js'
import { MemoryTransport, type Responder } from '../../src/transport/memory/memory-transport.js'
import type { ExecOptions, ExecResult } from '../../src/transport/types.js'
import { declare, ofType } from './helpers.js'

const UNLOCK_HINT = 'The lock is still on h1: release it with dep deploy:unlock --force h1'

/** A memory transport whose connection dies when a script matching `dieOn` is sent. */
class DyingTransport extends MemoryTransport {
  constructor(
    host: Host,
    responders: Responder[],
    private readonly dieOn: RegExp | undefined,
  ) {
    super(host, responders)
  }
  override async exec(script: string, options?: ExecOptions): Promise<ExecResult> {
    if (this.dieOn?.test(script)) throw new ConnectionError(`The connection to ${this.host.alias} (10.0.0.1 port 22) was lost: Keepalive timeout.`)
    return super.exec(script, options)
  }
}

async function runTask(registry: Registry, name: string, options: { responders?: Responder[]; dieOn?: RegExp } = {}) {
  const hosts = [...registry.hosts.values()]
  const events: RunEvent[] = []
  const transports = new Map<string, DyingTransport>()
  const state = new RunState(registry, hosts, {
    runId: 'run-queue-truth',
    overrides: new Map(),
    transportFor: (h) => {
      const t = new DyingTransport(h, options.responders ?? [], options.dieOn)
      transports.set(h.alias, t)
      return t
    },
    localTransportFor: (h) => new MemoryTransport(h),
    sink: (event) => events.push(event),
  })
  const outcome = await executePlan(state, buildPlan(registry, name, hosts))
  await state.close()
  return { outcome, events, transports }
}

/** Every command:start has its command:end, per host and task, in order. */
function expectPairedCommands(events: RunEvent[]): void {
  const open = new Map<string, number>()
  for (const event of events) {
    if (event.type !== 'command:start' && event.type !== 'command:end') continue
    const key = `${event.host}/${event.task}`
    const count = open.get(key) ?? 0
    if (event.type === 'command:start') open.set(key, count + 1)
    else {
      expect(count, `command:end without a start for ${key}`).toBeGreaterThan(0)
      open.set(key, count - 1)
    }
  }
  expect([...open.entries()].filter(([, n]) => n !== 0)).toEqual([])
}

const stepEnds = (events: RunEvent[]) => ofType(events, 'step:end').map((e) => `${e.task}:${e.status}`)

/** A `queued-failed` marker answer for the queued command at `index`. */
const queuedFails = (match: RegExp, index: number, code = 1): Responder => ({
  match,
  result: { code, stderr: `boom\n@@deployfile-queued-failed ${index}\n` },
})

describe('a step that queued commands', () => {
  it('ends ok only after its commands ran, carried by a later step (round trips as before)', async () => {
    const registry = await declare(() => {
      host('h1')
      task('a', async () => void (await queue`touch a`), { phase: 'prepare' })
      task('b', async () => void (await run`ls`), { phase: 'prepare' })
      task('deploy', ['a', 'b'])
    })
    const { outcome, events } = await runTask(registry, 'deploy')
    expect(outcome.exitCode).toBe(0)
    const order = events.filter((e) => e.type === 'step:start' || e.type === 'step:end' || e.type === 'command:end').map((e) => `${e.type}:${e.task}`)
    // a's end comes once its command ran, inside b.
    expect(order).toEqual(['step:start:a', 'step:start:b', 'command:end:a', 'command:end:b', 'step:end:a', 'step:end:b'])
    expect(ofType(events, 'step:end').map((e) => [e.task, e.status, e.roundTrips])).toEqual([
      ['a', 'ok', 0],
      ['b', 'ok', 1],
    ])
    expectPairedCommands(events)
  })

  it('a queued command that fails: its step fails, the step whose commands never ran fails, and every start has an end', async () => {
    const registry = await declare(() => {
      host('h1')
      task('first', async () => void (await queue`false-queued`), { phase: 'prepare' })
      task('second', async () => void (await queue`never-sent`), { phase: 'prepare' })
      task('third', async () => void (await run`echo carrier`), { phase: 'prepare' })
      task('deploy', ['first', 'second', 'third'])
    })
    const { outcome, events } = await runTask(registry, 'deploy', { responders: [queuedFails(/false-queued/, 0, 7)] })
    expect(outcome.status).toBe('failed')
    expect(outcome.failure!.task).toBe('first')
    expect(stepEnds(events)).toEqual(['first:failed', 'second:failed', 'third:failed'])
    const ends = ofType(events, 'step:end')
    expect(ends[0].error!.message).toBe('Command on h1 (queued by first) exited with code 7: false-queued')
    expect(ends[1].error!.message).toMatch(/^Command on h1 \(queued by second\) did not run: never-sent \(an earlier queued command failed \(queued by first\)\)$/)
    expect(ofType(events, 'command:end').map((e) => [e.task, e.exitCode])).toEqual([
      ['first', 7],
      ['second', null],
      ['third', null],
    ])
    expectPairedCommands(events)
  })

  it('queued commands never sent because an earlier step failed: their step ends failed before the recovery starts', async () => {
    const registry = await declare(() => {
      host('h1')
      task('queuer', async () => void (await queue`touch later`), { phase: 'prepare' })
      task('breaks', async () => {
        throw new Error('broken before any command')
      }, { phase: 'prepare' })
      task('deploy', ['queuer', 'breaks'])
      fail('deploy', async () => void (await run`undo`))
    })
    const { events, transports } = await runTask(registry, 'deploy')
    const types = events.map((e) => (e.type === 'step:end' ? `end:${e.task}:${e.status}` : e.type)).filter((t) => t.startsWith('end:') || t.startsWith('recovery'))
    expect(types.slice(0, 3)).toEqual(['end:breaks:failed', 'end:queuer:failed', 'recovery:start'])
    const queuer = ofType(events, 'step:end').find((e) => e.task === 'queuer')!
    expect(queuer.error!.message).toBe('Command on h1 (queued by queuer) did not run: touch later (the run stopped: breaks failed on h1)')
    // It was never sent: the only command on the host is the recovery's.
    expect(transports.get('h1')!.scripts).toEqual(['undo'])
    expectPairedCommands(events)
  })
})

describe('the finish phase (best effort) and `failure`', () => {
  /** switch → unlock (queues the lock removal, with its meaning) → cleanup (queues a removal). */
  const finishRegistry = () =>
    declare(() => {
      host('h1')
      task('sw', async () => void (await run`ln -sfn release current`), { phase: 'switch' })
      task('unlock', async (ctx) => void (await ctx.queue('rm -rf .dep/deploy.lock', { failure: { exitCode: ExitCode.LockNotReleased, hint: UNLOCK_HINT } })), { phase: 'finish' })
      task('cleanup', async () => void (await queue`rm -rf releases/1`), { phase: 'finish' })
      task('deploy', ['sw', 'unlock', 'cleanup'])
    })

  it('all good: ✔ for both, exit 0, one round trip for the phase', async () => {
    const { outcome, events, transports } = await runTask(await finishRegistry(), 'deploy')
    expect(outcome.exitCode).toBe(0)
    expect(stepEnds(events)).toEqual(['sw:ok', 'unlock:ok', 'cleanup:ok'])
    expect(transports.get('h1')!.roundTrips).toBe(2)
    expectPairedCommands(events)
  })

  it('the connection dies at the phase-end flush: unlock is a warning, not ✔, and the run exits 6 with the unlock hint', async () => {
    const { outcome, events } = await runTask(await finishRegistry(), 'deploy', { dieOn: /deploy\.lock/ })
    expect(stepEnds(events)).toEqual(['sw:ok', 'unlock:warning', 'cleanup:warning'])
    const unlock = ofType(events, 'step:end').find((e) => e.task === 'unlock')!
    expect(unlock.error!.message).toMatch(/^Command on h1 \(queued by unlock\) did not run: rm -rf \.dep\/deploy\.lock \(The connection to h1/)
    expect(unlock.error!.hint).toBe(UNLOCK_HINT)
    expect(outcome.exitCode).toBe(ExitCode.LockNotReleased)
    expect(outcome.status).toBe('failed')
    const end = ofType(events, 'run:end')[0]
    expect(end.exitCode).toBe(6)
    expect(end.warnings!.some((w) => w.hint === UNLOCK_HINT && w.host === 'h1' && w.task === 'unlock')).toBe(true)
    expectPairedCommands(events)
  })

  it('the queued unlock itself fails: its step is the warning (cleanup ran fine), exit 6', async () => {
    const { outcome, events } = await runTask(await finishRegistry(), 'deploy', { responders: [queuedFails(/deploy\.lock/, 0, 1)] })
    expect(stepEnds(events)).toEqual(['sw:ok', 'unlock:warning', 'cleanup:warning'])
    expect(outcome.exitCode).toBe(6)
    const unlock = ofType(events, 'step:end').find((e) => e.task === 'unlock')!
    expect(unlock.error!.message).toBe('Command on h1 (queued by unlock) exited with code 1: rm -rf .dep/deploy.lock')
    expect(unlock.error!.hint).toBe(UNLOCK_HINT)
    expectPairedCommands(events)
  })

  it('a failed finish command without a declared exit code stays a warning with exit 0', async () => {
    const { outcome, events } = await runTask(await finishRegistry(), 'deploy', { responders: [queuedFails(/releases\/1/, 1, 1)] })
    expect(stepEnds(events)).toEqual(['sw:ok', 'unlock:ok', 'cleanup:warning'])
    expect(outcome.exitCode).toBe(0)
    expect(outcome.status).toBe('success')
    expect(ofType(events, 'run:end')[0].warnings).toHaveLength(1)
  })

  it('run() with `failure`: its failure carries the exit code and hint', async () => {
    const registry = await declare(() => {
      host('h1')
      task('sw', async () => void (await run`switch`), { phase: 'switch' })
      task('unlock', async (ctx) => void (await ctx.run('rm -rf .dep/deploy.lock', { failure: { exitCode: ExitCode.LockNotReleased, hint: UNLOCK_HINT } })), { phase: 'finish' })
      task('deploy', ['sw', 'unlock'])
    })
    const { outcome, events } = await runTask(registry, 'deploy', { responders: [{ match: /deploy\.lock/, result: { code: 1, stderr: 'Permission denied' } }] })
    expect(outcome.exitCode).toBe(6)
    const warning = ofType(events, 'run:end')[0].warnings![0]
    expect(warning).toMatchObject({ host: 'h1', task: 'unlock', hint: UNLOCK_HINT, command: 'rm -rf .dep/deploy.lock' })
  })

  it('run() with `failure` outside the finish phase: the run exits with that code', async () => {
    const registry = await declare(() => {
      host('h1')
      task('t', async (ctx) => void (await ctx.run('false', { failure: { exitCode: ExitCode.LockHeld, hint: 'someone else' } })))
    })
    const { outcome } = await runTask(registry, 't', { responders: [{ match: /false/, result: { code: 1 } }] })
    expect(outcome.exitCode).toBe(ExitCode.LockHeld)
    expect(outcome.failure!.error.hint).toBe('someone else')
  })
})
