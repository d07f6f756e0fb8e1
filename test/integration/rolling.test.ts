/**
 * Rolling and canary deploys against six real OpenSSH daemons, through the
 * built `dep`: batches switch one after the other, each checked before the
 * next switches; a failure in a later batch takes every host back; --max-fail
 * leaves the failed host on its release (exit 7) and the next deploy converges
 * it; a failing canary stops the run before any other host switches.
 *
 * One project, one fleet, deploys in order (each test starts where the one
 * before left the hosts): release 1 rolls out, 2 fails and is reverted, 3 goes
 * live on five hosts, 4 converges the fleet, 5 dies on the canary.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunEvent } from '../../src/model/events.js'
import { commonDeployfile, currentOf, dep, isLocked, ledgerOf, releasesOf, writeDeployfile } from '../support/dep.js'
import { startSshServers, type SshServers } from '../support/sshd.js'

const ALIASES = ['web1', 'web2', 'web3', 'web4', 'web5', 'web6']
let servers: SshServers
let base: string
let dir: string
let paths: string[]

/** `app:check`, after the health check (post-switch): fails on the hosts FAIL_CHECK names. */
const CHECK = `
task('app:check', async (ctx) => {
  const failing = (process.env.FAIL_CHECK ?? '').split(',')
  if (failing.includes(ctx.host.alias)) await ctx.run('echo "app on $(hostname) is unhealthy" >&2; exit 42')
})
after('deploy:healthcheck', 'app:check')
`

beforeAll(async () => {
  servers = await startSshServers(ALIASES.length)
  base = await mkdtemp(path.join(tmpdir(), 'deployfile-rolling-'))
  const appDir = path.join(base, 'app')
  await mkdir(path.join(appDir, 'config'), { recursive: true })
  await mkdir(path.join(appDir, 'logs'), { recursive: true })
  await writeFile(path.join(appDir, 'index.html'), '<h1>v1</h1>\n')
  await writeFile(path.join(appDir, 'config/app.env'), 'MODE=seed\n')
  dir = path.join(base, 'project')
  paths = ALIASES.map((alias) => path.join(servers.workDir, 'rolling', alias))
  const hosts = ALIASES.map((alias, index) => ({ alias, options: servers.hostOptions(index), deployPath: paths[index] }))
  await writeDeployfile(dir, commonDeployfile(appDir, hosts, CHECK))
})

afterAll(async () => {
  await servers?.stopAll()
  if (base) await rm(base, { recursive: true, force: true })
})

function eventsOf(stdout: string): RunEvent[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as RunEvent)
}

/** Positions in the event stream of each `type` event of `task` on `host`. */
function positions(events: RunEvent[], type: 'step:start' | 'step:end', task: string, hosts: string[]): number[] {
  return events.flatMap((e, i) => (e.type === type && e.task === task && hosts.includes(e.host) ? [i] : []))
}

function switchedHosts(events: RunEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'step:start' && e.task === 'deploy:symlink' ? [e.host] : []))
}

const currents = () => Promise.all(paths.map(currentOf))
const rolling = (...more: string[]) => ['deploy', '--json', '--strategy', 'rolling', '--batch', '2', ...more]

describe('dep deploy --strategy rolling', () => {
  it('switches batch by batch: no host of a batch switches before the batch before it was checked', async () => {
    const result = await dep(rolling(), { cwd: dir })
    expect(result.code, result.output).toBe(0)
    expect(await currents()).toEqual(ALIASES.map(() => 'releases/1'))
    for (const deployPath of paths) expect(isLocked(deployPath)).toBe(false)

    const events = eventsOf(result.stdout)
    const batches = events.flatMap((e) => (e.type === 'batch:start' ? [e.hosts] : []))
    expect(batches).toEqual([['web1', 'web2'], ['web3', 'web4'], ['web5', 'web6']])
    expect(switchedHosts(events).sort()).toEqual(ALIASES)
    for (let k = 1; k < batches.length; k++) {
      const checked = Math.max(...positions(events, 'step:end', 'app:check', batches[k - 1]), ...positions(events, 'step:end', 'deploy:healthcheck', batches[k - 1]))
      const switched = Math.min(...positions(events, 'step:start', 'deploy:symlink', batches[k]))
      expect(positions(events, 'step:end', 'app:check', batches[k - 1])).toHaveLength(2)
      expect(checked, `batch ${k + 1} switched before batch ${k} was checked`).toBeLessThan(switched)
    }
    // Every host prepared before the first switch; the finish steps after the last check.
    const lastPrepared = Math.max(...positions(events, 'step:end', 'deploy:prepared', ALIASES))
    expect(lastPrepared).toBeLessThan(Math.min(...positions(events, 'step:start', 'deploy:symlink', ALIASES)))
    expect(Math.max(...positions(events, 'step:end', 'app:check', ALIASES))).toBeLessThan(Math.min(...positions(events, 'step:start', 'deploy:unlock', ALIASES)))
  })

  it('a failure in batch 2 takes batch 1 back too: every host on the release before, unlocked, exit 1', async () => {
    const result = await dep(rolling(), { cwd: dir, env: { FAIL_CHECK: 'web4' } })
    expect(result.code, result.output).toBe(1)
    const events = eventsOf(result.stdout)
    // Batch 1 went live and batch 2 switched before the failure; batch 3 never switched.
    expect(switchedHosts(events).sort()).toEqual(['web1', 'web2', 'web3', 'web4'])
    expect(await currents()).toEqual(ALIASES.map(() => 'releases/1'))
    for (const deployPath of paths) expect(isLocked(deployPath)).toBe(false)
    for (const deployPath of paths) expect(await releasesOf(deployPath)).toEqual(['1'])
    const web1 = await ledgerOf(paths[0])
    expect(web1.filter((e) => e.release === '2').map((e) => e.status)).toEqual(['prepared', 'live', 'failed'])
    expect((await ledgerOf(paths[5])).filter((e) => e.release === '2').map((e) => e.status)).toEqual(['prepared', 'failed'])
    expect(result.stderr).toMatch(/task: +app:check\n +host: +web4\n/)
    expect(result.stderr).toMatch(/the hosts that switched went back/)
  })

  it('--max-fail 1: the failed host stays on its release, the others go live; exit 7 names it; the next deploy converges', async () => {
    const result = await dep(rolling('--max-fail', '1'), { cwd: dir, env: { FAIL_CHECK: 'web3' } })
    expect(result.code, result.output).toBe(7)
    expect(await currents()).toEqual(['releases/3', 'releases/3', 'releases/1', 'releases/3', 'releases/3', 'releases/3'])
    for (const deployPath of paths) expect(isLocked(deployPath)).toBe(false)
    expect(await releasesOf(paths[2])).toEqual(['1'])
    expect((await ledgerOf(paths[2])).filter((e) => e.release === '3').map((e) => e.status)).toEqual(['prepared', 'live', 'failed'])
    // Bad on web3 only: the others went live on it.
    expect((await ledgerOf(paths[2])).find((e) => e.release === '3' && e.status === 'failed')).toMatchObject({ left_out: true })
    expect((await ledgerOf(paths[0])).filter((e) => e.release === '3').map((e) => e.status)).toEqual(['prepared', 'live'])
    expect(result.stderr).toMatch(/Left out by --max-fail \(drifted by choice; the next deploy converges them\): web3\n/)
    expect(result.stderr).toMatch(/web3: app:check failed \(.*\); stays on release 1: drifted by choice/)
    expect(result.stderr).toMatch(/1 of 6 hosts were left out \(exit 7/)
    const events = eventsOf(result.stdout)
    const end = events.find((e) => e.type === 'run:end')
    expect(end?.type === 'run:end' && end.summary.leftOut?.map((l) => l.host)).toEqual(['web3'])
    // The hosts left out are not a split the recovery reports, but dep releases still shows them.
    expect(result.output).not.toMatch(/fleet is split/)
    const releases = await dep(['releases'], { cwd: dir })
    expect(releases.code, releases.output).toBe(0)
    expect(releases.output).toMatch(/hosts disagree on the live release: web3 serves 1; web1, web2, web4, web5, web6 serve 3|web1, web2, web4, web5, web6 serve 3; web3 serves 1/)

    const converge = await dep(['deploy'], { cwd: dir })
    expect(converge.code, converge.output).toBe(0)
    expect(await currents()).toEqual(ALIASES.map(() => 'releases/4'))
    for (const deployPath of paths) expect(isLocked(deployPath)).toBe(false)
    // Release 3, live on five hosts until now, is kept there (keep_releases 3): web3's record does not make it bad fleet-wide.
    expect(await releasesOf(paths[0])).toEqual(['1', '3', '4'])
    expect(await releasesOf(paths[2])).toEqual(['1', '4'])
  })

  it('refuses rolling options without --strategy rolling or with bad values (exit 2, naming the option); --dry-run shows the batches', async () => {
    const without = await dep(['deploy', '--batch', '2'], { cwd: dir })
    expect(without.code, without.output).toBe(2)
    expect(without.stderr).toMatch(/--batch only goes with --strategy rolling/)
    const zero = await dep(['deploy', '--strategy', 'rolling', '--max-fail', '0'], { cwd: dir })
    expect(zero.code, zero.output).toBe(2)
    expect(zero.stderr).toMatch(/--max-fail 0: expected/)
    const noSwitch = await dep(['deploy:unlock', '--strategy', 'rolling'], { cwd: dir })
    expect(noSwitch.code, noSwitch.output).toBe(2)
    expect(noSwitch.stderr).toMatch(/deploy:unlock has no 'switch' step/)
    const plan = await dep(['deploy', '--plan', '--strategy', 'rolling', '--batch', '2', '--max-fail', '34%'], { cwd: dir })
    expect(plan.code, plan.output).toBe(0)
    expect(plan.stdout).toContain('  batch 3/3: web5, web6\n')
    expect(plan.stdout).toContain('up to 2 failed host(s) are left out')
    const dry = await dep(['deploy', '--dry-run', '--strategy', 'rolling', '--batch', '50%', '--canary', '1'], { cwd: dir })
    expect(dry.code, dry.output).toBe(0)
    expect(dry.stdout).toContain('▸ batch 1/3 (canary): web1\n')
    expect(dry.stdout).toContain('▸ batch 2/3: web2, web3, web4\n')
    expect(dry.stdout).toContain('▸ batch 3/3: web5, web6\n')
  })

  it('--canary 1 that fails stops the run: no other host ever switches, every host stays on its release, exit 1', async () => {
    const result = await dep(rolling('--canary', '1', '--max-fail', '1'), { cwd: dir, env: { FAIL_CHECK: 'web1' } })
    expect(result.code, result.output).toBe(1)
    const events = eventsOf(result.stdout)
    expect(events.flatMap((e) => (e.type === 'batch:start' ? [e.hosts] : []))).toEqual([['web1']])
    expect(switchedHosts(events)).toEqual(['web1'])
    expect(await currents()).toEqual(ALIASES.map(() => 'releases/4'))
    for (const deployPath of paths) expect(isLocked(deployPath)).toBe(false)
    expect((await ledgerOf(paths[0])).filter((e) => e.release === '5').map((e) => e.status)).toEqual(['prepared', 'live', 'failed'])
    for (const deployPath of paths.slice(1)) {
      expect((await ledgerOf(deployPath)).filter((e) => e.release === '5').map((e) => e.status)).toEqual(['prepared', 'failed'])
    }
  })
})
