/**
 * Each mistake gets one readable message naming the cause (file and line
 * when there is one) and the fix, from the built `dep`; with --json the same
 * error is one JSON line on stdout and nothing else.
 */
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, dep, writeDeployfile } from '../support/dep.js'

const sandbox = realpathSync(mkdtempSync(path.join(tmpdir(), 'df-errors-')))
const projects: Record<string, string> = {}

const FILES: Record<string, string> = {
  syntax: `import { task } from 'deployfile'

task('x', async () => {
  const settings = {
})
`,
  'undefined-call': `import { localhost } from 'deployfile'
localhost('local')

notify('deploy starting')
`,
  'type-error': `import { localhost } from 'deployfile'
localhost('local')
const hooks: any = {}
hooks.slack.post('hi')
`,
  throws: `import { localhost, run, task } from 'deployfile'
localhost('local', { labels: { stage: 'demo', role: 'web' } })

task('migrate', async () => {
  await run\`true\`
  throw new Error('the migration table is missing')
}, { description: 'Migrates' })
`,
  'no-code': `import { localhost, use } from 'deployfile'
import { common } from 'deployfile/recipes/common'
use(common)
localhost('local', { deployPath: DEPLOY_PATH })
`,
  'bad-option': `import { host } from 'deployfile'
host('web1', { prot: 22 } as never)
`,
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsup\` first.`)
  for (const [name, text] of Object.entries(FILES)) {
    projects[name] = path.join(sandbox, name)
    await writeDeployfile(projects[name], text.replace('DEPLOY_PATH', JSON.stringify(path.join(sandbox, 'no-code-target'))))
  }
})
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

const file = (name: string) => path.join(projects[name], 'deployfile.ts')

describe('errors before anything runs', () => {
  it('a syntax error: file, line and column, and the line shown', async () => {
    const r = await dep(['list'], { cwd: projects.syntax })
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    const lines = r.stderr.trimEnd().split('\n')
    expect(lines[0]).toMatch(new RegExp(`^✖ The deployfile .* failed to load: syntax error at ${file('syntax')}:5:\\d+: `))
    expect(lines[1]).toBe('  → Fix the deployfile and run again.')
    expect(r.stderr).toContain('    > 5 | })')
    expect(r.stderr).toMatch(/\| +\^/)
  })

  it('calling something undefined at load: file and line, and a hint about imports', async () => {
    const r = await dep(['list'], { cwd: projects['undefined-call'] })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`failed to load, at ${file('undefined-call')}:4:1: ReferenceError: notify is not defined`)
    expect(r.stderr).toContain(`Is "notify" imported (import { notify } from 'deployfile') and spelled right?`)
    expect(r.stderr).toContain("    > 4 | notify('deploy starting')")
  })

  it('a type error at load: file, line and column', async () => {
    const r = await dep(['list'], { cwd: projects['type-error'] })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(new RegExp(`failed to load, at ${file('type-error')}:4:\\d+: TypeError: Cannot read properties of undefined \\(reading 'post'\\)`))
    expect(r.stderr).toContain("    > 4 | hooks.slack.post('hi')")
  })

  it('a bad host option: the nearest name and where it was written', async () => {
    const r = await dep(['list'], { cwd: projects['bad-option'] })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`Unknown option "prot" for host web1. (at ${file('bad-option')}:2:`)
    expect(r.stderr).toContain('Did you mean "port"')
  })

  it('an unknown task or host: the nearest names', async () => {
    const task = await dep(['migarte'], { cwd: projects.throws })
    expect(task.code).toBe(2)
    expect(task.stderr.trimEnd()).toBe('✖ Task "migarte" is not defined.\n  → Did you mean "migrate"?')
    const host = await dep(['migrate', 'locl'], { cwd: projects.throws })
    expect(host.code).toBe(2)
    expect(host.stderr.trimEnd()).toBe('✖ Unknown host "locl".\n  → Did you mean "local"?')
  })

  it('a selector that matches no host: the hosts with their labels, and how to write one', async () => {
    const r = await dep(['migrate', 'tier=gold'], { cwd: projects.throws })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('✖ No host matches the selector "tier=gold".')
    expect(r.stderr).toContain('Select by alias, key=value, key!=value, a|b')
    expect(r.stderr).toContain('local (stage=demo, role=web)')
    const label = await dep(['migrate', 'role=wbe'], { cwd: projects.throws })
    expect(label.stderr).toContain('Did you mean "role=web"')
  })

  it('--json: the error is one JSON line on stdout, the prose on stderr', async () => {
    for (const [cwd, args] of [
      [projects.syntax, ['list', '--json']],
      [projects.throws, ['migarte', '--json']],
      [projects.throws, ['migrate', 'stage=prod', '--json']],
      [projects.throws, ['migrate', '--no-such-flag', '--json']],
    ] as const) {
      const r = await dep([...args], { cwd })
      expect(r.code).toBe(2)
      const lines = r.stdout.trimEnd().split('\n')
      expect(lines, r.stdout).toHaveLength(1)
      const event = JSON.parse(lines[0])
      expect(event).toMatchObject({ type: 'error', exitCode: 2, error: { message: expect.any(String) } })
      expect(r.stderr.length).toBeGreaterThan(0)
    }
  })
})

describe('errors while running', () => {
  it('a task that throws: the task, the host, and the file and line that threw', async () => {
    const r = await dep(['migrate'], { cwd: projects.throws })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('✖ the migration table is missing')
    expect(r.stderr).toMatch(/task: +migrate/)
    expect(r.stderr).toMatch(/host: +local/)
    expect(r.stderr).toContain(`at:      ${file('throws')}:6:9`)
    expect(r.stderr).toContain(`fix the code at ${file('throws')}:6:9`)
    // In place too, right under the step.
    expect(r.stdout).toContain('[local] ✖ migrate')
    expect(r.stdout).toContain('[local]   the migration table is missing')
  })

  it('nothing to deploy (no repository, no upload_path): says which settings to give', async () => {
    const r = await dep(['deploy'], { cwd: projects['no-code'] })
    expect(r.code, r.output).toBe(2)
    expect(r.stderr).toContain('Nothing to deploy to local: neither "repository" nor "upload_path" is set.')
    expect(r.stderr).toContain("set('repository'")
  })
})
