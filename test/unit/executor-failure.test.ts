/** executePlan when things fail: stop, fail hooks with ctx.failure, finish warnings, exit codes. */
import { describe, expect, it } from 'vitest'
import { fail, task } from '../../src/dsl/tasks.js'
import { host } from '../../src/dsl/hosts.js'
import { run } from '../../src/dsl/runtime.js'
import type { FailureInfo } from '../../src/dsl/context.js'
import { ConfigError, LockHeldError } from '../../src/model/errors.js'
import type { Responder } from '../../src/transport/memory/memory-transport.js'
import { declare, ofType, runPlan, sleep } from './helpers.js'

describe('a failing step', () => {
  it('stops the run: later steps do not run anywhere', async () => {
    const ran: string[] = []
    const registry = await declare(() => {
      host('web[1:2]')
      task('ok', async (ctx) => void ran.push(`ok:${ctx.host.alias}`))
      task('boom', async (ctx) => {
        if (ctx.host.alias === 'web2') await run`false`
        ran.push(`boom:${ctx.host.alias}`)
      })
      task('never', async (ctx) => void ran.push(`never:${ctx.host.alias}`))
      task('all', ['ok', 'boom', 'never'])
    })
    const { outcome, events } = await runPlan(registry, 'all', { responders: [{ match: /^false$/, result: { code: 1, stderr: 'nope' } }] })
    expect(outcome.status).toBe('failed')
    expect(outcome.exitCode).toBe(1)
    expect(ran.sort()).toEqual(['boom:web1', 'ok:web1', 'ok:web2'])
    const ends = ofType(events, 'step:end').filter((e) => e.task === 'boom')
    expect(ends.map((e) => [e.host, e.status]).sort()).toEqual([
      ['web1', 'ok'],
      ['web2', 'failed'],
    ])
    expect(ofType(events, 'run:end')[0]).toMatchObject({ status: 'failed', exitCode: 1 })
  })

  it('runs the fail hook on every selected host with ctx.failure set', async () => {
    const failures = new Map<string, FailureInfo | undefined>()
    const registry = await declare(() => {
      host('web[1:3]')
      task('prep', async (ctx) => {
        if (ctx.host.alias === 'web2') throw new Error('disk full')
      }, { phase: 'prepare' })
      task('work', ['prep'])
      task('undo', async (ctx) => void failures.set(ctx.host.alias, ctx.failure))
      fail('work', 'undo')
    })
    const { outcome, events } = await runPlan(registry, 'work')
    expect(outcome.status).toBe('failed')
    expect([...failures.keys()].sort()).toEqual(['web1', 'web2', 'web3'])
    for (const failure of failures.values()) {
      expect(failure).toMatchObject({ task: 'prep', host: 'web2', phase: 'prepare', interrupted: false })
      expect(failure!.error.message).toBe('disk full')
    }
    expect(outcome.failure).toMatchObject({ task: 'prep', host: 'web2', phase: 'prepare' })
    const recoverySteps = ofType(events, 'step:start').filter((e) => e.recovery)
    expect(recoverySteps.map((e) => e.task)).toEqual(['undo', 'undo', 'undo'])
    expect(ofType(events, 'recovery:start')[0]).toMatchObject({ failedTask: 'prep', failedHost: 'web2', phase: 'prepare' })
    expect(ofType(events, 'recovery:end')[0]).toMatchObject({ ok: true })
  })

  it('fail hooks also run on hosts that a once step left out', async () => {
    const undone: string[] = []
    const registry = await declare(() => {
      host('web[1:2]')
      task('migrate', async () => {
        throw new Error('migration failed')
      }, { once: true })
      task('undo', async (ctx) => void undone.push(ctx.host.alias))
      fail('migrate', 'undo')
    })
    await runPlan(registry, 'migrate')
    expect(undone.sort()).toEqual(['web1', 'web2'])
  })

  it('without a fail hook the run still fails with the task’s error', async () => {
    const registry = await declare(() => {
      host('h')
      task('t', async () => {
        throw new Error('plain')
      })
    })
    const { outcome, events } = await runPlan(registry, 't')
    expect(outcome).toMatchObject({ status: 'failed', exitCode: 1 })
    expect(ofType(events, 'recovery:start')).toEqual([])
  })
})

describe('finish phase', () => {
  it('a finish failure is a warning when the plan switched', async () => {
    const ran: string[] = []
    const registry = await declare(() => {
      host('h')
      task('sw', async () => {}, { phase: 'switch' })
      task('cleanup', async () => {
        throw new Error('cleanup broke')
      }, { phase: 'finish' })
      task('notify', async () => void ran.push('notify'), { phase: 'finish' })
      task('deploy', ['sw', 'cleanup', 'notify'])
      task('undo', async () => void ran.push('undo'))
      fail('deploy', 'undo')
    })
    const { outcome, events } = await runPlan(registry, 'deploy')
    expect(outcome.status).toBe('success')
    expect(outcome.exitCode).toBe(0)
    expect(outcome.warnings.map((w) => w.message)).toEqual(['cleanup broke'])
    expect(ran).toEqual(['notify'])
    expect(ofType(events, 'step:end').find((e) => e.task === 'cleanup')!.status).toBe('warning')
    expect(ofType(events, 'log').some((e) => e.level === 'warning' && e.message.includes('cleanup broke'))).toBe(true)
  })

  it('a finish failure fails the run when nothing switched', async () => {
    const registry = await declare(() => {
      host('h')
      task('unlock', async () => {
        throw new Error('unlock broke')
      }, { phase: 'finish' })
    })
    const { outcome, events } = await runPlan(registry, 'unlock')
    expect(outcome).toMatchObject({ status: 'failed', exitCode: 1 })
    expect(ofType(events, 'step:end')[0].status).toBe('failed')
  })
})

describe('exit codes', () => {
  async function failingWith(body: () => Promise<unknown>, responders: Responder[] = []) {
    const registry = await declare(() => {
      host('h')
      task('t', body)
    })
    return (await runPlan(registry, 't', { responders })).outcome
  }

  it('CommandError → 1', async () => {
    const outcome = await failingWith(() => run`exit 3`, [{ match: /exit 3/, result: { code: 3 } }])
    expect(outcome.exitCode).toBe(1)
    expect((outcome.error as Error).name).toBe('CommandError')
  })

  it('LockHeldError → 4', async () => {
    const outcome = await failingWith(async () => {
      throw new LockHeldError('held by someone')
    })
    expect(outcome.exitCode).toBe(4)
  })

  it('ConfigError → 2 (a missing setting)', async () => {
    const outcome = await failingWith(async () => {
      const { get } = await import('../../src/dsl/runtime.js')
      await get('deploy_path')
    })
    expect(outcome.exitCode).toBe(2)
    expect(outcome.error).toBeInstanceOf(ConfigError)
  })

  it('a plain Error → 1', async () => {
    const outcome = await failingWith(async () => {
      throw new TypeError('oops')
    })
    expect(outcome.exitCode).toBe(1)
    expect(outcome.failure!.error).toMatchObject({ name: 'TypeError', message: 'oops', host: 'h', task: 't' })
  })

  it('a failing recovery → 5 (rollback-failed)', async () => {
    const registry = await declare(() => {
      host('web[1:2]')
      task('t', async () => {
        throw new Error('first failure')
      })
      task('undo', async (ctx) => {
        if (ctx.host.alias === 'web1') throw new Error('undo failed too')
      })
      fail('t', 'undo')
    })
    const { outcome, events } = await runPlan(registry, 't')
    expect(outcome.status).toBe('rollback-failed')
    expect(outcome.exitCode).toBe(5)
    expect(outcome.recoveryErrors).toHaveLength(1)
    expect(outcome.recoveryErrors[0]).toMatchObject({ message: 'undo failed too', host: 'web1', task: 'undo' })
    expect(ofType(events, 'recovery:end')[0].ok).toBe(false)
  })

  it('an abort signal → 130, and fail hooks still run (their commands too)', async () => {
    const controller = new AbortController()
    const undoOutput: string[] = []
    let secondRan = false
    const registry = await declare(() => {
      host('web[1:2]')
      task('first', async () => {
        controller.abort()
        await sleep(5)
      })
      task('second', async () => {
        secondRan = true
      })
      task('all', ['first', 'second'])
      task('undo', async (ctx) => {
        expect(ctx.failure?.interrupted).toBe(true)
        undoOutput.push(await run`echo undo`)
      })
      fail('all', 'undo')
    })
    const { outcome, transports } = await runPlan(registry, 'all', {
      signal: controller.signal,
      responders: [{ match: /echo undo/, result: { stdout: 'undone\n' } }],
    })
    expect(outcome.status).toBe('interrupted')
    expect(outcome.exitCode).toBe(130)
    expect(secondRan).toBe(false)
    expect(undoOutput).toEqual(['undone', 'undone'])
    expect(transports.get('web1')!.scripts).toEqual(['echo undo'])
  })

  it('a command after the abort is refused with an InterruptedError', async () => {
    const controller = new AbortController()
    const registry = await declare(() => {
      host('h')
      task('t', async () => {
        controller.abort()
        await run`echo after-abort`
      })
    })
    const { outcome, transports } = await runPlan(registry, 't', { signal: controller.signal })
    expect(outcome.exitCode).toBe(130)
    expect(outcome.failure!.interrupted).toBe(true)
    expect(transports.get('h')!.operations).toEqual([])
  })
})
