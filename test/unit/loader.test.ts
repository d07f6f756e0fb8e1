/** Finding and loading deployfile.ts (cosmiconfig + jiti). */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { findDeployfile, loadDeployfile } from '../../src/config/load.js'
import { ConfigError } from '../../src/model/errors.js'
import { buildPlan } from '../../src/plan/plan.js'

const sandbox = realpathSync(mkdtempSync(join(tmpdir(), 'df-load-')))
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

function project(name: string, files: Record<string, string>): string {
  const dir = join(sandbox, name)
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  return dir
}

describe('loadDeployfile', () => {
  it('loads a TypeScript deployfile that imports a local module and deployfile', async () => {
    const dir = project('with-module', {
      'deployfile.ts': `
import { host, set, task, after } from 'deployfile'
import { registerTasks, APP } from './tasks'

set('keep_releases', 3)
host('web[1:2]', { labels: { stage: 'prod' } })
registerTasks()
after('build', 'notify')
export const name: string = APP
`,
      'tasks.ts': `
import { task } from 'deployfile'
export const APP = 'demo'
interface Typed { n: number }
const typed: Typed = { n: 1 }
export function registerTasks(): void {
  task('build', async () => {}, { description: 'Builds ' + typed.n })
  task('notify', async () => {})
}
`,
    })
    const { path, registry } = await loadDeployfile(join(dir, 'deployfile.ts'))
    expect(path).toBe(join(dir, 'deployfile.ts'))
    expect([...registry.hosts.keys()]).toEqual(['web1', 'web2'])
    expect(registry.config.get('keep_releases')).toBe(3)
    expect(registry.getTask('build').description).toBe('Builds 1')
    const plan = buildPlan(registry, 'build', [...registry.hosts.values()])
    expect(plan.steps.map((s) => s.task.name)).toEqual(['build', 'notify'])
  })

  it('runs a default-exported function as a recipe', async () => {
    const dir = project('default-export', {
      'deployfile.ts': `
import { task } from 'deployfile'
export default function () { task('from-default', async () => {}) }
`,
    })
    const { registry } = await loadDeployfile(join(dir, 'deployfile.ts'))
    expect(registry.tasks.has('from-default')).toBe(true)
  })

  it('two deployfiles in one process give two independent registries', async () => {
    const a = project('first', {
      'deployfile.ts': `import { host, task, set } from 'deployfile'
host('alpha'); set('branch', 'a'); task('only-in-a', async () => {})`,
    })
    const b = project('second', {
      'deployfile.ts': `import { host, task, set } from 'deployfile'
host('beta'); set('branch', 'b'); task('only-in-b', async () => {})`,
    })
    const first = await loadDeployfile(join(a, 'deployfile.ts'))
    const second = await loadDeployfile(join(b, 'deployfile.ts'))
    expect(first.registry).not.toBe(second.registry)
    expect([...first.registry.hosts.keys()]).toEqual(['alpha'])
    expect([...second.registry.hosts.keys()]).toEqual(['beta'])
    expect([...first.registry.tasks.keys()]).toEqual(['only-in-a'])
    expect([...second.registry.tasks.keys()]).toEqual(['only-in-b'])
    expect(first.registry.config.get('branch')).toBe('a')
    expect(second.registry.config.get('branch')).toBe('b')
  })

  it('loading the same file twice reads it afresh (no module cache)', async () => {
    const dir = project('reload', { 'deployfile.ts': `import { task } from 'deployfile'\ntask('v1', async () => {})` })
    const path = join(dir, 'deployfile.ts')
    expect([...(await loadDeployfile(path)).registry.tasks.keys()]).toEqual(['v1'])
    writeFileSync(path, `import { task } from 'deployfile'\ntask('v2', async () => {})`)
    expect([...(await loadDeployfile(path)).registry.tasks.keys()]).toEqual(['v2'])
  })

  it('a syntax error is a ConfigError naming the file (and the line)', async () => {
    const dir = project('syntax', {
      'deployfile.ts': `import { task } from 'deployfile'

task('ok', async () => {})
const broken = {
`,
    })
    const path = join(dir, 'deployfile.ts')
    const error = await loadDeployfile(path).catch((e) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.exitCode).toBe(2)
    expect(error.message).toContain(path)
    expect(error.message).toMatch(/failed to load/)
    expect(error.message).toMatch(/:\d+/)
  })

  it('a deployfile that throws at load is a ConfigError naming the file and line', async () => {
    const dir = project('throws', {
      'deployfile.ts': `import { task } from 'deployfile'
task('ok', async () => {})
throw new Error('exploded while loading')
`,
    })
    const path = join(dir, 'deployfile.ts')
    const error = await loadDeployfile(path).catch((e) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.message).toContain(path)
    expect(error.message).toContain('exploded while loading')
    expect(error.message).toContain(`${path}:3`)
    // The hint shows the line, marked.
    expect(error.hint).toMatch(/^Fix the deployfile and run again\.\n/)
    expect(error.hint).toContain(`> 3 | throw new Error('exploded while loading')`)
  })

  it('a ConfigError thrown while loading (e.g. a bad host option) passes through as is', async () => {
    const dir = project('bad-host', {
      'deployfile.ts': `import { host } from 'deployfile'
host('web1', { prot: 22 } as never)
`,
    })
    const error = await loadDeployfile(join(dir, 'deployfile.ts')).catch((e) => e)
    expect(error).toBeInstanceOf(ConfigError)
    // As is, with where it was thrown added.
    expect(error.message).toMatch(/^Unknown option "prot" for host web1\. \(at .*deployfile\.ts:2:\d+\)$/)
    expect(error.hint).toContain('Did you mean "port"')
  })

  it('a missing import is a ConfigError', async () => {
    const dir = project('missing-import', { 'deployfile.ts': `import { x } from './nope'\nconsole.log(x)\n` })
    await expect(loadDeployfile(join(dir, 'deployfile.ts'))).rejects.toThrow(ConfigError)
  })
  it("PHP Deployer's desc() and a chained host().set() each say what deployfile's one way is", async () => {
    const described = project('retired-desc', {
      'deployfile.ts': `import { desc, task } from 'deployfile'
desc('Builds')
task('build', async () => {})
`,
    })
    const error = await loadDeployfile(join(described, 'deployfile.ts')).catch((e) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.message).toContain('deployfile.ts:2')
    expect(error.hint).toMatch(/^deployfile has no desc\(\): give the description as an option, task\('name', fn, \{ description: '…' \}\)\.\n/)

    const chained = project('retired-chain', {
      'deployfile.ts': `import { host } from 'deployfile'
host('web1').set('branch', 'main')
`,
    })
    const chainError = await loadDeployfile(join(chained, 'deployfile.ts')).catch((e) => e)
    expect(chainError).toBeInstanceOf(ConfigError)
    expect(chainError.hint).toMatch(/^host\(\) and task\(\) return nothing to chain: give a host's settings as host\('web1', \{ config: \{ … \} \}\)/)
  })
})

describe('findDeployfile', () => {
  it('finds deployfile.ts searching upward from a subdirectory', async () => {
    const dir = project('upward', { 'deployfile.ts': '', 'src/deep/er/.keep': '' })
    expect(await findDeployfile(join(dir, 'src', 'deep', 'er'))).toBe(join(dir, 'deployfile.ts'))
  })

  it('prefers the nearest deployfile', async () => {
    const dir = project('nearest', { 'deployfile.ts': '', 'sub/deployfile.ts': '', 'sub/x/.keep': '' })
    expect(await findDeployfile(join(dir, 'sub', 'x'))).toBe(join(dir, 'sub', 'deployfile.ts'))
  })

  it('finds .mjs and .js deployfiles too, .ts first', async () => {
    const js = project('js-only', { 'deployfile.mjs': '' })
    expect(await findDeployfile(js)).toBe(join(js, 'deployfile.mjs'))
    const both = project('both', { 'deployfile.js': '', 'deployfile.ts': '' })
    expect(await findDeployfile(both)).toBe(join(both, 'deployfile.ts'))
  })

  it('-f names a file relative to cwd', async () => {
    const dir = project('named', { 'deploy/prod.ts': '' })
    expect(await findDeployfile(dir, 'deploy/prod.ts')).toBe(join(dir, 'deploy', 'prod.ts'))
  })

  it('-f of a missing file is a ConfigError', async () => {
    const error = await findDeployfile(sandbox, 'missing.ts').catch((e) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.message).toContain(join(sandbox, 'missing.ts'))
  })

  it('no deployfile anywhere is a ConfigError with a hint', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'df-none-'))
    try {
      const error = await findDeployfile(empty).catch((e) => e)
      expect(error).toBeInstanceOf(ConfigError)
      expect(error.message).toContain(`No deployfile found in ${empty}`)
      expect(error.hint).toMatch(/dep init/)
      expect(error.hint).toContain('deployfile.ts')
    } finally {
      rmSync(empty, { recursive: true, force: true })
    }
  })
})

describe('task names in hooks and groups are checked at load time (issue 12, item 3)', () => {
  const base = `import { before, after, fail, task } from 'deployfile'
task('build', async () => {})
task('deploy:symlink', async () => {})
`
  async function loadError(name: string, tail: string): Promise<ConfigError> {
    const dir = project(name, { 'deployfile.ts': base + tail })
    return (await loadDeployfile(join(dir, 'deployfile.ts')).catch((e: unknown) => e)) as ConfigError
  }

  it('a misspelled hook target is an error naming the call, its line, and the nearest task', async () => {
    const error = await loadError('hook-target', `before('deploy:symlnk', 'build')\n`)
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.exitCode).toBe(2)
    expect(error.message).toContain(`before('deploy:symlnk', 'build')`)
    expect(error.message).toContain('there is no task "deploy:symlnk"')
    expect(error.message).toContain(`${join(sandbox, 'hook-target', 'deployfile.ts')}:4:`)
    expect(error.hint).toMatch(/^Did you mean "deploy:symlink"/)
    expect(error.hint).toContain("> 4 | before('deploy:symlnk', 'build')")
  })

  it('a misspelled hook (the task to run) is one too, also for after() and fail()', async () => {
    expect((await loadError('hook-name', `after('build', 'biuld')\n`)).message).toContain('there is no task "biuld"')
    expect((await loadError('fail-name', `fail('build', 'rollbak')\n`)).message).toContain('there is no task "rollbak"')
    expect((await loadError('fn-hook', `after('buidl', async () => {})\n`)).message).toContain(`after('buidl', …)`)
  })

  it('a group listing an undefined task fails at load, not when run, and every bad name is listed', async () => {
    const error = await loadError('group', `task('ship', ['build', 'tset'])\nbefore('nope', 'build')\n`)
    expect(error.message).toContain(`task('ship', ['build', 'tset'])`)
    expect(error.message).toContain('there is no task "tset"')
    expect(error.message).toContain(':4:')
    expect(error.hint).toContain(`Also: before('nope', 'build') names "nope"`)
  })

  it('a hook on a task defined later in the file is fine', async () => {
    const dir = project('later', { 'deployfile.ts': `${base}after('notify-target', 'build')\ntask('notify-target', async () => {})\n` })
    await expect(loadDeployfile(join(dir, 'deployfile.ts'))).resolves.toBeDefined()
  })
})
