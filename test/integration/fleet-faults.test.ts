/**
 * Connections cut or frozen at chosen moments of a deploy, on one host of
 * three, through the built `dep` against real OpenSSH daemons. web3 is reached
 * through a fault proxy; a hook inside the deployfile asks the proxy (over
 * HTTP) to cut or freeze at an exact step. After each fault: what each host
 * serves, its ledger and lock; then `dep releases`, a converging `dep deploy`
 * and a `dep rollback`.
 */
import { appendFile, readFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js'
import { startSshServers, type SshServers } from '../support/sshd.js'
import { commonDeployfile, currentOf, dep, isLocked, ledgerOf, startDep, waitFor, writeDeployfile } from '../support/dep.js'

const ALIASES = ['web1', 'web2', 'web3']
let servers: SshServers
let proxy: FaultProxy
let base: string
let appDir: string

/** A project whose web3 goes through the fault proxy; FAULT=<when>:<cut|freeze> breaks it at that moment. */
async function project(root: string): Promise<{ dir: string; paths: string[] }> {
  const dir = path.join(base, root)
  const paths = ALIASES.map((alias) => path.join(servers.workDir, root, alias))
  const hosts = ALIASES.map((alias, index) => ({
    alias,
    options: { ...servers.hostOptions(index), ...(alias === 'web3' ? { port: proxy.port } : {}) },
    deployPath: paths[index],
  }))
  await writeDeployfile(
    dir,
    commonDeployfile(
      appDir,
      hosts,
      `
const [faultAt, faultMode] = (process.env.FAULT ?? '').split(':')
async function fault(ctx, at) {
  if (faultAt !== at || ctx.host.alias !== 'web3' || ctx.failure) return
  // Before the switch: what web3 queued so far is sent first, so only the switch finds the connection gone.
  if (at === 'before-switch') await ctx.run('true')
  await fetch(${JSON.stringify(proxy.controlUrl)} + '/' + faultMode)
  // After the switch, the post-switch check of web3 fails once its connection is gone.
  if (at === 'post-switch') await ctx.run('true')
}
before('deploy:update_code', (ctx) => fault(ctx, 'prepare'))
before('deploy:symlink', (ctx) => fault(ctx, 'before-switch'))
after('deploy:symlink', (ctx) => fault(ctx, 'post-switch'))
before('deploy:unlock', (ctx) => fault(ctx, 'finish'))
after('deploy:symlink', async (ctx) => {
  if (process.env.SLOW_SWITCHED) await ctx.run('touch ' + JSON.stringify(process.env.SLOW_SWITCHED + '.' + ctx.host.alias) + ' && sleep 30')
})
`,
    ),
  )
  return { dir, paths }
}

const currents = (paths: string[]) => Promise.all(paths.map(currentOf))

beforeAll(async () => {
  servers = await startSshServers(3)
  proxy = await startFaultProxy({ targetPort: servers.servers[2].port })
  // web3 is reached through the proxy's port: its host key is known there too.
  await appendFile(servers.knownHostsFile, `[127.0.0.1]:${proxy.port} ${servers.servers[2].hostKeyPub}\n`)
  base = await mkdtemp(path.join(tmpdir(), 'deployfile-faults-'))
  appDir = path.join(base, 'app')
  await mkdir(path.join(appDir, 'config'), { recursive: true })
  await mkdir(path.join(appDir, 'logs'), { recursive: true })
  await writeFile(path.join(appDir, 'index.html'), '<h1>hi</h1>\n')
  await writeFile(path.join(appDir, 'config/app.env'), 'MODE=seed\n')
})

afterEach(async () => {
  await proxy.restore()
})

afterAll(async () => {
  await proxy?.close()
  await servers?.stopAll()
  if (base) await rm(base, { recursive: true, force: true })
})

/** After the fault: the fleet converges with a deploy (taking over web3's lock), and rolls back as one. */
async function convergeAndRollBack(dir: string, paths: string[], expected: { deploy: string; rollback: string }): Promise<void> {
  const deploy = await dep(['deploy'], { cwd: dir })
  expect(deploy.code, deploy.output).toBe(0)
  expect(await currents(paths)).toEqual(Array(3).fill(`releases/${expected.deploy}`))
  for (const deployPath of paths) expect(isLocked(deployPath), deployPath).toBe(false)
  const rollback = await dep(['rollback'], { cwd: dir })
  expect(rollback.code, rollback.output).toBe(0)
  expect(await currents(paths)).toEqual(Array(3).fill(`releases/${expected.rollback}`))
}

describe('a connection cut on one host of three', () => {
  it('(a) during prepare: nothing switched anywhere; web3 named, its lock taken over by the next deploy', async () => {
    const { dir, paths } = await project('cut-prepare')
    expect((await dep(['deploy'], { cwd: dir })).code).toBe(0)
    const result = await dep(['deploy'], { cwd: dir, env: { FAULT: 'prepare:cut' } })
    expect(result.code, result.output).toBe(5)
    expect(result.output).toMatch(/web3 could not be cleaned up/)
    expect(await currents(paths)).toEqual(Array(3).fill('releases/1'))
    expect(isLocked(paths[0])).toBe(false)
    expect(isLocked(paths[2])).toBe(true)

    await proxy.restore()
    const releases = await dep(['releases'], { cwd: dir })
    expect(releases.code, releases.output).toBe(0)
    await convergeAndRollBack(dir, paths, { deploy: '3', rollback: '1' })
    // The half-made release 2 on web3 was cleaned up by the converging deploy.
    expect(existsSync(path.join(paths[2], 'releases/2'))).toBe(false)
  }, 120_000)

  it('(b) at the switch: the others switched and go back; web3 never got the switch, is named, exit 5', async () => {
    const { dir, paths } = await project('cut-before-switch')
    expect((await dep(['deploy'], { cwd: dir })).code).toBe(0)
    const result = await dep(['deploy'], { cwd: dir, env: { FAULT: 'before-switch:cut' } })
    expect(result.code, result.output).toBe(5)
    expect(result.output).toMatch(/\[web1\] ⚠ switched back to release 1/)
    expect(result.output).toMatch(/\[web3\] ⚠ lock kept/)
    // Connecting failed, so the switch was never sent: web3 is known to serve 1, like the others.
    expect(result.output).toMatch(/web3 could not be cleaned up: every host serves 1/)
    expect(result.output).toMatch(/dep rollback/)
    expect(await currents(paths)).toEqual(Array(3).fill('releases/1'))
    expect(isLocked(paths[2])).toBe(true)
    await proxy.restore()
    await convergeAndRollBack(dir, paths, { deploy: '3', rollback: '1' })
  }, 120_000)

  it('(c) after web3 switched, during the post-switch check: web3 still serves the new release, named, recorded, converged', async () => {
    const { dir, paths } = await project('cut-post-switch')
    expect((await dep(['deploy'], { cwd: dir })).code).toBe(0)
    const result = await dep(['deploy'], { cwd: dir, env: { FAULT: 'post-switch:cut' } })
    expect(result.code, result.output).toBe(5)
    expect(result.output).toMatch(/The fleet is split: web3 still serves 2; web1, web2 serve 1/)
    expect(await currents(paths)).toEqual(['releases/1', 'releases/1', 'releases/2'])
    // The reachable hosts recorded who drifted; web3 keeps the lock of that run.
    for (const deployPath of paths.slice(0, 2)) {
      const failed = (await ledgerOf(deployPath)).filter((e) => e.release === '2' && e.status === 'failed')
      expect(failed.some((e) => JSON.stringify(e).includes('"drifted":["web3"]')), deployPath).toBe(true)
      expect(isLocked(deployPath)).toBe(false)
    }
    expect(isLocked(paths[2])).toBe(true)

    await proxy.restore()
    const releases = await dep(['releases'], { cwd: dir })
    expect(releases.output).toMatch(/hosts disagree on the live release: web1, web2 serve 1; web3 serves 2/)
    // The record of the drift is on web1 and web2 (web3 could not be written): asked of the fleet, web3's lock says so.
    const locked = await dep(['deploy:is_locked'], { cwd: dir })
    expect(locked.output).toMatch(/\[web3\] locked by .*left this host drifted/)
    // A rollback converges first: every host to 1, the release web3 alone still serves (2) is bad fleet-wide.
    const rollback = await dep(['rollback'], { cwd: dir })
    expect(rollback.code, rollback.output).toBe(0)
    expect(await currents(paths)).toEqual(Array(3).fill('releases/1'))
    const deploy = await dep(['deploy'], { cwd: dir })
    expect(deploy.code, deploy.output).toBe(0)
    expect(await currents(paths)).toEqual(Array(3).fill('releases/3'))
  }, 120_000)

  it('(d) during the finish phase: the deploy is live, but the lock left on web3 makes it exit 6 naming the unlock command', async () => {
    const { dir, paths } = await project('cut-finish')
    const result = await dep(['deploy'], { cwd: dir, env: { FAULT: 'finish:cut' } })
    expect(result.code, result.output).toBe(6)
    expect(result.output).toMatch(/dep deploy:unlock --force web3/)
    expect(result.output).not.toMatch(/\[web3\] ✔ deploy:unlock/)
    expect(await currents(paths)).toEqual(Array(3).fill('releases/1'))
    expect(isLocked(paths[2])).toBe(true)
    await proxy.restore()
    expect((await dep(['deploy:unlock', '--force', 'web3'], { cwd: dir })).code).toBe(0)
    expect((await dep(['deploy'], { cwd: dir })).code).toBe(0)
  }, 120_000)
})

describe('a hung connection (no FIN, no RST)', () => {
  it('is found in seconds by the keepalive: web3 is named as drifted, the others went back', async () => {
    const { dir, paths } = await project('frozen')
    expect((await dep(['deploy'], { cwd: dir })).code).toBe(0)
    const result = await dep(['deploy'], { cwd: dir, env: { FAULT: 'post-switch:freeze' } })
    expect(result.code, result.output).toBe(5)
    expect(result.output).toMatch(/web3 still serves 2; web1, web2 serve 1/)
    expect((await currents(paths)).slice(0, 2)).toEqual(['releases/1', 'releases/1'])
    await proxy.restore()
    await convergeAndRollBack(dir, paths, { deploy: '3', rollback: '1' })
  }, 150_000)
})

describe('a second Ctrl-C', () => {
  it('stops at once, but first says what each host serves, marks the locks interrupted, and exits 5', async () => {
    const { dir, paths } = await project('double-sigint')
    expect((await dep(['deploy'], { cwd: dir })).code).toBe(0)
    const marker = path.join(servers.workDir, 'double-sigint')
    const run = startDep(['deploy'], { cwd: dir, env: { SLOW_SWITCHED: marker } })
    await waitFor(() => ALIASES.every((a) => existsSync(`${marker}.${a}`)), 60_000, 'the post-switch step')
    run.child.kill('SIGINT')
    await new Promise((r) => setTimeout(r, 50))
    run.child.kill('SIGINT')
    const result = await run.result
    expect(result.code, result.output).toBe(5)
    for (const alias of ALIASES) expect(result.output).toMatch(new RegExp(`${alias}.*(serves|current)`))
    const owners = await Promise.all(
      paths.filter(isLocked).map(async (p) => JSON.parse(await readFile(path.join(p, '.dep/deploy.lock/owner.json'), 'utf8')) as { state?: string }),
    )
    for (const owner of owners) expect(owner.state).toBe('interrupted')
    // The next deploy takes the interrupted locks over and converges the fleet.
    const again = await dep(['deploy'], { cwd: dir })
    expect(again.code, again.output).toBe(0)
    const live = await currents(paths)
    expect(new Set(live).size).toBe(1)
    for (const deployPath of paths) expect(isLocked(deployPath)).toBe(false)
  }, 150_000)
})
