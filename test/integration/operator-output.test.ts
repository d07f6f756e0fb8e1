/**
 * What a real deploy (built CLI, localhost) prints in each mode: --json is
 * pure NDJSON, GitHub Actions gets groups and annotations, the log file is
 * complete at default verbosity, colours follow NO_COLOR/FORCE_COLOR/--color,
 * a terminal gets the live tree, and a closed pipe does not crash a run.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { JsonLine, RunEvent } from '../../src/index.js'
import { CLI, dep, writeDeployfile } from '../support/dep.js'

const sandbox = realpathSync(mkdtempSync(path.join(tmpdir(), 'df-output-')))
const project = path.join(sandbox, 'project')
const build = path.join(sandbox, 'build')
let target = 0
const deployPath = () => path.join(sandbox, `srv-${++target}`)

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsup\` first.`)
  mkdirSync(build, { recursive: true })
  writeFileSync(path.join(build, 'index.html'), 'hello\n')
  await writeDeployfile(
    project,
    `import { after, before, localhost, run, set, task, use } from 'deployfile'
import { common } from 'deployfile/recipes/common'

use(common)
localhost('local', { labels: { stage: 'demo' } })
set('upload_path', ${JSON.stringify(build)})
set('log_file', process.env.LOG_FILE ?? '')

task('app:check', async () => {
  await run('echo checking the release; echo "a note on stderr" >&2')
  if (process.env.FAIL) await run\`echo 'config is broken: 100% sure' >&2; exit 4\`
}, { description: 'Checks the new release' })
before('deploy:symlink', 'app:check')
after('deploy:success', async () => { await run\`echo done\` })
`,
  )
})
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

describe('--json', () => {
  it('stdout is NDJSON run events only, in order, with hidden steps and step indexes', async () => {
    const r = await dep(['deploy', '--json', '-o', `deploy_path=${deployPath()}`], { cwd: project })
    expect(r.code, r.stderr).toBe(0)
    const events = r.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as JsonLine)
    expect(events[0].type).toBe('run:start')
    expect(events.at(-1)).toMatchObject({ type: 'run:end', status: 'success', exitCode: 0 })
    const start = events[0] as Extract<RunEvent, { type: 'run:start' }>
    expect(start.steps.find((s) => s.task === 'deploy:prepared')).toMatchObject({ hidden: true })
    expect(start.recoverySteps?.map((s) => s.task)).toEqual(['deploy:revert', 'deploy:reverted', 'fleet:check', 'deploy:unlock'])
    const check = events.find((e) => e.type === 'step:end' && e.task === 'app:check') as Extract<RunEvent, { type: 'step:end' }>
    expect(start.steps[check.index!].task).toBe('app:check')
    expect(events.some((e) => e.type === 'command:output' && e.text === 'checking the release')).toBe(true)
    expect(events.some((e) => e.type === 'step:end' && e.task.startsWith('after:deploy:success#') && e.hidden)).toBe(true)
    for (const e of events) expect((e as RunEvent).runId).toBe(start.runId)
    expect(r.stderr).toBe('')
  })

  it('a failed run: still pure NDJSON on stdout; the failure on stderr for humans', async () => {
    const r = await dep(['deploy', '--json', '-o', `deploy_path=${deployPath()}`], { cwd: project, env: { FAIL: '1' } })
    expect(r.code).toBe(1)
    const events = r.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as RunEvent)
    const end = events.at(-1) as Extract<RunEvent, { type: 'run:end' }>
    expect(end).toMatchObject({ type: 'run:end', status: 'failed', exitCode: 1, error: { task: 'app:check', exitCode: 4 } })
    expect(events.some((e) => e.type === 'recovery:start')).toBe(true)
    expect(r.stderr).toContain('config is broken: 100% sure')
  })

  it('--plan --json and list --json are one JSON line each', async () => {
    const r = await dep(['deploy', '--plan', '--json'], { cwd: project })
    expect(r.code).toBe(0)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines).toHaveLength(1)
    const plan = JSON.parse(lines[0])
    expect(plan).toMatchObject({ type: 'plan', task: 'deploy', hosts: ['local'] })
    expect(plan.steps.map((s: { task: string }) => s.task)).toContain('app:check')
    const list = await dep(['list', '--json'], { cwd: project })
    expect(JSON.parse(list.stdout)).toMatchObject({ type: 'tasks', tasks: expect.arrayContaining([{ name: 'app:check', description: 'Checks the new release' }]) })
  })
})

describe('CI and pipes', () => {
  it('default: one line per step, hidden steps left out, no colour, failure in full at the end', async () => {
    const r = await dep(['deploy', '-o', `deploy_path=${deployPath()}`], { cwd: project, env: { FAIL: '1' } })
    expect(r.code).toBe(1)
    expect(r.stdout).not.toMatch(/\u001B\[/)
    expect(r.stdout).toMatch(/^\[local\] ✔ deploy:lock \d+ ms · 1 round trip$/m)
    expect(r.stdout).not.toContain('deploy:prepared')
    expect(r.stdout).not.toContain('checking the release') // output only with -v
    expect(r.stdout).toMatch(/^\[local\] ✖ app:check /m)
    expect(r.stderr).toContain('✖ Command on local exited with code 4')
    expect(r.stderr.trimEnd().split('\n').at(-1)).toMatch(/^✖ deploy failed after .* \(exit 1: a task failed\); nothing was switched anywhere/)
  })

  it('GitHub Actions: ::group:: per step, ::error:: with escaped text', async () => {
    const r = await dep(['deploy', '-o', `deploy_path=${deployPath()}`], { cwd: project, env: { FAIL: '1', GITHUB_ACTIONS: 'true' } })
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('::group::deploy:lock\n')
    expect(r.stdout).toContain('::endgroup::')
    const error = r.stdout.split('\n').find((l) => l.startsWith('::error '))!
    expect(error).toMatch(/^::error title=app%3Acheck failed on local::Command on local exited with code 4/)
    expect(error).toContain('config is broken: 100%25 sure')
  })

  it('colour: none by default in a pipe; FORCE_COLOR or --color turn it on; NO_COLOR and --no-color off', async () => {
    const forced = await dep(['app:check', '-o', `deploy_path=${deployPath()}`], { cwd: project, env: { NO_COLOR: '', FORCE_COLOR: '1' } })
    expect(forced.stdout).toMatch(/\u001B\[32m✔/)
    const flag = await dep(['app:check', '--color', '-o', `deploy_path=${deployPath()}`], { cwd: project })
    expect(flag.stdout).toMatch(/\u001B\[32m✔/)
    const off = await dep(['app:check', '--no-color', '-o', `deploy_path=${deployPath()}`], { cwd: project, env: { NO_COLOR: '', FORCE_COLOR: '1' } })
    expect(off.stdout).not.toMatch(/\u001B\[/)
  })

  it('a reader that goes away does not crash the run', async () => {
    const dir = deployPath()
    const out = execFileSync('bash', ['-c', `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} deploy -v -o deploy_path=${dir} 2>${sandbox}/epipe.err | head -1; echo "exit:\${PIPESTATUS[0]}"`], {
      cwd: project,
      env: { ...process.env, CI: '1', NO_COLOR: '1' },
    }).toString()
    expect(out).toContain('exit:0')
    expect(readFileSync(path.join(sandbox, 'epipe.err'), 'utf8')).not.toContain('EPIPE')
    expect(existsSync(path.join(dir, 'current'))).toBe(true) // the deploy went through
  })
})

describe('log file', () => {
  it('the log_file setting: every command and every output line at default verbosity', async () => {
    const log = path.join(sandbox, 'logs', 'deploy.log')
    const r = await dep(['deploy', '-o', `deploy_path=${deployPath()}`], { cwd: project, env: { LOG_FILE: log } })
    expect(r.code, r.output).toBe(0)
    const text = readFileSync(log, 'utf8')
    expect(text).toContain('[local] $ echo checking the release; echo "a note on stderr" >&2')
    expect(text).toContain('[local] > checking the release')
    expect(text).toContain('[local] 2> a note on stderr')
    expect(text).toContain('[local] > done')
    expect(text).toMatch(/\[local\] upload .*releases\/1: .* done/)
    expect(text).toContain('[local] step deploy:prepared ok')
    expect(text).toMatch(/run .* end: success, exit 0/)
    // Every line starts with a timestamp (continuation lines of multi-line commands aside).
    const stamped = text.split('\n').filter((l) => /^\d{4}-\d\d-\d\dT/.test(l))
    expect(stamped.length).toBeGreaterThan(40)
  })
})

describe('terminal', () => {
  it('a TTY gets the live tree, then the closing line', () => {
    try {
      execFileSync('script', ['--version'], { stdio: 'ignore' })
    } catch {
      return // no script(1): nothing to drive a pty with
    }
    const command = `stty cols 100 rows 40; ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} deploy -o deploy_path=${deployPath()}`
    const screen = execFileSync('script', ['-qfec', command, '/dev/null'], {
      cwd: project,
      env: { ...process.env, CI: '', GITHUB_ACTIONS: '', NO_COLOR: '1', TERM: 'xterm' },
      timeout: 30_000,
    })
      .toString()
      .replace(/\u001B\[[0-9;?]*[A-Za-z]/g, '')
    expect(screen).toMatch(/✔ deploy:lock \d+ ms · 1 round trip/)
    expect(screen).not.toContain('[local] ✔ deploy:lock') // not the CI lines
    expect(screen).toMatch(/✔ deploy finished in .*, \d+ round trips/)
  })
})

describe('issue 12: JSON for every command, and every command:start ends', () => {
  it('--json gives every command:start a command:end, queued commands included, per host and task', async () => {
    const r = await dep(['deploy', '--json', '-o', `deploy_path=${deployPath()}`], { cwd: project })
    expect(r.code, r.stderr).toBe(0)
    const events = r.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as RunEvent)
    const starts = events.filter((e) => e.type === 'command:start')
    const ends = events.filter((e) => e.type === 'command:end')
    // The recipe queues most of its commands (REVISION, shared, writable, ledger, unlock, cleanup).
    expect(starts.length).toBeGreaterThan(5)
    expect(ends.length).toBe(starts.length)
    const byTask = (list: RunEvent[]) => list.map((e) => (e as { task?: string }).task).sort()
    expect(byTask(ends)).toEqual(byTask(starts))
    // No command ends before it started: a running count never goes below zero.
    let open = 0
    for (const e of events) {
      if (e.type === 'command:start') open++
      if (e.type === 'command:end') expect(--open).toBeGreaterThanOrEqual(0)
    }
    expect(open).toBe(0)
  })

  it('a failure in a batch: the queued commands before it exit 0, the failing one its code, the rest null', async () => {
    const r = await dep(['deploy', '--json', '-o', `deploy_path=${deployPath()}`], { cwd: project, env: { FAIL: '1' } })
    expect(r.code).toBe(1)
    const events = r.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as RunEvent)
    expect(events.filter((e) => e.type === 'command:end').length).toBe(events.filter((e) => e.type === 'command:start').length)
    const failed = events.filter((e) => e.type === 'command:end' && e.exitCode === 4)
    expect(failed).toHaveLength(1)
  })

  it('dep config --json and dep tree --json print one JSON document', async () => {
    const config = await dep(['config', '--json', '-o', 'deploy_path=/srv/x'], { cwd: project })
    expect(config.code, config.stderr).toBe(0)
    const parsed = JSON.parse(config.stdout) as { type: string; hosts: Record<string, Record<string, unknown>> }
    expect(parsed.type).toBe('config')
    expect(parsed.hosts.local.deploy_path).toBe('/srv/x')
    expect(parsed.hosts.local.upload_path).toBe(build)

    const tree = await dep(['tree', 'deploy', '--json'], { cwd: project })
    expect(tree.code, tree.stderr).toBe(0)
    const parsedTree = JSON.parse(tree.stdout) as { type: string; task: string; tree: { name: string; children: Array<{ name: string; children: Array<{ name: string; via?: string }> }> } }
    expect(parsedTree).toMatchObject({ type: 'tree', task: 'deploy', tree: { name: 'deploy' } })
    const symlink = parsedTree.tree.children.find((c) => c.name === 'deploy:symlink')
    expect(symlink?.children).toContainEqual(expect.objectContaining({ name: 'app:check', via: 'before deploy:symlink' }))
  })
})

describe('issue 12: dep run shows the command the user wrote', () => {
  it('-v output and the failure show the command, not the wrapper; stdout and stderr each under its name', async () => {
    const target = deployPath()
    mkdirSync(target, { recursive: true })
    const r = await dep(['run', 'echo on-stdout; echo on-stderr >&2; exit 3', '-o', `deploy_path=${target}`], { cwd: project })
    expect(r.code).toBe(1)
    expect(r.output).not.toContain('if [ -d')
    expect(r.stderr).toContain('command: echo on-stdout; echo on-stderr >&2; exit 3')
    expect(r.stderr).toMatch(/ {2}stdout:\n {4}on-stdout\n/)
    expect(r.stderr).toMatch(/ {2}stderr:\n {4}on-stderr\n/)
    // It still runs where it said: in deploy_path when there is no release yet.
    const pwd = await dep(['run', 'pwd', '-o', `deploy_path=${target}`], { cwd: project })
    expect(pwd.code, pwd.output).toBe(0)
    expect(pwd.stdout).toContain(target)
    expect(pwd.output).not.toContain('if [ -d')
  })
})

describe('issue 12: --branch, --tag and --revision with the upload strategy', () => {
  it('are refused before anything runs, saying why and what to do', async () => {
    const target = deployPath()
    for (const [flag, value] of [['--branch', 'feature'], ['--tag', 'v1.2.0']]) {
      const r = await dep(['deploy', flag, value, '-o', `deploy_path=${target}`], { cwd: project })
      expect(r.code, r.output).toBe(2)
      expect(r.stderr).toContain(`${flag} ${value}: local deploys with the upload strategy`)
      expect(existsSync(path.join(target, 'current'))).toBe(false)
    }
    // The build directory is no git checkout: a revision cannot be honoured, so it is not written into REVISION.
    const r = await dep(['deploy', '--revision', 'abc1234', '-o', `deploy_path=${target}`], { cwd: project })
    expect(r.code, r.output).toBe(2)
    expect(r.stderr).toContain('--revision abc1234: local uploads')
    expect(r.stderr).toContain('-o revision=abc1234')
    expect(existsSync(path.join(target, 'current'))).toBe(false)
  })

  it('--revision is honoured when the uploaded directory is a git checkout at that commit', async () => {
    const repo = path.join(sandbox, 'checkout')
    mkdirSync(repo, { recursive: true })
    writeFileSync(path.join(repo, 'index.html'), 'from git\n')
    const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args]).toString().trim()
    git('init', '-q')
    git('add', '.')
    git('commit', '-qm', 'one')
    const head = git('rev-parse', 'HEAD')
    const target = deployPath()
    const other = await dep(['deploy', '--revision', 'deadbeef', '-o', `deploy_path=${target}`, '-o', `upload_path=${repo}`], { cwd: project })
    expect(other.code, other.output).toBe(2)
    expect(other.stderr).toContain(`which is at ${head.slice(0, 12)}, not deadbeef`)
    const same = await dep(['deploy', '--revision', head.slice(0, 7), '-o', `deploy_path=${target}`, '-o', `upload_path=${repo}`], { cwd: project })
    expect(same.code, same.output).toBe(0)
    expect(readFileSync(path.join(target, 'current', 'REVISION'), 'utf8').trim()).toBe(head.slice(0, 7))
  })
})

describe('issue 12: -v shows each command once', () => {
  it("the layout script queued by deploy:setup is not repeated in the lock's probe", async () => {
    const target = deployPath()
    const r = await dep(['deploy', '-v', '-o', `deploy_path=${target}`], { cwd: project })
    expect(r.code, r.output).toBe(0)
    // The lock's probe creates the layout, once; deploy:setup only checks the paths.
    const layout = `mkdir -p -- ${target}/.dep`
    expect(r.stdout.split(layout).length - 1, r.stdout).toBe(1)
    // dep deploy:lock alone still creates the layout (nothing queued it).
    const bare = deployPath()
    const lock = await dep(['deploy:lock', '-o', `deploy_path=${bare}`], { cwd: project })
    expect(lock.code, lock.output).toBe(0)
    expect(existsSync(path.join(bare, '.dep/deploy.lock'))).toBe(true)
  })
})

describe('issue 12: GitHub annotations of a revert', () => {
  it('name the host that switched back', async () => {
    const dir = path.join(sandbox, 'revert-project')
    await writeDeployfile(
      dir,
      `import { after, localhost, set, task, use } from 'deployfile'
import { common } from 'deployfile/recipes/common'
use(common)
localhost('edge')
set('upload_path', ${JSON.stringify(build)})
task('smoke', async (ctx) => { if (process.env.FAIL_LIVE) await ctx.run('exit 5') })
after('deploy:symlink', 'smoke')
`,
    )
    const target = deployPath()
    expect((await dep(['deploy', '-o', `deploy_path=${target}`], { cwd: dir })).code).toBe(0)
    const r = await dep(['deploy', '-o', `deploy_path=${target}`], { cwd: dir, env: { FAIL_LIVE: '1', GITHUB_ACTIONS: 'true' } })
    expect(r.code, r.output).toBe(1)
    const warning = r.stdout.split('\n').find((l) => l.startsWith('::warning ') && l.includes('switched back'))
    expect(warning, r.stdout).toBe('::warning title=deploy%3Arevert on edge::edge: switched back to release 1')
  })
})
