/**
 * The built `dep` binary (dist/cli.js) against a temporary project with a
 * localhost deployfile: inspection commands, errors and exit codes, and a real
 * deploy of the common recipe into a temporary directory.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const CLI = join(ROOT, 'dist', 'cli.js')
const sandbox = realpathSync(mkdtempSync(join(tmpdir(), 'df-cli-')))
const project = join(sandbox, 'project')
const deployPath = join(sandbox, "srv/my app")
const build = join(project, 'build')

let buildError: string | undefined

beforeAll(() => {
  // `npm test` builds dist/ before vitest runs; rebuilding here would wipe it under the other test files.
  if (!existsSync(CLI)) buildError = `${CLI} is missing: run \`npm run build\` (npm test does) first.`
  mkdirSync(join(build, 'public'), { recursive: true })
  writeFileSync(join(build, 'public', 'index.html'), '<h1>release</h1>\n')
  writeFileSync(
    join(project, 'deployfile.ts'),
    `import { after, before, localhost, run, secret, set, task, use } from 'deployfile'
import { common } from 'deployfile/recipes/common'

use(common)
localhost('local', { deployPath: ${JSON.stringify(deployPath)}, labels: { stage: 'demo' } })
set('upload_path', ${JSON.stringify(build)})
set('keep_releases', 3)
set('revision', 'abc123')
secret('db_password', 'hunter2-secret')

task('greet', async () => {
  await run\`echo hello from {{deploy_path}}\`
}, { description: 'Says hello' })
before('deploy:symlink', 'greet')

task('boom', async () => {
  await run\`echo about to fail; echo 'the thing broke' >&2; exit 3\`
}, { description: 'Always fails' })
`,
  )
  mkdirSync(join(project, 'sub', 'dir'), { recursive: true })
}, 180_000)

afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

interface Result {
  code: number
  stdout: string
  stderr: string
}

function dep(args: string[], cwd = project): Promise<Result> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd, env: { ...process.env, NO_COLOR: '1', CI: '1', GITHUB_ACTIONS: '' }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : -1) : 0
        done({ code, stdout: String(stdout), stderr: String(stderr) })
      },
    )
  })
}

function requireBuild(): void {
  if (buildError) throw new Error(buildError)
}

describe('dep (built)', () => {
  it('builds', () => {
    requireBuild()
    expect(existsSync(CLI)).toBe(true)
  })

  it('--version prints the package version', async () => {
    requireBuild()
    const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version
    const r = await dep(['--version'])
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toBe(version)
  })

  it('--help lists commands, selectors and exit codes', async () => {
    requireBuild()
    const r = await dep(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('Usage: dep')
    expect(r.stdout).toContain('--dry-run')
    expect(r.stdout).toContain('Exit codes: 0 ok, 1 task failed')
  })

  it('list shows visible tasks with descriptions, not hidden ones', async () => {
    requireBuild()
    const r = await dep(['list'], join(project, 'sub', 'dir'))
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^\s+deploy\s+Deploys a new release with zero downtime$/m)
    expect(r.stdout).toMatch(/^\s+greet\s+Says hello$/m)
    expect(r.stdout).not.toContain('deploy:prepared')
  })

  it('tree deploy annotates hooks', async () => {
    requireBuild()
    const r = await dep(['tree', 'deploy'])
    expect(r.code).toBe(0)
    const lines = r.stdout.split('\n')
    expect(lines[0]).toBe('deploy')
    const greet = lines.findIndex((l) => l.includes('greet'))
    const symlink = lines.findIndex((l) => /deploy:symlink$/.test(l))
    expect(lines).toContain('├── deploy:info')
    expect(lines[lines.length - 2]).toBe('└── deploy:success')
    // The hook hangs under the task it hooks.
    expect(greet).toBe(symlink + 1)
    expect(lines[greet]).toBe('│   └── greet  // before deploy:symlink')
  })

  it('deploy --plan prints steps × hosts with phases and the fail hook', async () => {
    requireBuild()
    const r = await dep(['deploy', '--plan'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('Plan for deploy on 1 host(s):')
    expect(r.stdout).toMatch(/^greet\s+prepare\s+●/m)
    expect(r.stdout).toMatch(/^deploy:symlink\s+switch\s+●/m)
    expect(r.stdout).toMatch(/^deploy:cleanup\s+finish\s+●/m)
    expect(r.stdout).toContain('On failure (fail hook of deploy):')
    expect(existsSync(deployPath)).toBe(false)
  })

  it('config shows resolved settings, secrets masked', async () => {
    requireBuild()
    const r = await dep(['config'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('local:')
    expect(r.stdout).toContain(`  deploy_path: ${JSON.stringify(deployPath)}`)
    expect(r.stdout).toContain('  keep_releases: 3')
    expect(r.stdout).toContain('  db_password: ***')
    expect(r.stdout).not.toContain('hunter2-secret')
  })

  it('-o overrides are visible in config (JSON-ish values parsed)', async () => {
    requireBuild()
    const r = await dep(['config', '-o', 'keep_releases=7', '-o', 'branch=feature/x', '-o', 'shared_dirs=["storage"]'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('  keep_releases: 7')
    expect(r.stdout).toContain('  branch: "feature/x"')
    expect(r.stdout).toContain('  shared_dirs: ["storage"]')
  })

  it('an unknown task exits 2 with a suggestion', async () => {
    requireBuild()
    const r = await dep(['deplyo'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Task "deplyo" is not defined.')
    expect(r.stderr).toContain('Did you mean "deploy"')
  })

  it('an unknown host selector exits 2', async () => {
    requireBuild()
    const r = await dep(['greet', 'nohost'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Unknown host "nohost".')
    const label = await dep(['greet', 'stage=prod'])
    expect(label.code).toBe(2)
    expect(label.stderr).toContain('No host matches the selector "stage=prod".')
  })

  it('an unknown option exits 2', async () => {
    requireBuild()
    const r = await dep(['list', '--no-such-option'])
    expect(r.code).toBe(2)
  })

  it('an unknown option is one readable deployfile error with a suggestion, not commander\'s (issue 12)', async () => {
    requireBuild()
    const r = await dep(['deploy', '--bogus'])
    expect(r.code).toBe(2)
    expect(r.stderr).not.toContain('error: unknown option')
    expect(r.stderr).toBe('✖ Unknown option --bogus.\n  → See dep --help for the options.\n')
    const typo = await dep(['deploy', '--brnch', 'main'])
    expect(typo.code).toBe(2)
    // Nearest first (--batch, of rolling deploys, is two edits away).
    expect(typo.stderr).toMatch(/Did you mean "--branch"[,?]/)
    const json = await dep(['list', '--json', '--bogus'])
    expect(JSON.parse(json.stdout)).toMatchObject({ type: 'error', exitCode: 2, error: { name: 'UsageError', message: 'Unknown option --bogus.' } })
  })

  it('dep <task> --help describes the task: description, what it runs, the settings it reads (issue 12)', async () => {
    requireBuild()
    const r = await dep(['deploy', '--help'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('Usage: dep deploy [selector…] [options]')
    expect(r.stdout).toContain('Deploys a new release')
    expect(r.stdout).toMatch(/├── deploy:symlink\n\s+│\s+└── greet {2}\/\/ before deploy:symlink/)
    expect(r.stdout).toMatch(/Settings its code reads[^\n]*\n\s+[^\n]*deploy_path/)
    expect(r.stdout).toContain('keep_releases')
    // Not the general help.
    expect(r.stdout).not.toContain('Exit codes:')
    const greet = await dep(['greet', '-h'])
    expect(greet.stdout).toContain('Says hello')
    expect(greet.stdout).toMatch(/Settings its code reads[^\n]*\n {2}deploy_path\n/)
    // A built-in command keeps the general help; nothing ran.
    expect((await dep(['list', '--help'])).stdout).toContain('Exit codes:')
    expect(existsSync(join(deployPath, 'current'))).toBe(false)
  })

  it('no deployfile exits 2 with a hint', async () => {
    requireBuild()
    const empty = mkdtempSync(join(tmpdir(), 'df-cli-empty-'))
    try {
      const r = await dep(['list'], empty)
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('No deployfile found')
      expect(r.stderr).toContain('dep init')
    } finally {
      rmSync(empty, { recursive: true, force: true })
    }
  })

  it('a failing task exits 1 and shows host, command, exit code and stderr', async () => {
    requireBuild()
    const r = await dep(['boom'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('Command on local exited with code 3')
    expect(r.stderr).toMatch(/task:\s+boom/)
    expect(r.stderr).toMatch(/host:\s+local/)
    expect(r.stderr).toMatch(/command: echo about to fail; echo 'the thing broke' >&2; exit 3/)
    expect(r.stderr).toMatch(/exit:\s+3/)
    expect(r.stderr).toContain('the thing broke')
    expect(r.stdout).toMatch(/\[local\] ✖ boom/)
  })

  it('a runnable task prints its progress and exits 0', async () => {
    requireBuild()
    const r = await dep(['greet', '-v'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('Running greet on local')
    expect(r.stdout).toContain(`[local] hello from ${deployPath}`)
  })

  it('run executes an ad-hoc command on the selected hosts', async () => {
    requireBuild()
    const r = await dep(['run', 'echo ad-hoc-$((40+2))', 'stage=demo', '-v'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('[local] ad-hoc-42')
  })

  it('a real localhost deploy creates releases/1, switches current and writes the ledger', async () => {
    requireBuild()
    const r = await dep(['deploy'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(readFileSync(join(deployPath, 'releases', '1', 'public', 'index.html'), 'utf8')).toBe('<h1>release</h1>\n')
    expect(readFileSync(join(deployPath, 'releases', '1', 'REVISION'), 'utf8')).toBe('abc123\n')
    expect(readlinkSync(join(deployPath, 'current'))).toBe('releases/1')
    expect(existsSync(join(deployPath, 'release'))).toBe(false)
    expect(existsSync(join(deployPath, '.dep', 'deploy.lock'))).toBe(false)
    const ledger = readFileSync(join(deployPath, '.dep', 'releases_log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    expect(ledger.map((e: { release: string; status: string }) => `${e.release}:${e.status}`)).toEqual(['1:prepared', '1:live'])
    expect(ledger[1]).toMatchObject({ revision: 'abc123' })

    const second = await dep(['deploy'])
    expect(second.code).toBe(0)
    expect(readlinkSync(join(deployPath, 'current'))).toBe('releases/2')
  })

  // The exit code is not checked here: it is 4 today (KNOWN-BUGS.test.ts, BUG 1).
  it('deploy --dry-run prints the commands and changes nothing', async () => {
    requireBuild()
    const fresh = join(sandbox, 'dry-run-target')
    const r = await dep(['deploy', '--dry-run', '-o', `deploy_path=${fresh}`])
    expect(r.stdout).toContain('Dry run of deploy on local')
    expect(r.stdout).toContain('# local')
    // The state was read (nothing there: release 1), the lock not taken, nothing made.
    expect(r.stdout).toContain(`mkdir -- ${fresh}/releases/1`)
    expect(r.stdout).toContain('release 1 would go live on local')
    expect(r.stdout).toContain('Only read-only commands ran')
    expect(r.code).toBe(0)
    expect(existsSync(fresh)).toBe(false)
  })
})
