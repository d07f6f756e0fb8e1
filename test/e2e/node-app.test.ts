/**
 * The Node.js plugin end to end: two real OpenSSH daemons on loopback, the
 * built `dep` binary, the fixture app (test/fixtures/node-app) deployed from a
 * local git repository and run by pm2 (from npm, installed by the test
 * setup) in cluster mode, one pm2 daemon per host (its own PM2_HOME).
 *
 * A probe per host asks the app for its release every ~20 ms on a new
 * connection while three deploys happen (the lockfile unchanged: node_modules
 * hard-linked; node_modules_reuse off: a fresh npm ci; a local build uploaded):
 * not one request may fail, and once a deploy returned, every answer comes
 * from the new release. Then a release that does not start is deployed: its health check
 * fails, and every host goes back to the release before.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chown, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { currentOf, dep, isLocked, releasesOf, statusOf, writeDeployfile, type DepResult } from '../support/dep.js'
import { createNodeAppRepo, git, probeApp, releaseAt, type Probe } from '../support/node-app.js'
import { installPm2, killPm2 } from '../support/pm2.js'
import { freePort, startSshServers, type SshServers } from '../support/sshd.js'

const execFileAsync = promisify(execFile)

const ALIASES = ['node1', 'node2']
const DEPLOY_TIMEOUT_MS = 240_000

let servers: SshServers
let pm2Bin: string
let base: string
let project: string
let repo: string
const ports: number[] = []

const deployPathOf = (index: number) => path.join(servers.workDir, 'app', ALIASES[index])
const pm2HomeOf = (index: number) => path.join(servers.workDir, `pm2-${ALIASES[index]}`)

/** `dep …` in the project; the output carries the tail of each host's pm2 error log, for a failing assertion. */
async function depRun(args: string[]): Promise<DepResult> {
  const result = await dep(args, { cwd: project, timeoutMs: DEPLOY_TIMEOUT_MS })
  for (const index of ALIASES.keys()) {
    const logs = path.join(pm2HomeOf(index), 'logs')
    const files = [...(await readdir(logs).catch(() => [] as string[])).filter((f) => f.includes('error')), '../pm2.log']
    for (const file of files) {
      const tail = (await readFile(path.join(logs, file), 'utf8').catch(() => '')).split('\n').slice(-60).join('\n')
      result.output += `\n--- ${ALIASES[index]} ${file}\n${tail}`
    }
  }
  return result
}

function deployfileText(): string {
  const hosts = ALIASES.map((alias, index) => {
    const config = { pm2_home: pm2HomeOf(index), node_health_url: `http://127.0.0.1:${ports[index]}/health` }
    return `host(${JSON.stringify(alias)}, { ...${JSON.stringify(servers.hostOptions(index))}, deployPath: ${JSON.stringify(deployPathOf(index))}, config: ${JSON.stringify(config)} })`
  })
  return `
import { host, set, use } from 'deployfile'
import { node } from 'deployfile/plugins/node'

use(node)
set('repository', ${JSON.stringify(repo)})
set('branch', 'main')
set('keep_releases', 5)
set('shared_files', ['.env'])
// node and npm are on the hosts' PATH; pm2 is where the test setup installed it.
set('node_bin', ${JSON.stringify(pm2Bin)})
set('healthcheck_retries', 4)
set('healthcheck_timeout', 3)

${hosts.join('\n')}
`
}

async function chownTree(dir: string): Promise<void> {
  const { uid, gid } = await stat(servers.workDir)
  await execFileAsync('chown', ['-R', `${uid}:${gid}`, dir])
  await chown(dir, uid, gid)
}

/** Every host serves `release` (current, the app's answer), unlocked, no release link left. */
async function expectFleetOn(release: string): Promise<void> {
  for (const [index, port] of ports.entries()) {
    const deployPath = deployPathOf(index)
    expect(await currentOf(deployPath), deployPath).toBe(`releases/${release}`)
    expect(await releaseAt(port), `${ALIASES[index]} answers`).toBe(release)
    expect(existsSync(path.join(deployPath, 'release')), `${deployPath}: no release link`).toBe(false)
    expect(isLocked(deployPath), `${deployPath}: unlocked`).toBe(false)
  }
}

async function inodeOf(file: string): Promise<number> {
  return (await stat(file)).ino
}

/** When each deploy of threeDeploys returned, by release: every request sent later must answer that release (or a newer one). */
const deployedAt = new Map<string, number>()

/** Deploys 2, 3 and 4 while `probes` run, waiting each time until every probe saw the new release. */
async function threeDeploys(probes: Probe[]): Promise<void> {
  await Promise.all(probes.map((probe) => probe.waitForRelease('1')))

  // 2: the lockfile is unchanged: node_modules comes from the live release, as hard links.
  const second = await depRun(['deploy'])
  expect(second.code, second.output).toBe(0)
  deployedAt.set('2', Date.now())
  expect(second.output).toContain('package-lock.json unchanged: node_modules copied from the live release (hard links)')
  for (const index of ALIASES.keys()) {
    const file = (release: string) => path.join(deployPathOf(index), `releases/${release}/node_modules/greeting/index.js`)
    expect(await inodeOf(file('2'))).toBe(await inodeOf(file('1')))
  }
  await Promise.all(probes.map((probe) => probe.waitForRelease('2')))

  // 3: node_modules_reuse off: a fresh npm ci --omit=dev, its own files.
  const third = await depRun(['deploy', '-o', 'node_modules_reuse=false'])
  expect(third.code, third.output).toBe(0)
  deployedAt.set('3', Date.now())
  expect(third.output).not.toContain('node_modules copied from the live release')
  for (const index of ALIASES.keys()) {
    const file = (release: string) => path.join(deployPathOf(index), `releases/${release}/node_modules/greeting/index.js`)
    expect(await inodeOf(file('3'))).not.toBe(await inodeOf(file('2')))
  }
  await Promise.all(probes.map((probe) => probe.waitForRelease('3')))

  // 4: built here (npm ci in a staging copy of a local checkout) and uploaded whole.
  const checkout = path.join(base, 'checkout')
  await cp(repo, checkout, { recursive: true })
  const fourth = await depRun(['deploy', '-o', 'node_build=local', '-o', `upload_path=${checkout}`])
  expect(fourth.code, fourth.output).toBe(0)
  deployedAt.set('4', Date.now())
  for (const index of ALIASES.keys()) {
    expect(existsSync(path.join(deployPathOf(index), 'releases/4/node_modules/greeting/index.js'))).toBe(true)
  }
  await Promise.all(probes.map((probe) => probe.waitForRelease('4')))
}

beforeAll(async () => {
  pm2Bin = await installPm2()
  servers = await startSshServers(ALIASES.length)
  base = await mkdtemp(path.join(tmpdir(), 'deployfile-node-e2e-'))
  project = path.join(base, 'project')
  repo = path.join(servers.workDir, 'node-app')
  await createNodeAppRepo(repo)
  await chownTree(repo)
  for (const index of ALIASES.keys()) {
    ports.push(await freePort())
    // The app reads its port from the shared .env, as a real service reads its own settings.
    await mkdir(path.join(deployPathOf(index), 'shared'), { recursive: true })
    await writeFile(path.join(deployPathOf(index), 'shared/.env'), `PORT=${ports[index]}\n`)
    await chownTree(deployPathOf(index))
  }
  await writeDeployfile(project, deployfileText())
}, 300_000)

afterAll(async () => {
  if (process.env.NODE_E2E_KEEP) return
  const alive: number[] = []
  if (pm2Bin && servers) for (const index of ALIASES.keys()) alive.push(...(await killPm2(pm2Bin, pm2HomeOf(index))))
  await servers?.stopAll()
  if (base) await rm(base, { recursive: true, force: true })
  // A pm2 daemon outliving the tests would keep the ports and the CPU busy.
  expect(alive).toEqual([])
}, 120_000)

describe('a Node service under pm2, deployed by the node plugin', () => {
  it('the first deploy installs the dependencies and starts the app on every host', async () => {
    const result = await depRun(['deploy'])
    expect(result.code, result.output).toBe(0)
    await expectFleetOn('1')
    for (const index of ALIASES.keys()) {
      expect(existsSync(path.join(deployPathOf(index), 'releases/1/node_modules/greeting/index.js'))).toBe(true)
    }
  })

  it('three deploys under a probe of every host: zero failed requests, the answers move to each new release', async () => {
    const probes = ports.map((port) => probeApp({ port, intervalMs: 20, maxRequests: 30_000, durationMs: 600_000 }))
    try {
      await threeDeploys(probes)
    } finally {
      await Promise.all(probes.map((probe) => probe.stop()))
    }
    const results = await Promise.all(probes.map((probe) => probe.stop()))

    for (const [index, result] of results.entries()) {
      expect(result.failures, ALIASES[index]).toEqual([])
      expect(result.releasesSeen, ALIASES[index]).toEqual(['1', '2', '3', '4'])
      // While pm2 reloads one worker after the other, old and new answer side by side; once dep has returned, only the new one.
      for (const [release, at] of deployedAt) {
        const stale = result.answers.filter((answer) => answer.sentAt > at && Number(answer.release) < Number(release))
        expect(stale, `${ALIASES[index]}: answers older than release ${release} after its deploy returned`).toEqual([])
      }
      // A probe that asked only a handful of times would prove nothing.
      expect(result.total, ALIASES[index]).toBeGreaterThan(50)
    }
    await expectFleetOn('4')
  }, 900_000)

  it('a release that does not answer fails its health check: every host goes back to the release before', async () => {
    await writeFile(path.join(repo, 'BROKEN'), 'server.js throws at start when this file is in the release\n')
    await git(repo, 'add', 'BROKEN')
    await git(repo, 'commit', '--quiet', '-m', 'a release that does not start')
    await chownTree(repo)

    const result = await depRun(['deploy'])
    expect(result.code, result.output).toBe(1)
    expect(result.output).toMatch(/http:\/\/127\.0\.0\.1:\d+\/health did not answer 2xx on node[12] after 4 tries/)
    expect(result.output).toContain('The fleet goes back to the release it served.')
    await expectFleetOn('4')
    for (const index of ALIASES.keys()) {
      expect(await releasesOf(deployPathOf(index))).not.toContain('5')
      expect(await statusOf(deployPathOf(index), '5')).toBe('failed')
    }
  }, 600_000)
})
