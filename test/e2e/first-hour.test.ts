/**
 * A new user's first hour (issue 12), as a stranger would live it: the packed tarball installed into a
 * fresh project, `npx deployfile` / `npx dep` from there, the deployfile `dep init` writes checked by
 * TypeScript 5.9 and 7, every snippet of the README and docs/ compiled, and a deploy stopped by
 * SIGTERM the way a CI cancellation stops it.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, REPO_ROOT, ledgerOf, waitFor } from '../support/dep.js'
import { npx, packedProject, start, TSC, type PackedProject } from '../support/packed.js'
import { markdownSnippets } from '../support/snippets.js'

const execFileAsync = promisify(execFile)
const version = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version

let project: PackedProject

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does) first.`)
  project = await packedProject()
}, 120_000)

afterAll(() => {
  if (project) rmSync(project.sandbox, { recursive: true, force: true })
})

/** tsc of one TypeScript version on a project directory (its tsconfig.json) or on files; exit code and output. */
async function tsc(versionName: keyof typeof TSC, cwd: string, args: string[] = []): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [TSC[versionName], '--noEmit', ...args], { cwd, timeout: 60_000 })
    return { code: 0, output: stdout + stderr }
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` }
  }
}

describe('install and first commands', () => {
  it('answers to npx deployfile and npx dep (the bin that cannot be confused with the "dep" package)', async () => {
    const long = await npx(['deployfile', '--version'], { cwd: project.dir })
    expect(long.code, long.output).toBe(0)
    expect(long.stdout.trim()).toBe(version)
    const short = await npx(['dep', '--version'], { cwd: project.dir })
    expect(short.stdout.trim()).toBe(version)
  })

  it('ships LICENSE, docs/ and examples/: every relative link of the README resolves inside the package', () => {
    const installed = path.join(project.dir, 'node_modules/deployfile')
    expect(readFileSync(path.join(installed, 'LICENSE'), 'utf8')).toMatch(/^MIT License/)
    const readme = readFileSync(path.join(installed, 'README.md'), 'utf8')
    const links = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]).filter((l) => !/^[a-z]+:/.test(l))
    expect(links.length).toBeGreaterThan(5)
    for (const link of links) {
      expect(link, 'a link out of the package').not.toMatch(/^\.\.\//)
      expect(existsSync(path.join(installed, link)), `README links ${link}`).toBe(true)
    }
  })

  it('a usage mistake is one readable error (exit 2)', async () => {
    const r = await npx(['dep', 'list', '--bogus'], { cwd: project.dir })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('✖ Unknown option --bogus.')
  })
})

describe('dep init, then TypeScript', () => {
  it('the declarations stand alone: no tsconfig at all (before init writes one), default settings, Node types used in a task', async () => {
    const dir = path.join(project.dir, 'bare')
    mkdirSync(dir, { recursive: true })
    writeFileSync(
      path.join(dir, 'check.ts'),
      `import { host, run, set, task, upload } from 'deployfile'
import { common } from 'deployfile/recipes/common'
void common
set('deploy_path', '/srv/app')
host('web1', { remoteUser: 'deploy' })
task('ship', async () => {
  await upload(Buffer.from('hello'), '{{deploy_path}}/hello.txt', { mode: 0o600 })
  await run\`echo \${'done'}\`
})
`,
    )
    for (const v of ['5.9', '7'] as const) {
      const r = await tsc(v, dir, ['check.ts'])
      expect(r.code, `TypeScript ${v}:\n${r.output}`).toBe(0)
    }
  }, 60_000)

  it('npx deployfile init --yes writes a deployfile and a tsconfig that TypeScript 5.9 and 7 accept as written', async () => {
    const init = await npx(['deployfile', 'init', '--yes'], { cwd: project.dir })
    expect(init.code, init.output).toBe(0)
    expect(init.stdout).toContain('Wrote deployfile.ts, tsconfig.json.')
    expect(init.stdout).toContain('into .deploy/shop (next to the deployfile)')
    for (const v of ['5.9', '7'] as const) {
      const r = await tsc(v, project.dir)
      expect(r.code, `TypeScript ${v}:\n${r.output}`).toBe(0)
    }
    // The check is real: a wrong value fails it.
    const file = path.join(project.dir, 'deployfile.ts')
    const text = readFileSync(file, 'utf8')
    writeFileSync(file, `${text}\nset('keep_releases', 'five')\n`)
    expect((await tsc('7', project.dir)).output).toContain("Argument of type 'string' is not assignable")
    writeFileSync(file, text)
    // And the deploy runs as written, inside the project.
    const deploy = await npx(['dep', 'deploy'], { cwd: project.dir })
    expect(deploy.code, deploy.output).toBe(0)
    expect(readlinkSync(path.join(project.dir, '.deploy/shop/current'))).toBe('releases/1')
  }, 90_000)

  it('every ```ts snippet of README.md and docs/*.md type-checks under TypeScript 5.9 and 7', async () => {
    const { compiled, fragments } = markdownSnippets(REPO_ROOT)
    // Fragments are the exception: most snippets must be whole.
    expect(compiled.length).toBeGreaterThan(3 * fragments.length)
    const dir = path.join(project.dir, 'snippets')
    mkdirSync(dir, { recursive: true })
    const names = new Map<string, (typeof compiled)[number]>()
    for (const snippet of compiled) {
      const name = snippet.path ?? `${snippet.file.replace(/[/.]/g, '-')}-${snippet.line}.ts`
      names.set(name, snippet)
      // Each snippet is its own module, as a user's deployfile.ts is.
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
      writeFileSync(path.join(dir, name), `${snippet.code}\nexport {}\n`)
    }
    // The tsconfig `dep init` writes.
    const config = JSON.parse(readFileSync(path.join(project.dir, 'tsconfig.json'), 'utf8')) as { compilerOptions: object }
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: config.compilerOptions, include: ['**/*.ts'] }))
    for (const v of ['5.9', '7'] as const) {
      const r = await tsc(v, dir)
      // Errors point at the markdown: README.md:37 instead of snippets/README-md-37.ts(1,1).
      const readable = r.output.replace(/^(\S+\.ts)\((\d+),(\d+)\)/gm, (all, name: string, line: string) => {
        const snippet = names.get(name)
        return snippet ? `${snippet.file}:${snippet.line + Number(line) - 1}` : all
      })
      expect(r.code, `TypeScript ${v}:\n${readable}`).toBe(0)
    }
  }, 90_000)
})

describe('stopping a deploy the way CI does (SIGTERM)', () => {
  let dir: string
  let target: string

  beforeAll(async () => {
    dir = path.join(project.dir, 'signals')
    target = path.join(dir, 'srv')
    mkdirSync(path.join(dir, 'site'), { recursive: true })
    writeFileSync(path.join(dir, 'site/index.html'), 'hello\n')
    // After the switch, a step that says it started (with dep's pid) and then takes its time: a signal
    // there must switch every host back.
    writeFileSync(
      path.join(dir, 'deployfile.ts'),
      `import { writeFileSync } from 'node:fs'
import { after, localhost, run, set, task, use } from 'deployfile'
import { common } from 'deployfile/recipes/common'
use(common)
localhost('edge', { deployPath: ${JSON.stringify(target)} })
set('upload_path', ${JSON.stringify(path.join(dir, 'site'))})
task('smoke', async () => {
  if (!process.env.MARKER) return
  writeFileSync(process.env.MARKER, String(process.pid))
  await run('sleep 30')
})
after('deploy:symlink', 'smoke')
`,
    )
    const first = await npx(['dep', 'deploy'], { cwd: dir })
    expect(first.code, first.output).toBe(0)
    expect(readlinkSync(path.join(target, 'current'))).toBe('releases/1')
  }, 60_000)

  /** Starts `npx dep deploy` with the slow step; resolves once the new release is live and the step runs. */
  async function deployUntilLive(marker: string, detached: boolean) {
    const run = start('npx', ['--no-install', 'dep', 'deploy'], { cwd: dir, env: { MARKER: marker }, detached })
    await waitFor(() => existsSync(marker) && readFileSync(marker, 'utf8') !== '', 30_000, 'the post-switch step to start')
    const depPid = Number(readFileSync(marker, 'utf8'))
    return { run, depPid }
  }

  function alive(pid: number): boolean {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }

  it('SIGTERM to the process group of `npx dep deploy` (a CI cancellation) reverts: the new release does not stay live', async () => {
    const marker = path.join(dir, 'group.pid')
    const { run, depPid } = await deployUntilLive(marker, true)
    const live = readlinkSync(path.join(target, 'current'))
    expect(live).not.toBe('releases/1')
    process.kill(-run.child.pid!, 'SIGTERM')
    const r = await run.result
    // npm dies of the signal at once; dep finishes reverting (the pipes close when it exits).
    await waitFor(() => !alive(depPid), 30_000, 'dep to exit')
    expect(r.output).toContain('SIGTERM: stopping and reverting')
    expect(readlinkSync(path.join(target, 'current'))).toBe('releases/1')
    const ledger = await ledgerOf(target)
    expect(ledger.filter((e) => `releases/${e.release}` === live).pop()?.status, JSON.stringify(ledger)).not.toBe('live')
    expect(existsSync(path.join(target, '.dep/deploy.lock'))).toBe(false)
  }, 60_000)

  it('SIGTERM to the dep process itself reverts too and exits 130 (through npx)', async () => {
    const marker = path.join(dir, 'direct.pid')
    const { run, depPid } = await deployUntilLive(marker, false)
    process.kill(depPid, 'SIGTERM')
    const r = await run.result
    expect(r.code, r.output).toBe(130)
    expect(r.output).toContain('SIGTERM: stopping and reverting')
    expect(readlinkSync(path.join(target, 'current'))).toBe('releases/1')
    expect(existsSync(path.join(target, '.dep/deploy.lock'))).toBe(false)
  }, 60_000)

  it('SIGHUP (a closed terminal or SSH session) reverts like SIGINT', async () => {
    const marker = path.join(dir, 'hup.pid')
    const { run, depPid } = await deployUntilLive(marker, false)
    process.kill(depPid, 'SIGHUP')
    const r = await run.result
    expect(r.code, r.output).toBe(130)
    expect(r.output).toContain('SIGHUP: stopping and reverting')
    expect(readlinkSync(path.join(target, 'current'))).toBe('releases/1')
  }, 60_000)
})
