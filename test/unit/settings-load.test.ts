/**
 * Settings are checked when the deployfile has loaded: unknown keys (with
 * "did you mean"), literal values of the wrong type, in set(), host config
 * and host config; declareSetting() from recipes; the examples still load.
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { add, declareSetting, secret, set, setDefault } from '../../src/dsl/settings.js'
import { host, localhost } from '../../src/dsl/hosts.js'
import { loadDeployfile } from '../../src/config/load.js'
import { parseOverrides } from '../../src/model/config.js'
import { ConfigError } from '../../src/model/errors.js'
import { declare } from './helpers.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const sandbox = realpathSync(mkdtempSync(join(tmpdir(), 'df-settings-')))
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

function project(name: string, files: Record<string, string>): string {
  const dir = join(sandbox, name)
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  return join(dir, 'deployfile.ts')
}

async function loadError(file: string): Promise<ConfigError> {
  const error = await loadDeployfile(file).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(ConfigError)
  expect((error as ConfigError).exitCode).toBe(2)
  return error as ConfigError
}

/** Declares through the DSL, then runs the end-of-load check, returning its error (or undefined). */
async function checked(fn: () => void): Promise<ConfigError | undefined> {
  const registry = await declare(fn)
  try {
    registry.checkSettings()
    return undefined
  } catch (error) {
    return error as ConfigError
  }
}

describe('loading a deployfile checks its settings', () => {
  it("set('keep_release', 3) is an error naming the line and the nearest key", async () => {
    const file = project('typo', {
      'deployfile.ts': `import { localhost, set } from 'deployfile'
localhost('local', { deployPath: '/srv/app' })
set('keep_release', 3)
`,
    })
    const error = await loadError(file)
    expect(error.message).toMatch(new RegExp(`^Unknown setting "keep_release" \\(set\\('keep_release', …\\) at ${file.replace(/[.]/g, '\\.')}:3\\)\\.$`))
    expect(error.hint).toMatch(/^Did you mean "keep_releases"\?/)
    expect(error.hint).toContain("declareSetting('keep_release', { type: 'number' })")
  })

  it('a literal value of the wrong type is refused at load, with its line', async () => {
    const file = project('wrong-type', {
      'deployfile.ts': `import { localhost, set } from 'deployfile'
localhost('local')
set('deploy_path', '/srv/app')
set('keep_releases', 'five' as never)
`,
    })
    const error = await loadError(file)
    expect(error.message).toMatch(new RegExp(`^keep_releases must be a positive integer, got "five" \\(set\\('keep_releases', …\\) at ${file.replace(/[.]/g, '\\.')}:4\\)\\.$`))
  })

  it('a key may be set before the use(recipe) that declares it (checked at the end of loading)', async () => {
    const file = project('set-before-use', {
      'recipe.ts': `import { declareSetting, setDefault, type Recipe } from 'deployfile'
export const service: Recipe = () => {
  declareSetting('service_name', { type: 'string', description: 'The systemd unit' })
  declareSetting('workers', { type: 'positive-integer', default: 2, description: 'Workers per host' })
  setDefault('npm_ci_options', ['--omit=dev'])
}
`,
      'deployfile.ts': `import { host, set, use } from 'deployfile'
import { service } from './recipe'
set('service_name', 'acme-api')
set('npm_ci_options', ['--omit=dev', '--no-audit'])
host('web1', { deployPath: '/srv/api', config: { workers: 4 } })
use(service)
`,
    })
    const { registry } = await loadDeployfile(file)
    expect(registry.config.get('service_name')).toBe('acme-api')
    expect(registry.settings.get('service_name')).toMatchObject({ type: 'string', description: 'The systemd unit', origin: 'declared' })
    expect(registry.settings.get('npm_ci_options')).toMatchObject({ type: 'string[]', origin: 'inferred' })
    expect(registry.defaults.get('workers')).toBe(2)
    expect(registry.hosts.get('web1')!.config.get('workers')).toBe(4)
    // -o is parsed by the type the recipe declared.
    expect(parseOverrides(registry.settings, ['workers=3']).get('workers')).toBe(3)
    expect(() => parseOverrides(registry.settings, ['workers=many'])).toThrow('workers must be a positive integer, got "many" (-o workers=many).')
  })

  it('a recipe-declared type is enforced on values set before use()', async () => {
    const file = project('set-before-use-wrong', {
      'recipe.ts': `import { declareSetting, type Recipe } from 'deployfile'
export const service: Recipe = () => {
  declareSetting('workers', { type: 'positive-integer' })
}
`,
      'deployfile.ts': `import { set, use } from 'deployfile'
import { service } from './recipe'
set('workers' as never, 'four' as never)
use(service)
`,
    })
    const error = await loadError(file)
    expect(error.message).toMatch(/^workers must be a positive integer, got "four" \(set\('workers', …\) at .*deployfile\.ts:3\)\.$/)
  })

  it('the examples and the root deployfile load (their own keys are declared)', async () => {
    for (const file of ['deployfile.ts', 'examples/custom-tasks/deployfile.ts', 'examples/laravel/deployfile.ts', 'examples/multi-host/deployfile.ts']) {
      const { registry } = await loadDeployfile(join(ROOT, file))
      expect(registry.hosts.size, file).toBeGreaterThan(0)
    }
  })
})

describe('the check at the end of loading', () => {
  it('host config keys: unknown, and of the wrong type', async () => {
    const unknown = await checked(() => host('web1', { config: { keep_release: 2 } as never }))
    expect(unknown?.message).toMatch(/^Unknown setting "keep_release" \(host\('web1', …\) at .*settings-load\.test\.ts:\d+\)\.$/)
    expect(unknown?.hint).toMatch(/^Did you mean "keep_releases"\?/)

    const ranged = await checked(() => host('web[1:2]', { config: { brnch: 'main' } as never }))
    expect(ranged?.message).toMatch(/^Unknown setting "brnch" \(host\('web1', …\) at /)
    expect(ranged?.hint).toMatch(/^Did you mean "branch"\?/)

    const emptyPath = await checked(() => host('web1', { deployPath: '' }))
    expect(emptyPath?.message).toMatch(/^deploy_path must be a non-empty absolute path, got "" \(host\('web1', …\) at /)

    const local = await checked(() => localhost('l', { config: { writable_mode: 'chmd' as never } }))
    expect(local?.message).toMatch(/^writable_mode must be one of acl, chmod, chown, chgrp, skip, got "chmd" \(localhost\('l', …\) at /)
    expect(local?.hint).toContain('Did you mean "chmod"?')
  })

  it('accepts what is declared and of its type; lazy and templated values wait until they resolve', async () => {
    const error = await checked(() => {
      declareSetting('base', { type: 'absolute-path' })
      set('base' as never, '/srv' as never)
      set('deploy_path', '{{base}}/app')
      set('keep_releases', () => 3)
      set('shared_dirs', ['storage'])
      host('web1', { config: { branch: 'main', healthcheck_url: '', port: 2222 } })
    })
    expect(error).toBeUndefined()
  })

  it('add() to an unknown key is named as add()', async () => {
    const error = await checked(() => add('extra_dirs' as never, ['a'] as never))
    expect(error?.message).toMatch(/^Unknown setting "extra_dirs" \(add\('extra_dirs', …\) at /)
  })

  it('setDefault() declares its key with the type of its value; a later set() of another type is refused', async () => {
    expect(await checked(() => {
      setDefault('workers' as never, 2 as never)
      set('workers' as never, 4 as never)
    })).toBeUndefined()
    const error = await checked(() => {
      setDefault('workers' as never, 2 as never)
      set('workers' as never, 'two' as never)
    })
    expect(error?.message).toMatch(/^workers must be a number, got "two" \(set\('workers', …\) at /)
  })

  it('setDefault() of a built-in key keeps the built-in type: a wrong default is refused', async () => {
    const error = await checked(() => setDefault('keep_releases', 'five' as never))
    expect(error?.message).toMatch(/^keep_releases must be a positive integer, got "five" \(setDefault\('keep_releases', …\) at /)
  })

  it('secret() declares its key as secret; a wrong value of a declared secret is masked in the error', async () => {
    const registry = await declare(() => {
      secret('db_password' as never, 'hunter2-secret' as never)
      declareSetting('api_pin', { type: 'positive-integer', secret: true })
    })
    expect(registry.settings.get('db_password')).toMatchObject({ type: 'string', secret: true })
    expect([...registry.secretKeys].sort()).toEqual(['api_pin', 'db_password'])
    const error = await checked(() => {
      declareSetting('api_pin', { type: 'positive-integer', secret: true })
      set('api_pin' as never, 'hunter2-pin' as never)
    })
    expect(error?.message).toMatch(/^api_pin must be a positive integer, got \*\*\* /)
    expect(error?.message).not.toContain('hunter2')
  })

  it('declareSetting() with a default is a recipe default: set() beats it in any order', async () => {
    const registry = await declare(() => {
      set('workers' as never, 5 as never)
      declareSetting('workers', { type: 'positive-integer', default: 2 })
    })
    expect(registry.defaults.get('workers')).toBe(2)
    expect(registry.config.get('workers')).toBe(5)
    registry.checkSettings()
  })

  it('declareSetting() errors surface at the call (a bad type, a clash with a built-in)', async () => {
    await expect(declare(() => declareSetting('keep_releases', { type: 'string' }))).rejects.toThrow(/already declared as a positive integer/)
    await expect(declare(() => declareSetting('x', { type: 'int' as never }))).rejects.toThrow(/type must be one of/)
  })
})
