/** Plans built through the public DSL in a fresh registry. */
import { describe, expect, it } from 'vitest'
import { after, before, fail, task } from '../../src/dsl/tasks.js'
import { host } from '../../src/dsl/hosts.js'
import { ConfigError } from '../../src/model/errors.js'
import type { Registry } from '../../src/model/registry.js'
import { buildPlan, buildTree, type Plan } from '../../src/plan/plan.js'
import { declare } from './helpers.js'

const noop = async () => {}
const names = (plan: Plan) => plan.steps.map((s) => s.task.name)
const hostsOf = (registry: Registry) => [...registry.hosts.values()]
const plan = (registry: Registry, name: string, limit?: number) => buildPlan(registry, name, hostsOf(registry), { limit })

describe('group tasks', () => {
  it('flatten in order, nested groups included', async () => {
    const registry = await declare(() => {
      host('web[1:2]')
      task('a', noop)
      task('b', noop)
      task('c', noop)
      task('inner', ['b', 'c'])
      task('outer', ['a', 'inner', 'a'])
    })
    expect(names(plan(registry, 'outer'))).toEqual(['a', 'b', 'c', 'a'])
  })

  it('every step runs on every selected host by default', async () => {
    const registry = await declare(() => {
      host('web[1:3]')
      task('x', noop)
    })
    expect(plan(registry, 'x').steps[0].hosts.map((h) => h.alias)).toEqual(['web1', 'web2', 'web3'])
  })

  it('records why a step is in the plan', async () => {
    const registry = await declare(() => {
      host('h')
      task('m', noop)
      task('hook', noop)
      task('g', ['m'])
      before('g', 'hook')
    })
    expect(plan(registry, 'g').steps.map((s) => [s.task.name, s.via])).toEqual([
      ['hook', 'before g'],
      ['m', 'in g'],
    ])
  })
})

describe('hooks', () => {
  it('before and after, named and anonymous, in declaration order', async () => {
    const registry = await declare(() => {
      host('h')
      task('main', noop)
      task('b1', noop)
      task('a1', noop)
      before('main', 'b1')
      before('main', async () => {})
      after('main', 'a1')
      after('main', async () => {})
    })
    const steps = names(plan(registry, 'main'))
    expect(steps).toHaveLength(5)
    expect(steps[0]).toBe('b1')
    expect(steps[1]).toMatch(/^before:main#\d+$/)
    expect(steps[2]).toBe('main')
    expect(steps[3]).toBe('a1')
    expect(steps[4]).toMatch(/^after:main#\d+$/)
    // Anonymous hooks are hidden tasks.
    expect(registry.getTask(steps[1]).hidden).toBe(true)
  })

  it('the same hook added twice runs once', async () => {
    const registry = await declare(() => {
      host('h')
      task('main', noop)
      task('h1', noop)
      before('main', 'h1')
      before('main', 'h1')
    })
    expect(names(plan(registry, 'main'))).toEqual(['h1', 'main'])
  })

  it('hooks on a group task run around the whole group', async () => {
    const registry = await declare(() => {
      host('h')
      task('x', noop)
      task('y', noop)
      task('g', ['x', 'y'])
      task('pre', noop)
      task('post', noop)
      before('g', 'pre')
      after('g', 'post')
    })
    expect(names(plan(registry, 'g'))).toEqual(['pre', 'x', 'y', 'post'])
  })

  it('hooks on members of a group run around the member', async () => {
    const registry = await declare(() => {
      host('h')
      task('x', noop)
      task('y', noop)
      task('g', ['x', 'y'])
      task('around-y', noop)
      before('y', 'around-y')
    })
    expect(names(plan(registry, 'g'))).toEqual(['x', 'around-y', 'y'])
  })

  it('hooks of hooks nest', async () => {
    const registry = await declare(() => {
      host('h')
      task('main', noop)
      task('hook', noop)
      task('hook-of-hook', noop)
      task('after-hook', noop)
      before('main', 'hook')
      before('hook', 'hook-of-hook')
      after('hook', 'after-hook')
    })
    expect(names(plan(registry, 'main'))).toEqual(['hook-of-hook', 'hook', 'after-hook', 'main'])
  })

  it('a hook that is a group flattens in place', async () => {
    const registry = await declare(() => {
      host('h')
      task('main', noop)
      task('p1', noop)
      task('p2', noop)
      task('prep', ['p1', 'p2'])
      before('main', 'prep')
    })
    expect(names(plan(registry, 'main'))).toEqual(['p1', 'p2', 'main'])
  })

  it('a hook naming an unknown task is an error at plan time', async () => {
    const registry = await declare(() => {
      host('h')
      task('main', noop)
      after('main', 'missing')
    })
    expect(() => plan(registry, 'main')).toThrow(/Task "missing" is not defined/)
  })
})

describe('task definitions', () => {
  it('redefining a task replaces it (hooks stay)', async () => {
    const first = async () => 'first'
    const second = async () => 'second'
    const registry = await declare(() => {
      host('h')
      task('t', first)
      task('hook', noop)
      after('t', 'hook')
      task('t', second, { once: true })
    })
    const p = plan(registry, 't')
    expect(names(p)).toEqual(['t', 'hook'])
    expect(p.steps[0].task.body).toBe(second)
    expect(p.steps[0].task.once).toBe(true)
  })

  it('a task without a name or body is a ConfigError', async () => {
    await expect(declare(() => void task('', noop))).rejects.toThrow(ConfigError)
    await expect(declare(() => void task('x', 42 as never))).rejects.toThrow(/needs a function or a list/)
  })

  it('an invalid phase is a ConfigError', async () => {
    await expect(declare(() => void task('x', noop, { phase: 'deploy' as never }))).rejects.toThrow(/phase must be one of/)
  })

  it('options describe the task (the one way to give them)', async () => {
    const registry = await declare(() => {
      task('t', noop, { description: 'd', once: true, hidden: true, limit: 2, select: 'role=web', phase: 'finish' })
      task('two', noop)
    })
    expect(registry.getTask('t')).toMatchObject({ description: 'd', once: true, hidden: true, limit: 2, select: 'role=web', phase: 'finish' })
    expect(registry.getTask('two').description).toBeUndefined()
  })
})

describe('host restrictions', () => {
  it('once runs on the first selected host only', async () => {
    const registry = await declare(() => {
      host('web[1:3]')
      task('migrate', noop, { once: true })
    })
    expect(plan(registry, 'migrate').steps[0].hosts.map((h) => h.alias)).toEqual(['web1'])
  })

  it('select restricts hosts', async () => {
    const registry = await declare(() => {
      host('web[1:2]', { labels: { role: 'web' } })
      host('worker1', { labels: { role: 'worker' } })
      task('restart', noop, { select: 'role=worker' })
      task('all', noop)
      task('g', ['restart', 'all'])
    })
    const p = plan(registry, 'g')
    expect(p.steps.map((s) => [s.task.name, s.hosts.map((h) => h.alias)])).toEqual([
      ['restart', ['worker1']],
      ['all', ['web1', 'web2', 'worker1']],
    ])
  })

  it('once after select picks the first matching host', async () => {
    const registry = await declare(() => {
      host('web1', { labels: { role: 'web' } })
      host('worker[1:2]', { labels: { role: 'worker' } })
      task('t', noop, { select: 'role=worker', once: true })
    })
    expect(plan(registry, 't').steps[0].hosts.map((h) => h.alias)).toEqual(['worker1'])
  })

  it('limit is the smaller of --limit and the task limit', async () => {
    const registry = await declare(() => {
      host('web[1:5]')
      task('limited', noop, { limit: 3 })
      task('free', noop)
      task('g', ['limited', 'free'])
    })
    const limits = (l?: number) => plan(registry, 'g', l).steps.map((s) => s.limit)
    expect(limits()).toEqual([3, undefined])
    expect(limits(2)).toEqual([2, 2])
    expect(limits(4)).toEqual([3, 4])
  })
})

describe('fail hooks', () => {
  it('become the failSteps of the top-level task', async () => {
    const registry = await declare(() => {
      host('web[1:2]')
      task('work', noop)
      task('undo1', noop)
      task('undo2', noop)
      task('undo', ['undo1', 'undo2'])
      fail('work', 'undo')
    })
    const p = plan(registry, 'work')
    expect(p.failSteps.map((s) => [s.task.name, s.hosts.length, s.via])).toEqual([
      ['undo1', 2, 'fail work'],
      ['undo2', 2, 'fail work'],
    ])
  })

  it('an anonymous fail hook works', async () => {
    const registry = await declare(() => {
      host('h')
      task('work', noop)
      fail('work', async () => {})
    })
    expect(plan(registry, 'work').failSteps[0].task.name).toMatch(/^fail:work#\d+$/)
  })

  it('only the top-level task’s fail hook counts', async () => {
    const registry = await declare(() => {
      host('h')
      task('inner', noop)
      task('outer', ['inner'])
      task('undo', noop)
      fail('inner', 'undo')
    })
    expect(plan(registry, 'outer').failSteps).toEqual([])
    expect(plan(registry, 'inner').failSteps).toHaveLength(1)
  })
})

describe('errors', () => {
  it('a cycle is an error naming the path', async () => {
    const registry = await declare(() => {
      task('a', ['b'])
      task('b', ['c'])
      task('c', ['a'])
    })
    expect(() => buildTree(registry, 'a')).toThrow(ConfigError)
    expect(() => buildTree(registry, 'a')).toThrow('Task "a" runs itself: a → b → c → a.')
  })

  it('a cycle through hooks is detected', async () => {
    const registry = await declare(() => {
      task('a', noop)
      task('b', noop)
      before('a', 'b')
      after('b', 'a')
    })
    expect(() => buildTree(registry, 'a')).toThrow(/runs itself/)
  })

  it('an unknown task is an error with did-you-mean', async () => {
    const registry = await declare(() => {
      task('deploy', noop)
      task('deploy:lock', noop)
    })
    let error: unknown
    try {
      plan(registry, 'deplyo')
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).message).toBe('Task "deplyo" is not defined.')
    expect((error as ConfigError).hint).toMatch(/Did you mean "deploy"/)
  })

  it('hidden tasks are not suggested', async () => {
    const registry = await declare(() => {
      task('secret-task', noop, { hidden: true })
    })
    expect(() => registry.getTask('secret-tas')).toThrow(ConfigError)
    try {
      registry.getTask('secret-tas')
    } catch (e) {
      expect((e as ConfigError).hint).not.toContain('secret-task')
    }
  })
})

describe('phases', () => {
  async function deployLike() {
    return declare(() => {
      host('h')
      task('prep', noop, { phase: 'prepare' })
      task('switch', noop, { phase: 'switch' })
      task('done', noop, { phase: 'finish' })
      task('deploy', ['prep', 'switch', 'done'])
      task('before-switch', noop)
      task('after-switch', noop)
      task('before-deploy', noop)
      task('after-deploy', noop)
      before('switch', 'before-switch')
      after('switch', 'after-switch')
      before('deploy', 'before-deploy')
      after('deploy', 'after-deploy')
    })
  }

  it('a hook before a switch task is prepare, after it post-switch', async () => {
    const p = plan(await deployLike(), 'deploy')
    expect(p.steps.map((s) => [s.task.name, s.phase])).toEqual([
      ['before-deploy', 'prepare'],
      ['prep', 'prepare'],
      ['before-switch', 'prepare'],
      ['switch', 'switch'],
      ['after-switch', 'post-switch'],
      ['done', 'finish'],
      ['after-deploy', 'finish'],
    ])
  })

  it('hooks of other tasks take the task’s phase', async () => {
    const registry = await declare(() => {
      host('h')
      task('cleanup', noop, { phase: 'finish' })
      task('notify', noop)
      after('cleanup', 'notify')
    })
    expect(plan(registry, 'cleanup').steps.map((s) => s.phase)).toEqual(['finish', 'finish'])
  })

  it('a hook’s own phase wins over the inherited one', async () => {
    const registry = await declare(() => {
      host('h')
      task('sw', noop, { phase: 'switch' })
      task('late', noop, { phase: 'finish' })
      after('sw', 'late')
    })
    expect(plan(registry, 'sw').steps.map((s) => s.phase)).toEqual(['switch', 'finish'])
  })

  it('group members without a phase inherit the group’s', async () => {
    const registry = await declare(() => {
      host('h')
      task('m', noop)
      task('g', ['m'], { phase: 'finish' })
    })
    expect(plan(registry, 'g').steps[0].phase).toBe('finish')
  })

  it('hooks on a group whose first member is a switch go into prepare / post-switch', async () => {
    const registry = await declare(() => {
      host('h')
      task('sw', noop, { phase: 'switch' })
      task('g', ['sw'])
      task('pre', noop)
      task('post', noop)
      before('g', 'pre')
      after('g', 'post')
    })
    expect(plan(registry, 'g').steps.map((s) => [s.task.name, s.phase])).toEqual([
      ['pre', 'prepare'],
      ['sw', 'switch'],
      ['post', 'post-switch'],
    ])
  })

  it('tasks without any phase have none', async () => {
    const registry = await declare(() => {
      host('h')
      task('plain', noop)
    })
    expect(plan(registry, 'plain').steps[0].phase).toBeUndefined()
  })
})

describe('buildTree', () => {
  it('has hooks, members and descriptions in place', async () => {
    const registry = await declare(() => {
      task('a', noop, { description: 'A', phase: 'prepare' })
      task('b', noop, { once: true })
      task('g', ['a', 'b'], { description: 'Group' })
      task('pre', noop)
      after('a', 'pre')
    })
    expect(buildTree(registry, 'g')).toEqual({
      name: 'g',
      via: undefined,
      description: 'Group',
      phase: undefined,
      once: undefined,
      children: [
        {
          name: 'a',
          via: undefined,
          description: 'A',
          phase: 'prepare',
          once: undefined,
          children: [{ name: 'pre', via: 'after a', description: undefined, phase: 'prepare', once: undefined, children: [] }],
        },
        // A member without a phase takes the one of the member before it.
        { name: 'b', via: undefined, description: undefined, phase: 'prepare', once: true, children: [] },
      ],
    })
  })
})
