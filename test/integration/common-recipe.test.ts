/**
 * The common recipe against three real OpenSSH daemons, driven through the
 * built `dep` binary: happy deploys and rollback, a fault injected at every
 * step, concurrent deploys and the lock, SIGKILL and SIGINT.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSshServers, type SshServers } from '../support/sshd.js'
import { commonDeployfile, currentOf, dep, isLocked, ledgerOf, releasesOf, startDep, statusOf, waitFor, writeDeployfile } from '../support/dep.js'

const DEPLOY_STEPS = [
  'deploy:info',
  'deploy:setup',
  'deploy:lock',
  'deploy:release',
  'deploy:update_code',
  'deploy:shared',
  'deploy:writable',
  'deploy:clear_paths',
  'deploy:verify',
  'deploy:prepared',
  'deploy:symlink',
  'deploy:healthcheck',
  'deploy:unlock',
  'deploy:cleanup',
  'deploy:success',
]
const FINISH_STEPS = new Set(['deploy:unlock', 'deploy:cleanup', 'deploy:success'])
const ALIASES = ['web1', 'web2', 'web3']

let servers: SshServers
let base: string
let appDir: string
let health: Server
let healthPort: number
/** Hosts whose health URL answers 500. */
const unhealthy = new Set<string>()

function deployPathOf(alias: string, root = 'plain'): string {
  return path.join(servers.workDir, root, alias)
}

/** A deployfile for three hosts with fault-injection hooks driven by FAIL_AT / FAIL_HOST / SLOW. */
function deployfileText(options: { root?: string; deployPath?: (alias: string) => string; extra?: string } = {}): string {
  const hosts = ALIASES.map((alias, index) => ({
    alias,
    options: servers.hostOptions(index),
    deployPath: options.deployPath?.(alias) ?? deployPathOf(alias, options.root),
    labels: { stage: 'test' },
  }))
  return commonDeployfile(appDir, hosts, `
set('healthcheck_url', 'http://127.0.0.1:${healthPort}/health/{{alias}}')
set('healthcheck_retries', 2)
set('healthcheck_timeout', 2)

const steps = ${JSON.stringify(DEPLOY_STEPS)}
for (const step of steps) {
  // A named hook; the one after the switch itself belongs to the switch phase.
  task('inject:' + step, async (ctx) => {
    if (ctx.failure) return
    if (process.env.FAIL_AT === step && process.env.FAIL_HOST === ctx.host.alias) {
      await ctx.run('echo injected failure at ' + step + ' >&2; exit 42')
    }
  }, { hidden: true, phase: step === 'deploy:symlink' ? 'switch' : undefined })
  after(step, 'inject:' + step)
}
before('deploy:symlink', async (ctx) => {
  if (process.env.SLOW_PREPARE) {
    await ctx.run('touch ' + JSON.stringify(process.env.SLOW_PREPARE + '.' + ctx.host.alias) + ' && sleep ' + (process.env.SLOW_SECONDS ?? '30'))
  }
})
after('deploy:symlink', async (ctx) => {
  if (process.env.SLOW_SWITCHED) {
    await ctx.run('touch ' + JSON.stringify(process.env.SLOW_SWITCHED + '.' + ctx.host.alias) + ' && sleep 30')
  }
})
before('deploy:release', async (ctx) => {
  if (process.env.HOLD_LOCK) await ctx.run('sleep ' + process.env.HOLD_LOCK)
})
${options.extra ?? ''}
`)
}

async function checkFleet(deployPaths: string[], expected: string, label = ''): Promise<void> {
  for (const deployPath of deployPaths) {
    const where = `${label} ${deployPath}`
    expect(await currentOf(deployPath), where).toBe(`releases/${expected}`)
    expect(existsSync(path.join(deployPath, 'releases', expected, 'index.html')), `${where} release complete`).toBe(true)
    expect(existsSync(path.join(deployPath, 'releases', expected, 'REVISION'))).toBe(true)
    expect(existsSync(path.join(deployPath, 'release')), `${where} has no release link`).toBe(false)
    expect(isLocked(deployPath), `${where} unlocked`).toBe(false)
  }
}

beforeAll(async () => {
  servers = await startSshServers(3)
  base = await mkdtemp(path.join(tmpdir(), 'deployfile-common-'))
  appDir = path.join(base, 'app')
  await mkdir(path.join(appDir, 'css'), { recursive: true })
  await mkdir(path.join(appDir, 'logs'), { recursive: true })
  await mkdir(path.join(appDir, 'config'), { recursive: true })
  await writeFile(path.join(appDir, 'index.html'), '<h1>hello</h1>\n')
  await writeFile(path.join(appDir, 'css/site.css'), 'body{}\n')
  await writeFile(path.join(appDir, 'logs/seed.log'), 'seeded from the first release\n')
  await writeFile(path.join(appDir, 'config/app.env'), 'MODE=seed\n')
  await writeFile(path.join(appDir, 'run.sh'), '#!/bin/sh\necho ok\n')
  await chmod(path.join(appDir, 'run.sh'), 0o755)
  health = createServer((request, response) => {
    const alias = request.url?.split('/').pop() ?? ''
    response.statusCode = unhealthy.has(alias) ? 500 : 200
    response.end(unhealthy.has(alias) ? 'unhealthy' : 'ok')
  })
  await new Promise<void>((resolve) => health.listen(0, '127.0.0.1', resolve))
  healthPort = (health.address() as AddressInfo).port
})

afterAll(async () => {
  await servers?.stopAll()
  await new Promise((resolve) => health?.close(resolve))
  if (base) await rm(base, { recursive: true, force: true })
})

describe('happy deploys and rollback', () => {
  let dir: string
  const paths = () => ALIASES.map((alias) => deployPathOf(alias, 'happy'))

  beforeAll(async () => {
    dir = path.join(base, 'happy')
    await writeDeployfile(dir, deployfileText({ root: 'happy' }))
  })

  it('deploys release 1 on every host with the full layout', async () => {
    const result = await dep(['deploy'], { cwd: dir })
    expect(result.code, result.output).toBe(0)
    await checkFleet(paths(), '1')
    for (const deployPath of paths()) {
      const release = path.join(deployPath, 'releases/1')
      expect(await readFile(path.join(release, 'index.html'), 'utf8')).toBe('<h1>hello</h1>\n')
      // shared dir and file: relative links, seeded from the release the first time
      expect(execFileSync('readlink', [path.join(release, 'logs')]).toString().trim()).toBe('../../shared/logs')
      expect(execFileSync('readlink', [path.join(release, 'config/app.env')]).toString().trim()).toBe('../../../shared/config/app.env')
      expect(await readFile(path.join(deployPath, 'shared/logs/seed.log'), 'utf8')).toContain('seeded')
      expect(await readFile(path.join(deployPath, 'shared/config/app.env'), 'utf8')).toBe('MODE=seed\n')
      // modes kept by the upload, writable dir made
      expect(execFileSync('stat', ['-c', '%a', path.join(release, 'run.sh')]).toString().trim()).toBe('755')
      expect(execFileSync('stat', ['-c', '%a', path.join(release, 'cache')]).toString().trim()).toBe('775')
      const ledger = await ledgerOf(deployPath)
      expect(ledger.map((e) => `${e.release}:${e.status}`)).toEqual(['1:prepared', '1:live'])
      expect(ledger[1].user).toBeTruthy()
      expect(ledger[1].run_id).toBeTruthy()
    }
  })

  it('keeps shared data across releases and switches everyone to release 2', async () => {
    await writeFile(path.join(deployPathOf('web1', 'happy'), 'shared/config/app.env'), 'MODE=edited\n')
    const result = await dep(['deploy'], { cwd: dir })
    expect(result.code, result.output).toBe(0)
    await checkFleet(paths(), '2')
    expect(await readFile(path.join(deployPathOf('web1', 'happy'), 'releases/2/config/app.env'), 'utf8')).toBe('MODE=edited\n')
    for (const deployPath of paths()) expect(await releasesOf(deployPath)).toEqual(['1', '2'])
  })

  it('rolls back to release 1 and marks release 2 bad', async () => {
    const result = await dep(['rollback'], { cwd: dir })
    expect(result.code, result.output).toBe(0)
    await checkFleet(paths(), '1')
    for (const deployPath of paths()) expect(await statusOf(deployPath, '2')).toBe('rolled_back')
    const releases = await dep(['releases'], { cwd: dir })
    expect(releases.code, releases.output).toBe(0)
    expect(releases.output).toMatch(/● 1\s+live now/)
    expect(releases.output).toMatch(/ 2\s+rolled back/)
  })

  it('never rolls back to a bad release, and cleanup keeps keep_releases good ones', async () => {
    const again = await dep(['rollback'], { cwd: dir })
    expect(again.code).toBe(1)
    expect(again.output).toMatch(/Nothing was rolled back: no good release older than 1 is on every selected host/)
    expect(again.output).toMatch(/web1: serves 1; good releases: 1/)
    for (let i = 0; i < 4; i++) expect((await dep(['deploy'], { cwd: dir })).code).toBe(0)
    // releases 3..6 deployed; 2 is bad and goes; keep 3 good ones: 4, 5, 6
    for (const deployPath of paths()) expect(await releasesOf(deployPath)).toEqual(['4', '5', '6'])
    await checkFleet(paths(), '6')
  })

  it('dep releases points out hosts that disagree', async () => {
    const web2 = deployPathOf('web2', 'happy')
    execFileSync('sh', ['-c', 'ln -sfn releases/5 current.tmp && mv -T current.tmp current'], { cwd: web2 })
    const result = await dep(['releases'], { cwd: dir })
    expect(result.code, result.output).toBe(0)
    expect(result.output).toMatch(/hosts disagree on the live release: web1, web3 serve 6; web2 serves 5/)
    execFileSync('sh', ['-c', 'ln -sfn releases/6 current.tmp && mv -T current.tmp current'], { cwd: web2 })
  })
})

describe('a fault injected at each step, on one host of three', () => {
  let dir: string
  const paths = () => ALIASES.map((alias) => deployPathOf(alias, 'faults'))

  beforeAll(async () => {
    dir = path.join(base, 'faults')
    await writeDeployfile(dir, deployfileText({ root: 'faults' }))
    expect((await dep(['deploy'], { cwd: dir })).code).toBe(0)
  })

  it('leaves every host on one complete good release, unlocked, with the documented exit code', async () => {
    let live = 1
    let next = 2
    const failedReleases: string[] = []
    for (const step of [...DEPLOY_STEPS, 'healthcheck-url']) {
      const env = step === 'healthcheck-url' ? {} : { FAIL_AT: step, FAIL_HOST: 'web2' }
      if (step === 'healthcheck-url') unhealthy.add('web2')
      const result = await dep(['deploy'], { cwd: dir, env })
      unhealthy.clear()
      const attempted = String(next)
      if (FINISH_STEPS.has(step)) {
        expect(result.code, `${step}: ${result.output}`).toBe(0)
        expect(result.output).toMatch(/Finish step failed/)
        live = next
      } else {
        expect(result.code, `${step}: ${result.output}`).toBe(1)
        // release names are never reused, even those of failed releases that reached the ledger
        if (await statusOf(deployPathOf('web1', 'faults'), attempted)) failedReleases.push(attempted)
      }
      await checkFleet(paths(), String(live), `${step}: ${result.output}`)
      for (const deployPath of paths()) {
        for (const failed of failedReleases) {
          expect(existsSync(path.join(deployPath, 'releases', failed)), `${step}: ${failed} removed`).toBe(false)
          expect(await statusOf(deployPath, failed)).toBe('failed')
        }
      }
      next = Math.max(...(await Promise.all(paths().map(ledgerOf))).flat().map((e) => Number(e.release))) + 1
    }
    // The failed releases are never a rollback target.
    const rollback = await dep(['rollback'], { cwd: dir })
    expect(rollback.code, rollback.output).toBe(0)
    const target = (await currentOf(deployPathOf('web1', 'faults')))!.split('/')[1]
    expect(failedReleases).not.toContain(target)
    expect(await statusOf(deployPathOf('web1', 'faults'), target)).toBe('live')
  }, 180_000)
})

describe('health checks', () => {
  it('a failing healthcheck_command in the new release stops the deploy before any switch', async () => {
    const dir = path.join(base, 'verify')
    const paths = ALIASES.map((alias) => deployPathOf(alias, 'verify'))
    await writeDeployfile(dir, deployfileText({ root: 'verify' }))
    expect((await dep(['deploy', '-o', 'healthcheck_command=test -f index.html'], { cwd: dir })).code).toBe(0)
    const failed = await dep(['deploy', '-o', 'healthcheck_command=test -f no-such-file'], { cwd: dir })
    expect(failed.code, failed.output).toBe(1)
    expect(failed.output).toMatch(/deploy:verify/)
    await checkFleet(paths, '1')
    for (const deployPath of paths) expect(await statusOf(deployPath, '2')).toBe('failed')
  }, 60_000)
})

describe('the lock', () => {
  let dir: string
  const paths = () => ALIASES.map((alias) => deployPathOf(alias, 'lock'))

  beforeAll(async () => {
    dir = path.join(base, 'lock')
    await writeDeployfile(dir, deployfileText({ root: 'lock' }))
  })

  it('lets exactly one of five simultaneous deploys through', async () => {
    const runs = Array.from({ length: 5 }, () => startDep(['deploy'], { cwd: dir, env: { HOLD_LOCK: '4' } }))
    const results = await Promise.all(runs.map((r) => r.result))
    const codes = results.map((r) => r.code).sort()
    expect(codes, results.map((r) => r.output).join('\n----\n')).toEqual([0, 4, 4, 4, 4])
    for (const loser of results.filter((r) => r.code === 4)) {
      expect(loser.output).toMatch(/deploy lock on web1 is held by \S+ on \S+/)
      expect(loser.output).toMatch(/deploy:unlock --force/)
    }
    await checkFleet(paths(), '1')
  }, 60_000)

  it('reports a lock left by a SIGKILLed deploy, and deploy:unlock --force clears it', async () => {
    const marker = path.join(servers.workDir, 'killed-marker')
    const run = startDep(['deploy'], { cwd: dir, env: { SLOW_PREPARE: marker } })
    await waitFor(() => existsSync(`${marker}.web1`), 30_000, 'the slow prepare step')
    run.child.kill('SIGKILL')
    await run.result
    for (const deployPath of paths()) expect(isLocked(deployPath)).toBe(true)

    const blocked = await dep(['deploy'], { cwd: dir })
    expect(blocked.code, blocked.output).toBe(4)
    expect(blocked.output).toMatch(/held by/)
    expect(await currentOf(deployPathOf('web1', 'lock'))).toBe('releases/1')

    const plainUnlock = await dep(['deploy:unlock'], { cwd: dir })
    expect(plainUnlock.code, plainUnlock.output).toBe(4)

    const unlock = await dep(['deploy:unlock', '--force'], { cwd: dir })
    expect(unlock.code, unlock.output).toBe(0)
    expect(unlock.output).toMatch(/removed the lock of/)
    for (const deployPath of paths()) expect(isLocked(deployPath)).toBe(false)

    const after = await dep(['deploy'], { cwd: dir })
    expect(after.code, after.output).toBe(0)
    // the half-prepared release of the killed run never counts as good
    const live = (await currentOf(deployPathOf('web1', 'lock')))!
    expect(live).toBe('releases/3')
    await checkFleet(paths(), '3')
  }, 90_000)

  it('reverts and unlocks on SIGINT during prepare', async () => {
    const marker = path.join(servers.workDir, 'sigint-prepare')
    const run = startDep(['deploy'], { cwd: dir, env: { SLOW_PREPARE: marker, SLOW_SECONDS: '37' } })
    await waitFor(() => ALIASES.every((a) => existsSync(`${marker}.${a}`)), 30_000, 'the slow prepare step')
    expect(execFileSync('sh', ['-c', 'ps -eo args | grep -c "^sleep 37$" || true']).toString().trim()).toBe('3')
    run.child.kill('SIGINT')
    const result = await run.result
    expect(result.code, result.output).toBe(130)
    await checkFleet(paths(), '3')
    // the remote sleep was killed with its process group
    expect(execFileSync('sh', ['-c', 'ps -eo args | grep -c "^sleep 37$" || true']).toString().trim()).toBe('0')
  }, 60_000)

  it('reverts every switched host and unlocks on SIGINT after the switch', async () => {
    const marker = path.join(servers.workDir, 'sigint-switched')
    const run = startDep(['deploy'], { cwd: dir, env: { SLOW_SWITCHED: marker } })
    await waitFor(() => ALIASES.every((a) => existsSync(`${marker}.${a}`)), 30_000, 'the post-switch step')
    const switched = await currentOf(deployPathOf('web1', 'lock'))
    expect(switched).not.toBe('releases/3')
    run.child.kill('SIGINT')
    const result = await run.result
    expect(result.code, result.output).toBe(130)
    await checkFleet(paths(), '3')
    expect(await statusOf(deployPathOf('web2', 'lock'), switched!.split('/')[1])).toBe('failed')
  }, 60_000)
})

describe('hostile paths and values', () => {
  it('deploys into paths with spaces, quotes and $(…) and runs nothing it should not', async () => {
    const dir = path.join(base, 'hostile')
    const pwned = path.join(servers.workDir, 'pwned')
    const weird = (alias: string) => path.join(servers.workDir, `it's a "dir" $(touch ${pwned}) \`touch ${pwned}\``, alias)
    await writeDeployfile(
      dir,
      deployfileText({
        deployPath: weird,
        extra: `
set('shared_files', ['config/app.env', "odd name's $(touch ${pwned}).txt"])
task('show:value', async (ctx) => { await ctx.run\`printf '%s' \${"a 'quoted' $(touch ${pwned}) value"} > \${ctx.host.alias === 'web1' ? '${pwned}-check' : '/dev/null'}\` })
after('deploy:success', 'show:value')
`,
      }),
    )
    const result = await dep(['deploy'], { cwd: dir })
    expect(result.code, result.output).toBe(0)
    await checkFleet(ALIASES.map(weird), '1')
    expect(existsSync(path.join(weird('web1'), 'shared', `odd name's $(touch ${pwned}).txt`))).toBe(true)
    expect(await readFile(`${pwned}-check`, 'utf8')).toBe(`a 'quoted' $(touch ${pwned}) value`)
    expect(existsSync(pwned)).toBe(false)
  }, 60_000)
})

describe('the git strategy', () => {
  it('mirrors the repository and exports the wanted branch, tag or revision', async () => {
    const dir = path.join(base, 'git')
    const repo = path.join(servers.workDir, 'repo.git')
    const work = path.join(base, 'git-work')
    const git = (args: string[], cwd = work) =>
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.test', ...args], { cwd, encoding: 'utf8' }).trim()
    await mkdir(work, { recursive: true })
    git(['init', '-q', '-b', 'main'])
    await writeFile(path.join(work, 'index.html'), 'v1\n')
    git(['add', '.'])
    git(['commit', '-qm', 'v1'])
    const v1 = git(['rev-parse', 'HEAD'])
    git(['tag', 'v1.0'])
    await writeFile(path.join(work, 'index.html'), 'v2\n')
    git(['commit', '-qam', 'v2'])
    const v2 = git(['rev-parse', 'HEAD'])
    git(['checkout', '-qb', 'feature'])
    await writeFile(path.join(work, 'index.html'), 'feature\n')
    git(['commit', '-qam', 'feature'])
    const feature = git(['rev-parse', 'HEAD'])
    git(['clone', '-q', '--bare', work, repo], base)
    execFileSync('chown', ['-R', servers.user, repo])

    const deployPath = (alias: string) => path.join(servers.workDir, 'git-deploys', alias)
    await writeDeployfile(
      dir,
      deployfileText({ deployPath, extra: `set('update_code_strategy', 'git')\nset('repository', ${JSON.stringify(repo)})\nset('branch', 'main')` }),
    )
    const expectRelease = async (release: string, content: string, revision: string) => {
      for (const alias of ALIASES) {
        expect(await currentOf(deployPath(alias))).toBe(`releases/${release}`)
        expect(await readFile(path.join(deployPath(alias), 'releases', release, 'index.html'), 'utf8')).toBe(content)
        expect((await readFile(path.join(deployPath(alias), 'releases', release, 'REVISION'), 'utf8')).trim()).toBe(revision)
        expect((await ledgerOf(deployPath(alias))).pop()?.revision).toBe(revision)
      }
    }
    expect((await dep(['deploy'], { cwd: dir })).code).toBe(0)
    await expectRelease('1', 'v2\n', v2)
    expect(existsSync(path.join(deployPath('web1'), '.dep/repo/HEAD'))).toBe(true)
    expect((await dep(['deploy', '--tag', 'v1.0'], { cwd: dir })).code).toBe(0)
    await expectRelease('2', 'v1\n', v1)
    expect((await dep(['deploy', '--branch', 'feature'], { cwd: dir })).code).toBe(0)
    await expectRelease('3', 'feature\n', feature)
    expect((await dep(['deploy', '--revision', v1.slice(0, 10)], { cwd: dir })).code).toBe(0)
    await expectRelease('4', 'v1\n', v1)
    const missing = await dep(['deploy', '--branch', 'no-such-branch'], { cwd: dir })
    expect(missing.code).toBe(1)
    expect(missing.output).toMatch(/revision "no-such-branch" not found/)
    await checkFleet(ALIASES.map(deployPath), '4')
  }, 60_000)
})
