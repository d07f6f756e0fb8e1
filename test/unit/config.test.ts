/** HostConfig: layers, templating, lazy values, secrets; parseOverride. */
import { describe, expect, it, vi } from 'vitest'
import { HostConfig, parseOverride } from '../../src/model/config.js'
import { ConfigError } from '../../src/model/errors.js'

type Layers = { overrides?: Record<string, unknown>; runtime?: Record<string, unknown>; host?: Record<string, unknown>; global?: Record<string, unknown> }

function configFor(alias: string, layers: Layers, onSecret?: (v: string) => void, secretKeys?: string[]): HostConfig {
  const map = (o?: Record<string, unknown>) => new Map(Object.entries(o ?? {}))
  return new HostConfig(
    alias,
    { overrides: map(layers.overrides), runtime: map(layers.runtime), host: map(layers.host), global: map(layers.global) },
    onSecret,
    new Set(secretKeys ?? []),
    // What a lazy value receives (in a run: the reading task's context); here, something naming the host.
    { lazyContext: () => ({ alias }) },
  )
}

describe('templating', () => {
  it('expands {{name}} recursively through several keys', async () => {
    const config = configFor('web1', {
      global: {
        deploy_path: '/var/www/{{app}}',
        app: '{{vendor}}-site',
        vendor: 'acme',
        release_path: '{{deploy_path}}/releases/{{release_name}}',
        release_name: '7',
      },
    })
    expect(await config.get('release_path')).toBe('/var/www/acme-site/releases/7')
  })

  it('allows spaces inside the braces and keys with / . : -', async () => {
    const config = configFor('h', { global: { 'bin/php': '/usr/bin/php8.2', cmd: '{{ bin/php }} artisan' } })
    expect(await config.get('cmd')).toBe('/usr/bin/php8.2 artisan')
  })

  it('keeps \\{{x}} literal (without the backslash)', async () => {
    const config = configFor('h', { global: { x: 'X', text: 'a \\{{x}} b {{x}}' } })
    expect(await config.get('text')).toBe('a {{x}} b X')
  })

  it('templates arrays and plain objects deeply', async () => {
    const config = configFor('h', {
      global: {
        name: 'site',
        list: ['{{name}}/a', ['{{name}}/b']],
        obj: { path: '/srv/{{name}}', nested: { n: '{{name}}' }, count: 3 },
      },
    })
    expect(await config.get('list')).toEqual(['site/a', ['site/b']])
    expect(await config.get('obj')).toEqual({ path: '/srv/site', nested: { n: 'site' }, count: 3 })
  })

  it('stringifies arrays (space-joined), objects (JSON) and numbers inside templates', async () => {
    const config = configFor('h', { global: { dirs: ['a', 'b'], obj: { k: 1 }, n: 5, t: '{{dirs}}|{{obj}}|{{n}}' } })
    expect(await config.get('t')).toBe('a b|{"k":1}|5')
  })

  it('expand() applies a formatter to each value (commands quote them)', async () => {
    const config = configFor('h', { global: { dir: "my dir's" } })
    expect(await config.expand('cd {{dir}}', [], (v) => `<${v}>`)).toBe("cd <my dir's>")
  })

  it('a key that refers to itself is an error naming the chain', async () => {
    const config = configFor('h', { global: { a: 'x{{b}}', b: 'y{{c}}', c: '{{a}}' } })
    const error = (await config.get('a').catch((e: unknown) => e)) as ConfigError
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.message).toMatch(/refers to itself/)
    expect(error.message).toContain('a → b → c → a')
  })

  it('a key that refers directly to itself is an error', async () => {
    const config = configFor('h', { global: { a: '{{a}}/x' } })
    await expect(config.get('a')).rejects.toThrow(/"a" refers to itself/)
  })
})

describe('missing keys', () => {
  it('is a ConfigError naming the key and the host', async () => {
    const config = configFor('web1', { global: {} })
    const error = (await config.get('deploy_path').catch((e: unknown) => e)) as ConfigError
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.message).toContain('"deploy_path"')
    expect(error.message).toContain('web1')
    expect(error.exitCode).toBe(2)
  })

  it('suggests near names', async () => {
    const config = configFor('web1', { global: { deploy_path: '/x', keep_releases: 3 } })
    const error = (await config.get('deploy_pth').catch((e: unknown) => e)) as ConfigError
    expect(error.hint).toMatch(/Did you mean "deploy_path"/)
  })

  it('a missing key inside a template names that key', async () => {
    const config = configFor('web1', { global: { release_path: '{{deploy_path}}/releases' } })
    await expect(config.get('release_path')).rejects.toThrow(/Missing setting "deploy_path"/)
  })

  it('a fallback is returned instead of the error', async () => {
    const config = configFor('web1', { global: {} })
    expect(await config.get('branch', 'main')).toBe('main')
  })
})

describe('lazy values', () => {
  it('are computed once per host and cached', async () => {
    const compute = vi.fn(async (host: { alias: string }) => `${host.alias}-value`)
    const config = configFor('web1', { global: { lazy: compute, uses: '{{lazy}}/x' } })
    expect(await config.get('lazy')).toBe('web1-value')
    expect(await config.get('lazy')).toBe('web1-value')
    expect(await config.get('uses')).toBe('web1-value/x')
    expect(compute).toHaveBeenCalledTimes(1)
  })

  it('concurrent reads share one computation', async () => {
    let calls = 0
    const config = configFor('web1', {
      global: {
        slow: async () => {
          calls += 1
          await new Promise((r) => setTimeout(r, 20))
          return 'v'
        },
      },
    })
    const values = await Promise.all([config.get('slow'), config.get('slow'), config.get('slow')])
    expect(values).toEqual(['v', 'v', 'v'])
    expect(calls).toBe(1)
  })

  it('different hosts compute separately, each with its own context', async () => {
    const compute = vi.fn((host: { alias: string }) => `for-${host.alias}`)
    const global = new Map<string, unknown>([['lazy', compute]])
    const a = new HostConfig('a', { overrides: new Map(), runtime: new Map(), host: new Map(), global }, undefined, undefined, { lazyContext: () => ({ alias: 'a' }) })
    const b = new HostConfig('b', { overrides: new Map(), runtime: new Map(), host: new Map(), global }, undefined, undefined, { lazyContext: () => ({ alias: 'b' }) })
    expect(await a.get('lazy')).toBe('for-a')
    expect(await b.get('lazy')).toBe('for-b')
    expect(await a.get('lazy')).toBe('for-a')
    expect(compute).toHaveBeenCalledTimes(2)
  })

  it('the result of a lazy value is templated', async () => {
    const config = configFor('h', { global: { base: '/srv', lazy: () => '{{base}}/app' } })
    expect(await config.get('lazy')).toBe('/srv/app')
  })

  it('a failed lazy value is not cached: the next read tries again', async () => {
    let calls = 0
    const config = configFor('h', {
      global: {
        flaky: () => {
          calls += 1
          if (calls === 1) throw new Error('first try fails')
          return 'ok'
        },
      },
    })
    await expect(config.get('flaky')).rejects.toThrow('first try fails')
    expect(await config.get('flaky')).toBe('ok')
    expect(calls).toBe(2)
  })

  it('where nothing gives them a context (no task of the host runs), they are refused, naming the key', async () => {
    const compute = vi.fn(() => 'never')
    const config = new HostConfig('h', { overrides: new Map(), runtime: new Map(), host: new Map(), global: new Map([['lazy', compute]]) })
    const error = await config.get('lazy').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).message).toBe(`Setting "lazy" is computed by a function, which runs inside a task (it receives the task's context): it cannot be read outside one.`)
    expect((error as ConfigError).hint).toBe(`Read it inside a task (ctx.get('lazy')), or give it a plain value.`)
    expect(compute).not.toHaveBeenCalled()
  })

  it('set() replaces the cached value', async () => {
    const config = configFor('h', { global: { k: () => 'computed' } })
    expect(await config.get('k')).toBe('computed')
    config.set('k', 'runtime')
    expect(await config.get('k')).toBe('runtime')
  })
})

describe('layers', () => {
  it('host beats global, overrides beat both, runtime sits between overrides and host', async () => {
    const config = configFor('h', {
      overrides: { a: 'override' },
      runtime: { b: 'runtime' },
      host: { a: 'host', b: 'host', c: 'host' },
      global: { a: 'global', b: 'global', c: 'global', d: 'global' },
    })
    expect(await config.get('a')).toBe('override')
    expect(await config.get('b')).toBe('runtime')
    expect(await config.get('c')).toBe('host')
    expect(await config.get('d')).toBe('global')
  })

  it('recipe defaults sit below global values', async () => {
    const map = (o: Record<string, unknown>) => new Map(Object.entries(o))
    const config = new HostConfig('h', {
      overrides: map({}),
      runtime: map({}),
      host: map({}),
      global: map({ a: 'global' }),
      defaults: map({ a: 'default', b: 'default', path: '{{a}}/x' }),
    })
    expect(await config.get('a')).toBe('global')
    expect(await config.get('b')).toBe('default')
    expect(await config.get('path')).toBe('global/x')
    expect(config.keys()).toEqual(['a', 'b', 'path'])
  })

  it('a template in a global value sees the host value of what it refers to', async () => {
    const config = configFor('h', { host: { stage: 'prod' }, global: { stage: 'dev', path: '/srv/{{stage}}' } })
    expect(await config.get('path')).toBe('/srv/prod')
  })

  it('keys() lists every layer once, sorted', () => {
    const config = configFor('h', { overrides: { z: 1 }, host: { a: 1, m: 1 }, global: { m: 2, b: 3 } })
    expect(config.keys()).toEqual(['a', 'b', 'm', 'z'])
  })

  it('has() sees every layer', () => {
    const config = configFor('h', { overrides: { o: 1 }, host: { h: 1 }, global: { g: 1 } })
    expect(['o', 'h', 'g', 'x'].map((k) => config.has(k))).toEqual([true, true, true, false])
  })
})

describe('secrets', () => {
  it('reports the resolved value of a secret key through onSecret, once', async () => {
    const seen: string[] = []
    const config = configFor('h', { global: { user: 'app', db_password: 'pw-{{user}}-42' } }, (v) => seen.push(v), ['db_password'])
    expect(await config.get('db_password')).toBe('pw-app-42')
    await config.get('db_password')
    expect(seen).toEqual(['pw-app-42'])
    expect(config.isSecret('db_password')).toBe(true)
    expect(config.isSecret('user')).toBe(false)
  })

  it('reports every string inside an array or object secret', async () => {
    const seen: string[] = []
    const config = configFor('h', { global: { keys: ['k1-aaa', { inner: 'k2-bbb' }] } }, (v) => seen.push(v), ['keys'])
    await config.get('keys')
    expect(seen.sort()).toEqual(['k1-aaa', 'k2-bbb'])
  })

  it('reports a lazy secret once computed', async () => {
    const seen: string[] = []
    const config = configFor('h', { global: { token: () => 'lazy-token' } }, (v) => seen.push(v), ['token'])
    expect(seen).toEqual([])
    await config.get('token')
    expect(seen).toEqual(['lazy-token'])
  })

  it('does not report values of ordinary keys', async () => {
    const seen: string[] = []
    const config = configFor('h', { global: { plain: 'visible' } }, (v) => seen.push(v), ['other'])
    await config.get('plain')
    expect(seen).toEqual([])
  })
})

describe('parseOverride', () => {
  it.each([
    ['branch=main', ['branch', 'main']],
    ['keep_releases=3', ['keep_releases', 3]],
    ['ratio=-1.5', ['ratio', -1.5]],
    ['force=true', ['force', true]],
    ['force=false', ['force', false]],
    ['x=null', ['x', null]],
    ['dirs=["a","b"]', ['dirs', ['a', 'b']]],
    ['obj={"k":1}', ['obj', { k: 1 }]],
    ['url=https://x.test/?a=b', ['url', 'https://x.test/?a=b']],
    ['empty=', ['empty', '']],
    ['bad=[not json', ['bad', '[not json']],
    ['bad2=[a, b]', ['bad2', '[a, b]']],
    ['version=1.2.3', ['version', '1.2.3']],
    [' spaced = v ', ['spaced', ' v ']],
  ])('%s', (text, expected) => {
    expect(parseOverride(text)).toEqual(expected)
  })

  it.each(['novalue', '=value', ''])('rejects %j', (text) => {
    expect(() => parseOverride(text)).toThrow(ConfigError)
    expect(() => parseOverride(text)).toThrow(/key=value/)
  })
})

describe('missing-setting hints (issue 12, item 14)', () => {
  it('a missing deploy_path does not suggest upload_path (a different word, not a typo)', async () => {
    const config = configFor('web1', { global: { upload_path: '/src', keep_releases: 3 } })
    const error = (await config.get('deploy_path').catch((e: unknown) => e)) as ConfigError
    expect(error.message).toContain('Missing setting "deploy_path"')
    expect(error.hint).not.toContain('upload_path')
    expect(error.hint).not.toContain('Did you mean')
  })
})
