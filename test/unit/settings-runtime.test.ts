/**
 * Settings during a run: ctx.set() checks like set() at load time, lazy and
 * templated values are checked when they resolve, a missing known key
 * suggests no other name, and `dep config` shows descriptions.
 */
import { describe, expect, it } from 'vitest'
import { task, use } from '../../src/dsl/tasks.js'
import { declareSetting, secret, set } from '../../src/dsl/settings.js'
import { host, localhost } from '../../src/dsl/hosts.js'
import { configLines } from '../../src/cli/commands/inspect.js'
import { ConfigError } from '../../src/model/errors.js'
import { HostConfig } from '../../src/model/config.js'
import { SettingsTable } from '../../src/model/settings.js'
import { laravel } from '../../recipes/laravel.js'
import { declare, ofType, runPlan } from './helpers.js'

/** Runs `body` as a task on one host and returns what it threw (or undefined). */
async function inTask(setup: () => void, body: (ctx: import('../../src/index.js').TaskContext) => Promise<unknown> | unknown): Promise<unknown> {
  let thrown: unknown
  const registry = await declare(() => {
    setup()
    host('web1')
    task('t', async (ctx) => {
      try {
        await body(ctx)
      } catch (error) {
        thrown = error
      }
    })
  })
  await runPlan(registry, 't')
  return thrown
}

describe('ctx.set() at run time', () => {
  it('refuses an unknown key with the nearest known one', async () => {
    const error = (await inTask(() => {}, (ctx) => ctx.set('keep_release' as never, 3 as never))) as ConfigError
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.message).toBe(`Unknown setting "keep_release" (set('keep_release', …) on web1).`)
    expect(error.hint).toMatch(/^Did you mean "keep_releases"\?/)
  })

  it('refuses a value of the wrong type, and set() inside a task does the same', async () => {
    const error = (await inTask(() => {}, (ctx) => ctx.set('deploy_path', ''))) as ConfigError
    expect(error.message).toBe(`deploy_path must be a non-empty absolute path, got "" (set('deploy_path', …) on web1).`)
    const viaDsl = (await inTask(() => {}, () => set('keep_releases', 'five' as never))) as ConfigError
    expect(viaDsl.message).toMatch(/^keep_releases must be a positive integer, got "five"/)
  })

  it('ctx.add() checks the merged value', async () => {
    const error = (await inTask(() => set('shared_dirs', ['a']), (ctx) => ctx.add('shared_dirs', [3]))) as ConfigError
    expect(error.message).toMatch(/^shared_dirs must be a list of strings, got \["a",3\]/)
  })

  it('accepts a declared key of its type; the value is seen by later reads', async () => {
    const seen: unknown[] = []
    const registry = await declare(() => {
      declareSetting('build_id', { type: 'string' })
      host('web1')
      task('t', async (ctx) => {
        ctx.set('build_id', '42')
        ctx.set('keep_releases', 2)
        seen.push(await ctx.get('build_id'), await ctx.get('keep_releases'))
      })
    })
    const { outcome } = await runPlan(registry, 't')
    expect(outcome.exitCode).toBe(0)
    expect(seen).toEqual(['42', 2])
  })

  it("the Laravel recipe declares laravel_version, which deploy:vendors sets with ctx.set()", async () => {
    const registry = await declare(() => use(laravel))
    expect(registry.settings.get('laravel_version')?.type).toBe('string')
    expect(registry.settings.get('php_fpm_reload_command')?.type).toBe('string')
    expect(registry.settings.get('copy_vendors')?.type).toBe('boolean')
  })
})

describe('lazy and templated values are checked when they resolve', () => {
  it('a lazy value of the wrong type fails at its first get()', async () => {
    const error = (await inTask(() => set('keep_releases', async () => 'five' as never), (ctx) => ctx.get('keep_releases'))) as ConfigError
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.message).toBe('keep_releases must be a positive integer, got "five" (computed by its function for host web1).')
  })

  it('a template that resolves to a relative path fails; one that resolves to an absolute path passes', async () => {
    const bad = (await inTask(() => {
      declareSetting('base', { type: 'string' })
      set('base' as never, 'srv' as never)
      set('deploy_path', '{{base}}/app')
    }, (ctx) => ctx.get('deploy_path'))) as ConfigError
    expect(bad.message).toBe('deploy_path must be a non-empty absolute path, got "srv/app" (from "{{base}}/app" for host web1).')
    const good = await inTask(() => {
      declareSetting('base', { type: 'string' })
      set('base' as never, '/srv' as never)
      set('deploy_path', '{{base}}/app')
    }, async (ctx) => expect(await ctx.get('deploy_path')).toBe('/srv/app'))
    expect(good).toBeUndefined()
  })

  it('a wrong value reached through a template names the key it came from', async () => {
    const error = (await inTask(() => {
      set('release_name', async () => 7 as never)
      set('deploy_path', '/srv')
      set('release_path', '{{deploy_path}}/releases/{{release_name}}')
    }, (ctx) => ctx.get('release_path'))) as ConfigError
    expect(error.message).toMatch(/^release_name must be a string, got 7 \(computed by its function for host web1\)\.$/)
  })

  it('a secret resolved to the wrong type is masked', async () => {
    const error = (await inTask(() => {
      declareSetting('db_port', { type: 'positive-integer', secret: true })
      set('db_port' as never, (async () => 'hunter2-port') as never)
    }, (ctx) => ctx.get('db_port'))) as ConfigError
    expect(error.message).toBe('db_port must be a positive integer, got *** (computed by its function for host web1).')
  })
})

describe('reading a missing setting', () => {
  const config = (global: Record<string, unknown>) =>
    new HostConfig('web1', { overrides: new Map(), runtime: new Map(), host: new Map(), global: new Map(Object.entries(global)) }, () => {}, new Set(), {
      settings: new SettingsTable(),
    })

  it('deploy_path: says where to set it, and does not suggest upload_path', async () => {
    const error = (await config({ upload_path: '/build', release_path: '/x' }).get('deploy_path').catch((e: unknown) => e)) as ConfigError
    expect(error.message).toBe('Missing setting "deploy_path" for host web1.')
    expect(error.hint).toBe("Set deployPath in its host() options, or set('deploy_path', …), or give -o deploy_path=/absolute/path.")
    expect(error.hint).not.toContain('upload_path')
  })

  it('another known key: says where to set it, no other name', async () => {
    const error = (await config({ release_path: '/x' }).get('repository').catch((e: unknown) => e)) as ConfigError
    expect(error.hint).toBe("Set it with set('repository', …), in the host's config, or with -o repository=….")
  })

  it('an unknown key: suggests close known names', async () => {
    const error = (await config({}).get('keep_release').catch((e: unknown) => e)) as ConfigError
    expect(error.hint).toContain('Did you mean "keep_releases"?')
  })
})

describe('dep config', () => {
  it('shows each setting with its description, secrets masked', async () => {
    const registry = await declare(() => {
      declareSetting('slack_webhook', { type: 'string', description: 'Where deploys are announced' })
      set('slack_webhook', 'https://hooks.example.test/x')
      set('keep_releases', 3)
      secret('db_password' as never, 'hunter2-secret' as never)
      localhost('local', { deployPath: '/srv/app' })
    })
    const lines = await configLines(registry, [...registry.hosts.values()], new Map([['branch', 'main']]))
    expect(lines).toContain('  keep_releases: 3  # How many good releases to keep on each host.')
    expect(lines).toContain('  slack_webhook: "https://hooks.example.test/x"  # Where deploys are announced')
    expect(lines).toContain('  deploy_path: "/srv/app"  # Where releases live on the host, e.g. /var/www/site.')
    expect(lines).toContain('  db_password: ***')
    expect(lines.join('\n')).not.toContain('hunter2-secret')
  })
})

describe('a run with valid settings is unchanged', () => {
  it('runs to the end', async () => {
    const registry = await declare(() => {
      set('keep_releases', 3)
      host('web1', { deployPath: '/srv/app' })
      task('t', async (ctx) => ctx.info(`${await ctx.get('deploy_path')} ${await ctx.get('keep_releases')}`))
    })
    const { outcome, events } = await runPlan(registry, 't')
    expect(outcome.exitCode).toBe(0)
    expect(ofType(events, 'log')[0].message).toBe('/srv/app 3')
  })
})
