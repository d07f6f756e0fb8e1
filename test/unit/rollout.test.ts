/**
 * Rolling and canary deploys: the batch arithmetic, option validation, and the
 * engine running 'switch' and 'post-switch' steps batch by batch, with
 * --max-fail leaving failed hosts out (memory transport; the real thing is in
 * test/integration/rolling.test.ts).
 */
import { describe, expect, it } from 'vitest'
import { fail, task } from '../../src/dsl/tasks.js'
import { host } from '../../src/dsl/hosts.js'
import type { FailureInfo } from '../../src/dsl/context.js'
import { ConfigError, DeployError, ExitCode } from '../../src/model/errors.js'
import type { Host } from '../../src/model/host.js'
import { buildPlan } from '../../src/plan/plan.js'
import { batchesOf, batchSize, maxFailCount, parseAmount, parseRollout } from '../../src/plan/rollout.js'
import { createPlainReporter } from '../../src/report/plain.js'
import { emptyRunView, reduceRunView } from '../../src/report/run-view.js'
import { Titles } from '../../src/report/view-text.js'
import { declare, ofType, runPlan } from './helpers.js'

const fleet = (n: number): Host[] => Array.from({ length: n }, (_, i) => ({ alias: `h${i + 1}` }) as Host)
const aliases = (batches: Host[][]) => batches.map((b) => b.map((h) => h.alias))

describe('batch arithmetic', () => {
  it('reads a count or a percentage', () => {
    expect(parseAmount('--batch', '25%')).toEqual({ percent: 25 })
    expect(parseAmount('--batch', '12.5%')).toEqual({ percent: 12.5 })
    expect(parseAmount('--max-fail', ' 3 ')).toEqual({ count: 3 })
  })

  it('a percentage of the selected hosts, rounded up, at least one host', () => {
    expect(batchSize({ percent: 25 }, 8)).toBe(2)
    expect(batchSize({ percent: 25 }, 6)).toBe(2)
    expect(batchSize({ percent: 10 }, 3)).toBe(1)
    expect(batchSize({ percent: 100 }, 5)).toBe(5)
    expect(batchSize({ count: 9 }, 5)).toBe(5)
  })

  it('cuts hosts in order: the canary first, then batches of the size, the last one shorter', () => {
    expect(batchesOf([1, 2, 3, 4, 5, 6], 2)).toEqual([[1, 2], [3, 4], [5, 6]])
    expect(batchesOf([1, 2, 3, 4, 5, 6], 2, 1)).toEqual([[1], [2, 3], [4, 5], [6]])
    expect(batchesOf([1, 2, 3, 4, 5], 4)).toEqual([[1, 2, 3, 4], [5]])
  })

  it('parseRollout: --batch 25% of 6 hosts with --canary 1', () => {
    const rollout = parseRollout({ strategy: 'rolling', batch: '25%', canary: '1' }, fleet(6))!
    expect(aliases(rollout.batches)).toEqual([['h1'], ['h2', 'h3'], ['h4', 'h5'], ['h6']])
    expect(rollout.canary).toBe(true)
    expect(rollout.maxFail).toBe(0)
  })

  it('parseRollout: --batch 2 of 6 hosts is 3 batches; without --batch, one batch of every host', () => {
    expect(aliases(parseRollout({ strategy: 'rolling', batch: '2' }, fleet(6))!.batches)).toEqual([['h1', 'h2'], ['h3', 'h4'], ['h5', 'h6']])
    expect(aliases(parseRollout({ strategy: 'rolling' }, fleet(3))!.batches)).toEqual([['h1', 'h2', 'h3']])
  })

  it('a canary as big as the fleet is one batch of every host', () => {
    expect(aliases(parseRollout({ strategy: 'rolling', canary: '5' }, fleet(2))!.batches)).toEqual([['h1', 'h2']])
  })

  it('--max-fail: a percentage rounded down, a count as given (at most every host)', () => {
    expect(maxFailCount({ percent: 10 }, 6)).toBe(0)
    expect(maxFailCount({ percent: 10 }, 20)).toBe(2)
    expect(maxFailCount({ percent: 50 }, 5)).toBe(2)
    expect(maxFailCount({ count: 1 }, 6)).toBe(1)
    expect(maxFailCount({ count: 9 }, 6)).toBe(6)
    expect(maxFailCount(undefined, 6)).toBe(0)
    expect(parseRollout({ strategy: 'rolling', maxFail: '34%' }, fleet(6))!.maxFail).toBe(2)
  })

  it('the default strategy (all, or none given) is no rollout', () => {
    expect(parseRollout({}, fleet(3))).toBeUndefined()
    expect(parseRollout({ strategy: 'all' }, fleet(3))).toBeUndefined()
  })
})

describe('option validation: a ConfigError (exit 2) naming the option', () => {
  const refused = (options: Parameters<typeof parseRollout>[0], pattern: RegExp) => {
    let error: unknown
    try {
      parseRollout(options, fleet(4))
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).exitCode).toBe(ExitCode.ConfigError)
    expect((error as Error).message).toMatch(pattern)
  }

  it('--batch, --canary, --max-fail without --strategy rolling', () => {
    refused({ batch: '2' }, /^--batch only goes with --strategy rolling/)
    refused({ canary: '1' }, /^--canary only goes with --strategy rolling/)
    refused({ strategy: 'all', maxFail: '1' }, /^--max-fail only goes with --strategy rolling/)
    refused({ batch: '2', maxFail: '10%' }, /^--batch, --max-fail only go with --strategy rolling/)
  })

  it('bad values: 0, 0%, more than 100%, not a number, a percentage for --canary', () => {
    refused({ strategy: 'rolling', batch: '0' }, /^--batch 0: expected/)
    refused({ strategy: 'rolling', batch: '0%' }, /^--batch 0%: a percentage must be more than 0%/)
    refused({ strategy: 'rolling', batch: '101%' }, /^--batch 101%: a percentage must be more than 0% and at most 100%/)
    refused({ strategy: 'rolling', batch: 'two' }, /^--batch two: expected/)
    refused({ strategy: 'rolling', batch: '1.5' }, /^--batch 1.5: expected/)
    refused({ strategy: 'rolling', canary: '0' }, /^--canary 0: expected a number of hosts/)
    refused({ strategy: 'rolling', canary: '50%' }, /^--canary 50%: expected a number of hosts/)
    refused({ strategy: 'rolling', maxFail: '-1' }, /^--max-fail -1: expected/)
    refused({ strategy: 'rolling', maxFail: '200%' }, /^--max-fail 200%/)
    refused({ strategy: 'blue-green' }, /^--strategy blue-green: expected one of all, rolling/)
  })

  it('a task with no switch step cannot be rolled out', async () => {
    const registry = await declare(() => {
      host('h[1:2]')
      task('work', async () => {}, { phase: 'prepare' })
    })
    const hosts = [...registry.hosts.values()]
    expect(() => buildPlan(registry, 'work', hosts, { rollout: parseRollout({ strategy: 'rolling', batch: '1' }, hosts) })).toThrow(
      /--strategy rolling: work has no 'switch' step/,
    )
  })
})

/**
 * A deploy-shaped task: prep (prepare), sw (switch), check (post-switch), fin
 * (finish); the fail hook records each host's ctx.failure. `failing` hosts
 * fail `check`.
 */
async function rollingFleet(hosts: number, failing: string[]) {
  const log: string[] = []
  const failures = new Map<string, FailureInfo | undefined>()
  const registry = await declare(() => {
    host(`h[1:${hosts}]`)
    task('prep', async (ctx) => void log.push(`prep:${ctx.host.alias}`), { phase: 'prepare' })
    task('sw', async (ctx) => void log.push(`sw:${ctx.host.alias}`), { phase: 'switch' })
    task('check', async (ctx) => {
      log.push(`check:${ctx.host.alias}`)
      if (failing.includes(ctx.host.alias)) throw new DeployError(`unhealthy ${ctx.host.alias}`)
    }, { phase: 'post-switch' })
    task('fin', async (ctx) => void log.push(`fin:${ctx.host.alias}`), { phase: 'finish' })
    task('undo', async (ctx) => {
      log.push(`undo:${ctx.host.alias}`)
      failures.set(ctx.host.alias, ctx.failure)
    })
    task('ship', ['prep', 'sw', 'check', 'fin'])
    fail('ship', 'undo')
  })
  return { registry, log, failures }
}

describe('the engine, batch by batch', () => {
  it('each batch switches and is checked before the next one switches; prepare and finish on every host', async () => {
    const { registry, log } = await rollingFleet(5, [])
    const { outcome, events } = await runPlan(registry, 'ship', { rollout: { strategy: 'rolling', batch: '2', canary: '1' } })
    expect(outcome.exitCode).toBe(0)
    const batches = ofType(events, 'batch:start')
    expect(batches.map((b) => b.hosts)).toEqual([['h1'], ['h2', 'h3'], ['h4', 'h5']])
    expect(batches[0].canary).toBe(true)
    expect(ofType(events, 'run:start')[0].batches).toEqual([['h1'], ['h2', 'h3'], ['h4', 'h5']])
    // Every prep before any switch; every switch of batch k after every check of batch k-1; fin after all.
    const at = (entry: string) => log.indexOf(entry)
    const lastPrep = Math.max(...[1, 2, 3, 4, 5].map((i) => at(`prep:h${i}`)))
    expect(lastPrep).toBeLessThan(at('sw:h1'))
    expect(at('check:h1')).toBeLessThan(Math.min(at('sw:h2'), at('sw:h3')))
    expect(Math.max(at('check:h2'), at('check:h3'))).toBeLessThan(Math.min(at('sw:h4'), at('sw:h5')))
    expect(Math.max(at('check:h4'), at('check:h5'))).toBeLessThan(Math.min(...[1, 2, 3, 4, 5].map((i) => at(`fin:h${i}`))))
    // Step events carry their batch.
    const swStarts = ofType(events, 'step:start').filter((e) => e.task === 'sw')
    expect(swStarts.map((e) => [e.host, e.batch])).toEqual([['h1', 0], ['h2', 1], ['h3', 1], ['h4', 2], ['h5', 2]])
    expect(ofType(events, 'step:start').find((e) => e.task === 'prep')?.batch).toBeUndefined()
    expect(ofType(events, 'batch:end').map((b) => b.status)).toEqual(['ok', 'ok', 'ok'])
  })

  it('a failure in batch 2 without --max-fail: the fail hook runs on every host, later batches never switch', async () => {
    const { registry, log, failures } = await rollingFleet(6, ['h3'])
    const { outcome } = await runPlan(registry, 'ship', { rollout: { strategy: 'rolling', batch: '2' } })
    expect(outcome.exitCode).toBe(ExitCode.TaskFailed)
    expect(log.filter((l) => l.startsWith('sw:'))).toEqual(['sw:h1', 'sw:h2', 'sw:h3', 'sw:h4'].filter((l) => log.includes(l)))
    expect(log).not.toContain('sw:h5')
    expect(log).not.toContain('fin:h1')
    expect([...failures.keys()].sort()).toEqual(['h1', 'h2', 'h3', 'h4', 'h5', 'h6'])
    expect(failures.get('h1')).toMatchObject({ task: 'check', host: 'h3', phase: 'post-switch' })
    expect(failures.get('h1')?.leftOut).toBeUndefined()
  })

  it('--max-fail 1: the failed host is undone alone and left out, the others go on; exit 7 naming it', async () => {
    const { registry, log, failures } = await rollingFleet(6, ['h3'])
    const { outcome, events } = await runPlan(registry, 'ship', { rollout: { strategy: 'rolling', batch: '2', maxFail: '1' } })
    expect(outcome.status).toBe('partial')
    expect(outcome.exitCode).toBe(ExitCode.PartialDeploy)
    expect([...failures.keys()]).toEqual(['h3'])
    expect(failures.get('h3')).toMatchObject({ task: 'check', host: 'h3', leftOut: true })
    for (const alias of ['h1', 'h2', 'h4', 'h5', 'h6']) expect(log).toContain(`fin:${alias}`)
    expect(log).not.toContain('fin:h3')
    expect(ofType(events, 'step:end').find((e) => e.task === 'fin' && e.host === 'h3')?.status).toBe('skipped')
    const end = ofType(events, 'run:end')[0]
    expect(end.summary.leftOut).toEqual([{ host: 'h3', task: 'check', message: 'unhealthy h3' }])
    expect(ofType(events, 'recovery:start').map((e) => e.host)).toEqual(['h3'])
    expect(ofType(events, 'batch:end').map((b) => b.status)).toEqual(['ok', 'failed', 'ok'])

    const lines: string[] = []
    const plain = createPlainReporter({ verbosity: 0, color: false, write: (l) => lines.push(l) })
    for (const event of events) plain(event)
    const text = lines.join('\n')
    expect(text).toContain('▸ batch 2/3: h3, h4')
    // The finish line names the hosts that ran it, not the one left out.
    expect(text).toContain('[5 hosts] ✔ fin')
    expect(text).toMatch(/Left out by --max-fail .*: h3/)
    expect(text).toMatch(/ship finished .* but 1 of 6 hosts were left out \(exit 7/)
  })

  it('--max-fail 1 with two failed hosts: the second failure brings the whole fleet back', async () => {
    const { registry, log, failures } = await rollingFleet(6, ['h2', 'h4'])
    const { outcome, events } = await runPlan(registry, 'ship', { rollout: { strategy: 'rolling', batch: '2', maxFail: '1' } })
    expect(outcome.exitCode).toBe(ExitCode.TaskFailed)
    expect(log).toContain('sw:h4')
    expect(log).not.toContain('sw:h5')
    expect(log).not.toContain('fin:h1')
    // h2 was undone alone first; then every host, h2 again included (its recipe finds nothing left to undo).
    expect(ofType(events, 'recovery:start').map((e) => e.host ?? 'fleet')).toEqual(['h2', 'fleet'])
    expect([...failures.keys()].sort()).toEqual(['h1', 'h2', 'h3', 'h4', 'h5', 'h6'])
    expect(failures.get('h1')).toMatchObject({ host: 'h4' })
    // Every host went back: the closing lines do not call h2 drifted.
    const lines: string[] = []
    const plain = createPlainReporter({ verbosity: 0, color: false, write: (l) => lines.push(l) })
    for (const event of events) plain(event)
    expect(lines.join('\n')).not.toContain('Left out by --max-fail')
    expect(ofType(events, 'run:end')[0].summary.leftOut?.map((l) => l.host)).toEqual(['h2'])
  })

  it('--max-fail never leaves every host out: the last one failing brings the fleet back', async () => {
    const { registry, failures } = await rollingFleet(2, ['h1', 'h2'])
    const { outcome, events } = await runPlan(registry, 'ship', { rollout: { strategy: 'rolling', batch: '1', maxFail: '100%' } })
    expect(outcome.exitCode).toBe(ExitCode.TaskFailed)
    expect(ofType(events, 'recovery:start').map((e) => e.host ?? 'fleet')).toEqual(['h1', 'fleet'])
    expect(failures.get('h2')).toMatchObject({ host: 'h2' })
    expect(failures.get('h2')?.leftOut).toBeUndefined()
  })

  it('a failing canary stops the run even within --max-fail: no other host switches', async () => {
    const { registry, log, failures } = await rollingFleet(4, ['h1'])
    const { outcome } = await runPlan(registry, 'ship', { rollout: { strategy: 'rolling', batch: '2', canary: '1', maxFail: '1' } })
    expect(outcome.exitCode).toBe(ExitCode.TaskFailed)
    expect(log.filter((l) => l.startsWith('sw:'))).toEqual(['sw:h1'])
    expect([...failures.keys()].sort()).toEqual(['h1', 'h2', 'h3', 'h4'])
    expect(failures.get('h2')?.leftOut).toBeUndefined()
  })

  it('the live tree: a line per batch under the switch step; a host left out does not end the run early', async () => {
    const { registry } = await rollingFleet(4, ['h2'])
    const { events } = await runPlan(registry, 'ship', { rollout: { strategy: 'rolling', batch: '2', maxFail: '1' } })
    let view = emptyRunView(0)
    for (const event of events) view = reduceRunView(view, event)
    const titles = new Titles(false)
    const sw = view.steps.find((r) => r.planned.task === 'sw')!
    expect(titles.step(view, sw, 0).split('\n').slice(1)).toEqual(['▸ batch 1/2 had a failure: h1, h2', '▸ batch 2/2 done: h3, h4'])
    expect(titles.step(view, view.steps.find((r) => r.planned.task === 'check')!, 0)).not.toContain('batch')
    // Every step ran to its end (h2 skipped fin), none is 'not-run'; the recovery group is h2's alone.
    expect(view.steps.map((r) => [r.planned.task, r.state])).toEqual([['prep', 'ok'], ['sw', 'ok'], ['check', 'failed'], ['fin', 'ok']])
    expect(view.recovery?.start.host).toBe('h2')
    expect(view.recovery?.steps.map((r) => r.state)).toEqual(['ok'])
  })

  it('--max-fail covers the prepare phase too: a host failing there never switches, the others go live', async () => {
    const log: string[] = []
    const failures = new Map<string, FailureInfo | undefined>()
    const registry = await declare(() => {
      host('h[1:3]')
      task('prep', async (ctx) => {
        if (ctx.host.alias === 'h2') throw new DeployError('disk full')
      }, { phase: 'prepare' })
      task('migrate', async (ctx) => void log.push(`migrate:${ctx.host.alias}`), { phase: 'prepare', once: true })
      task('sw', async (ctx) => void log.push(`sw:${ctx.host.alias}`), { phase: 'switch' })
      task('undo', async (ctx) => void failures.set(ctx.host.alias, ctx.failure))
      task('ship', ['prep', 'migrate', 'sw'])
      fail('ship', 'undo')
    })
    const { outcome } = await runPlan(registry, 'ship', { rollout: { strategy: 'rolling', batch: '1', maxFail: '1' } })
    expect(outcome.exitCode).toBe(ExitCode.PartialDeploy)
    expect(log).toEqual(['migrate:h1', 'sw:h1', 'sw:h3'])
    expect([...failures.keys()]).toEqual(['h2'])
    expect(failures.get('h2')).toMatchObject({ task: 'prep', phase: 'prepare', leftOut: true })
  })

  it('a once step (migrations) that fails brings the whole fleet back, whatever --max-fail says; its host left out, it runs on the next one', async () => {
    const failures = new Map<string, FailureInfo | undefined>()
    const ran: string[] = []
    const registry = await declare(() => {
      host('h[1:3]')
      task('prep', async (ctx) => {
        if (ctx.host.alias === 'h1') throw new DeployError('h1 is broken')
      }, { phase: 'prepare' })
      task('migrate', async (ctx) => {
        ran.push(ctx.host.alias)
        throw new DeployError('migration failed')
      }, { phase: 'prepare', once: true })
      task('sw', async () => {}, { phase: 'switch' })
      task('undo', async (ctx) => void failures.set(ctx.host.alias, ctx.failure))
      task('ship', ['prep', 'migrate', 'sw'])
      fail('ship', 'undo')
    })
    const { outcome } = await runPlan(registry, 'ship', { rollout: { strategy: 'rolling', batch: '1', maxFail: '2' } })
    expect(outcome.exitCode).toBe(ExitCode.TaskFailed)
    expect(ran).toEqual(['h2'])
    expect(failures.get('h3')).toMatchObject({ task: 'migrate', host: 'h2' })
    expect(failures.get('h3')?.leftOut).toBeUndefined()
  })

  it('a dry run shows the batches', async () => {
    const { registry } = await rollingFleet(3, [])
    const { events } = await runPlan(registry, 'ship', { dryRun: true, rollout: { strategy: 'rolling', batch: '1' } })
    expect(ofType(events, 'batch:start').map((b) => b.hosts)).toEqual([['h1'], ['h2'], ['h3']])
  })
})
