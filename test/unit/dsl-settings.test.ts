/** set/add/secret/setDefault/get/has at load time, through the public DSL. */
import { describe, expect, it } from 'vitest'
import { task } from '../../src/dsl/tasks.js'
import { add, secret, set, setDefault } from '../../src/dsl/settings.js'
import { host } from '../../src/dsl/hosts.js'
import { get, has } from '../../src/dsl/runtime.js'
import { mergeValues } from '../../src/model/config.js'
import { DeployError } from '../../src/model/errors.js'
import { declare, ofType, runPlan } from './helpers.js'

describe('at load time', () => {
  it('set() writes global values; get() reads them templated; has() sees defaults too', async () => {
    let got: unknown
    let hasIt: boolean[] = []
    const registry = await declare(async () => {
      set('deploy_path', '/srv/app')
      setDefault('release_path', '{{deploy_path}}/releases/x')
      got = await get('release_path')
      hasIt = [has('deploy_path'), has('release_path'), has('branch')]
    })
    expect(registry.config.get('deploy_path')).toBe('/srv/app')
    expect(got).toBe('/srv/app/releases/x')
    expect(hasIt).toEqual([true, true, false])
  })

  it('get() of a missing key outside a task is a ConfigError', async () => {
    await expect(declare(async () => void (await get('repository')))).rejects.toThrow(/Missing setting "repository" for host \(global\)/)
  })

  it('add() appends to arrays without duplicates and merges objects; a default is the starting point', async () => {
    const registry = await declare(() => {
      setDefault('shared_dirs', ['storage'])
      add('shared_dirs', ['storage', 'uploads'])
      add('writable_dirs', ['cache'])
      set('x' as never, { a: 1 } as never)
      add('x' as never, { b: 2 } as never)
    })
    expect(registry.config.get('shared_dirs')).toEqual(['storage', 'uploads'])
    expect(registry.config.get('writable_dirs')).toEqual(['cache'])
    expect(registry.config.get('x')).toEqual({ a: 1, b: 2 })
    expect(registry.defaults.get('shared_dirs')).toEqual(['storage'])
  })

  it('add() to a lazy value or a value of another shape is an error', async () => {
    await expect(declare(() => {
      set('shared_dirs', () => ['a'])
      add('shared_dirs', ['b'])
    })).rejects.toThrow(/computed lazily/)
    await expect(declare(() => {
      set('keep_releases', 3)
      add('keep_releases' as never, ['b'] as never)
    })).rejects.toThrow(/not an array/)
    expect(() => mergeValues('k', [1], { a: 1 })).toThrow(DeployError)
  })

  it('secret() registers the key and a literal value', async () => {
    const registry = await declare(() => {
      secret('db_password' as never, 'lit-secret' as never)
      secret('token' as never, (() => 'lazy') as never)
    })
    expect([...registry.secretKeys]).toEqual(['db_password', 'token'])
    expect([...registry.secretValues]).toEqual(['lit-secret'])
  })

  it('set() inside a task sets the value for that host only', async () => {
    const registry = await declare(() => {
      set('branch', 'main')
      host('web[1:2]')
      task('one', async (ctx) => {
        if (ctx.host.alias === 'web1') set('branch', 'changed')
      })
      task('two', async (ctx) => ctx.info(`${ctx.host.alias}=${await ctx.get('branch')}`))
      task('both', ['one', 'two'])
    })
    const { events } = await runPlan(registry, 'both')
    expect(ofType(events, 'log').map((e) => e.message).sort()).toEqual(['web1=changed', 'web2=main'])
    expect(registry.config.get('branch')).toBe('main')
  })

  it('ctx.add() appends for this host', async () => {
    const registry = await declare(() => {
      set('shared_dirs', ['a'])
      host('h')
      task('t', async (ctx) => {
        await ctx.add('shared_dirs', ['b'])
        ctx.info(JSON.stringify(await ctx.get('shared_dirs')))
      })
    })
    const { events } = await runPlan(registry, 't')
    expect(ofType(events, 'log')[0].message).toBe('["a","b"]')
  })
})
