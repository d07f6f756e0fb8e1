/**
 * The plugin contract, proven as packages (issue 15): test/fixtures/deployfile-plugin-example is
 * packed with `npm pack` and installed beside the packed deployfile in a fresh project, the way a
 * user installs a plugin from npm. `dep init` offers its questions, TypeScript checks its settings
 * (declaration merging), `dep list`/`tree`/`config` show its tasks and settings (the secret
 * masked), a misspelt key is refused, a deploy to this machine runs its task, and a second copy of
 * deployfile inside the plugin is one clear error.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, REPO_ROOT } from '../support/dep.js'
import { npx, packedProject, TSC, type PackedProject } from '../support/packed.js'

const execFileAsync = promisify(execFile)
const FIXTURE = path.join(REPO_ROOT, 'test/fixtures/deployfile-plugin-example')
const TOKEN = 'tok-4f9a1c7e2b'

let project: PackedProject
let deployfile: string

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsup\` (npm test does) first.`)
  project = await packedProject('shop')
  // The plugin as npm would publish it, then installed from its tarball: nothing to fetch.
  await execFileAsync('npm', ['pack', '--pack-destination', project.sandbox, '--silent'], { cwd: FIXTURE })
  const tarball = path.join(project.sandbox, readdirSync(project.sandbox).find((f) => f.startsWith('deployfile-plugin-example-'))!)
  await execFileAsync('npm', ['install', '--no-audit', '--no-fund', '--offline', '--save-dev', tarball], { cwd: project.dir, timeout: 110_000 })
  deployfile = path.join(project.dir, 'deployfile.ts')
}, 180_000)

afterAll(() => {
  if (project) rmSync(project.sandbox, { recursive: true, force: true })
})

async function tsc(cwd: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [TSC['5.9'], '--noEmit'], { cwd, timeout: 60_000 })
    return { code: 0, output: stdout + stderr }
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` }
  }
}

/** Runs `body` with `line` appended to the deployfile, then puts it back. */
async function withLine<T>(line: string, body: () => Promise<T>): Promise<T> {
  const text = readFileSync(deployfile, 'utf8')
  writeFileSync(deployfile, `${text}\n${line}\n`)
  try {
    return await body()
  } finally {
    writeFileSync(deployfile, text)
  }
}

describe('a plugin installed from its package', () => {
  it('is installed as a package of its own, with deployfile only as its peer', () => {
    const installed = path.join(project.dir, 'node_modules/deployfile-plugin-example')
    expect(readdirSync(installed).sort()).toEqual(['index.d.ts', 'index.js', 'package.json'])
    expect(existsSync(path.join(installed, 'node_modules'))).toBe(false)
  })

  it('dep init offers its questions: -o answers checked against the declared type, defaults kept, the secret read from the environment', async () => {
    const typo = await npx(['dep', 'init', '--yes', '-o', 'example_greting=hi'], { cwd: project.dir })
    expect(typo.code, typo.output).toBe(2)
    expect(typo.stderr).toContain('dep init does not know "example_greting".')
    expect(typo.stderr).toContain('Did you mean "example_greeting"?')
    const wrongType = await npx(['dep', 'init', '--yes', '-o', 'example_times=three'], { cwd: project.dir })
    expect(wrongType.code, wrongType.output).toBe(2)
    expect(wrongType.stderr).toContain('example_times must be a positive integer, got "three"')
    const secret = await npx(['dep', 'init', '--yes', '-o', `example_token=${TOKEN}`], { cwd: project.dir })
    expect(secret.code, secret.output).toBe(2)
    expect(secret.stderr).toContain('Set EXAMPLE_TOKEN in the environment')
    expect(existsSync(deployfile)).toBe(false)

    const init = await npx(['dep', 'init', '--yes', '-o', 'example_greeting=howdy', '-o', 'example_times=2'], { cwd: project.dir })
    expect(init.code, init.output).toBe(0)
    expect(init.stdout).toContain('with the plugins deployfile-plugin-example')
    const text = readFileSync(deployfile, 'utf8')
    expect(text).toContain(`import { example } from 'deployfile-plugin-example'`)
    expect(text).toContain('use(example)')
    expect(text).toContain(`set('example_greeting', 'howdy')`)
    expect(text).toContain(`set('example_times', 2)`)
    expect(text).toContain(`secret('example_token', process.env.EXAMPLE_TOKEN ?? '')`)
  }, 90_000)

  it('TypeScript checks the plugin settings through declaration merging: the deployfile passes, a wrong-typed or misspelt key fails', async () => {
    const ok = await tsc(project.dir)
    expect(ok.code, ok.output).toBe(0)
    const wrong = await withLine(`set('example_times', 'three')`, () => tsc(project.dir))
    expect(wrong.output).toContain(`error TS2345: Argument of type 'string' is not assignable to parameter of type 'SettingValue<number>'.`)
    const misspelt = await withLine(`set('example_greting', 'hi')`, () => tsc(project.dir))
    expect(misspelt.output).toContain(`error TS2345: Argument of type '"example_greting"' is not assignable to parameter of type 'ConfigKey'.`)
  }, 60_000)

  it('dep list and dep tree show its task where it runs; dep config its settings with their descriptions, the secret masked', async () => {
    const list = await npx(['dep', 'list'], { cwd: project.dir })
    expect(list.code, list.output).toBe(0)
    expect(list.stdout).toMatch(/^ {2}example:greet +Writes example_greeting next to the releases$/m)
    const tree = await npx(['dep', 'tree', 'deploy'], { cwd: project.dir })
    expect(tree.stdout).toMatch(/deploy:symlink\n.*example:greet {2}\/\/ after deploy:symlink/)
    const config = await npx(['dep', 'config'], { cwd: project.dir, env: { EXAMPLE_TOKEN: TOKEN } })
    expect(config.code, config.output).toBe(0)
    expect(config.stdout).toMatch(/example_greeting: "howdy" +# Written to \{\{deploy_path\}\}\/greeting\.txt after each switch\./)
    expect(config.stdout).toMatch(/example_times: 2 +# How many times/)
    expect(config.stdout).toMatch(/example_token: \*\*\*/)
    expect(config.output).not.toContain(TOKEN)
  }, 60_000)

  it('refuses a misspelt plugin key at load time (exit 2), naming the close one', async () => {
    const r = await withLine(`set('example_greting' as 'example_greeting', 'hi')`, () => npx(['dep', 'list'], { cwd: project.dir }))
    expect(r.code, r.output).toBe(2)
    expect(r.stderr).toContain('Unknown setting "example_greting"')
    expect(r.stderr).toContain('Did you mean "example_greeting"?')
  }, 30_000)

  it('a deploy to this machine runs its task after the switch, with the values set and the secret never shown', async () => {
    // The commands first, recorded by the memory transport: what docs/plugins.md tells authors to test.
    const dry = await npx(['dep', 'example:greet', '--dry-run', '--offline'], { cwd: project.dir, env: { EXAMPLE_TOKEN: TOKEN } })
    expect(dry.code, dry.output).toBe(0)
    expect(dry.stdout).toContain(`'token: set' > ${path.join(project.dir, '.deploy/shop')}/greeting.txt`)
    expect(dry.output).not.toContain(TOKEN)
    const deploy = await npx(['dep', 'deploy'], { cwd: project.dir, env: { EXAMPLE_TOKEN: TOKEN } })
    expect(deploy.code, deploy.output).toBe(0)
    expect(deploy.output).toContain('example:greet')
    expect(deploy.output).not.toContain(TOKEN)
    const target = path.join(project.dir, '.deploy/shop')
    expect(readlinkSync(path.join(target, 'current'))).toBe('releases/1')
    expect(readFileSync(path.join(target, 'greeting.txt'), 'utf8')).toBe('howdy\nhowdy\ntoken: set\n')
  }, 90_000)

  it("the plugin's own unit test runs through the packed deployfile/testing: its commands recorded, nothing connected", async () => {
    const script = [
      "import { host, use } from 'deployfile'",
      "import { common } from 'deployfile/recipes/common'",
      "import { rehearse } from 'deployfile/testing'",
      "import { example } from 'deployfile-plugin-example'",
      "const r = await rehearse(() => { use(common); use(example); host('web1', { deployPath: '/srv/app' }) }, 'example:greet', { settings: { example_greeting: \"it's\", example_times: 1 } })",
      'console.log(JSON.stringify({ exitCode: r.exitCode, scripts: r.scripts }))',
    ].join('\n')
    writeFileSync(path.join(project.dir, 'rehearse.mjs'), script)
    const { stdout } = await execFileAsync(process.execPath, ['rehearse.mjs'], { cwd: project.dir, timeout: 60_000 })
    expect(JSON.parse(stdout)).toEqual({ exitCode: 0, scripts: { web1: [`printf '%s\\n' 'it'\\''s' 'token: none' > /srv/app/greeting.txt`] } })
  }, 90_000)

  it('a second copy of deployfile inside the plugin is one clear error (exit 2) naming the plugin and the fix', async () => {
    // What npm does when a plugin lists deployfile under dependencies with another version.
    const nested = path.join(project.dir, 'node_modules/deployfile-plugin-example/node_modules/deployfile')
    mkdirSync(nested, { recursive: true })
    try {
      await execFileAsync('tar', ['-xzf', project.tarball, '-C', nested, '--strip-components', '1'])
      const r = await npx(['dep', 'list'], { cwd: project.dir })
      expect(r.code, r.output).toBe(2)
      expect(r.stderr).toContain('Two copies of deployfile in one run: deployfile-plugin-example')
      expect(r.stderr).toContain(nested)
      expect(r.stderr).toContain('Make deployfile a peerDependency of deployfile-plugin-example')
      expect(r.stdout).not.toContain('example:greet')
    } finally {
      rmSync(path.join(project.dir, 'node_modules/deployfile-plugin-example/node_modules'), { recursive: true, force: true })
    }
    const again = await npx(['dep', 'list'], { cwd: project.dir })
    expect(again.code, again.output).toBe(0)
  }, 60_000)
})
