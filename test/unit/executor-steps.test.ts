/** executePlan: order, parallelism, limits, barriers and once, on the MemoryTransport. */
import { describe, expect, it } from 'vitest'
import { task } from '../../src/dsl/tasks.js'
import { host } from '../../src/dsl/hosts.js'
import { run } from '../../src/dsl/runtime.js'
import { barrier, declare, ofType, runPlan, sleep, within } from './helpers.js'

describe('step order', () => {
  it('runs steps in plan order on every host', async () => {
    const registry = await declare(() => {
      host('web[1:3]')
      task('one', async () => void (await run`echo one`))
      task('two', async () => void (await run`echo two`))
      task('three', async () => void (await run`echo three`))
      task('all', ['one', 'two', 'three'])
    })
    const { outcome, transports, events } = await runPlan(registry, 'all')
    expect(outcome.status).toBe('success')
    expect(outcome.exitCode).toBe(0)
    for (const alias of ['web1', 'web2', 'web3']) {
      expect(transports.get(alias)!.scripts).toEqual(['echo one', 'echo two', 'echo three'])
    }
    const runStart = ofType(events, 'run:start')[0]
    expect(runStart.steps.map((s) => s.task)).toEqual(['one', 'two', 'three'])
    expect(runStart.hosts).toEqual(['web1', 'web2', 'web3'])
    expect(ofType(events, 'run:end')[0]).toMatchObject({ status: 'success', exitCode: 0, roundTrips: { web1: 3, web2: 3, web3: 3 } })
  })

  it('emits step:start / step:end per host with status ok', async () => {
    const registry = await declare(() => {
      host('web[1:2]')
      task('t', async () => {})
    })
    const { events } = await runPlan(registry, 't')
    expect(ofType(events, 'step:start').map((e) => [e.task, e.host])).toEqual([
      ['t', 'web1'],
      ['t', 'web2'],
    ])
    expect(ofType(events, 'step:end').map((e) => e.status)).toEqual(['ok', 'ok'])
  })
})

describe('parallelism', () => {
  it('hosts of one step run at the same time (a 3-party barrier is reached)', async () => {
    const gate = barrier(3)
    const registry = await declare(() => {
      host('web[1:3]')
      // Sequential hosts would wait here forever.
      task('meet', async () => gate.arrive())
    })
    const { outcome } = await within(runPlan(registry, 'meet'), 5000, 'the barrier')
    expect(outcome.status).toBe('success')
  })

  it('the time windows of the hosts overlap', async () => {
    const windows = new Map<string, [number, number]>()
    const registry = await declare(() => {
      host('web[1:3]')
      task('slow', async (ctx) => {
        const start = Date.now()
        await sleep(60)
        windows.set(ctx.host.alias, [start, Date.now()])
      })
    })
    await runPlan(registry, 'slow')
    const starts = [...windows.values()].map(([s]) => s)
    const ends = [...windows.values()].map(([, e]) => e)
    // Every host started before any host ended.
    expect(Math.max(...starts)).toBeLessThan(Math.min(...ends))
  })

  it('limit bounds how many hosts are in flight', async () => {
    let inFlight = 0
    let most = 0
    const registry = await declare(() => {
      host('web[1:6]')
      task('limited', async () => {
        inFlight += 1
        most = Math.max(most, inFlight)
        await sleep(15)
        inFlight -= 1
      }, { limit: 2 })
    })
    const { outcome } = await runPlan(registry, 'limited')
    expect(outcome.status).toBe('success')
    expect(most).toBe(2)
  })

  it('--limit bounds concurrency as well', async () => {
    let inFlight = 0
    let most = 0
    const registry = await declare(() => {
      host('web[1:5]')
      task('t', async () => {
        inFlight += 1
        most = Math.max(most, inFlight)
        await sleep(10)
        inFlight -= 1
      })
    })
    await runPlan(registry, 't', { limit: 1 })
    expect(most).toBe(1)
  })

  it('without a limit every host is in flight at once', async () => {
    let inFlight = 0
    let most = 0
    const registry = await declare(() => {
      host('web[1:5]')
      task('t', async () => {
        inFlight += 1
        most = Math.max(most, inFlight)
        await sleep(10)
        inFlight -= 1
      })
    })
    await runPlan(registry, 't')
    expect(most).toBe(5)
  })
})

describe('barriers', () => {
  it('no host starts step 2 before every host finished step 1', async () => {
    const log: Array<[string, string, number]> = []
    const registry = await declare(() => {
      host('fast')
      host('slow')
      task('first', async (ctx) => {
        await sleep(ctx.host.alias === 'slow' ? 80 : 1)
        log.push(['first-end', ctx.host.alias, Date.now()])
      })
      task('second', async (ctx) => {
        log.push(['second-start', ctx.host.alias, Date.now()])
      })
      task('both', ['first', 'second'])
    })
    await runPlan(registry, 'both')
    const order = log.map(([what, alias]) => `${what}:${alias}`)
    expect(order.slice(0, 2).sort()).toEqual(['first-end:fast', 'first-end:slow'])
    expect(order.slice(2).sort()).toEqual(['second-start:fast', 'second-start:slow'])
  })
})

describe('once', () => {
  it('runs on one host only, the first selected', async () => {
    const seen: string[] = []
    const registry = await declare(() => {
      host('web[1:3]')
      task('migrate', async (ctx) => void seen.push(ctx.host.alias), { once: true })
    })
    await runPlan(registry, 'migrate', { selectors: ['web2', 'web3'] })
    expect(seen).toEqual(['web2'])
  })

  it('steps without hosts are skipped (select matching nothing)', async () => {
    const seen: string[] = []
    const registry = await declare(() => {
      host('web1', { labels: { role: 'web' } })
      task('workers-only', async (ctx) => void seen.push(ctx.host.alias), { select: 'role=worker' })
      task('g', ['workers-only'])
    })
    const { outcome, events } = await runPlan(registry, 'g')
    expect(outcome.status).toBe('success')
    expect(seen).toEqual([])
    expect(ofType(events, 'step:start')).toEqual([])
  })
})
