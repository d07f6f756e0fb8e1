/**
 * Issue 12, item 2: a dry run runs nothing that changes anything and talks to
 * nothing but each host's read-only probe. Through the built `dep`, against a
 * real OpenSSH daemon, with a health check URL that counts its requests.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Command, renderCommand } from '../../src/shell/command.js'
import { startSshServers, type SshServers } from '../support/sshd.js'
import { commonDeployfile, currentOf, dep, isLocked, writeDeployfile } from '../support/dep.js'

let servers: SshServers
let base: string
let appDir: string
let health: http.Server
let healthRequests = 0

async function project(root: string, hostOptions: Record<string, unknown>): Promise<{ dir: string; deployPath: string }> {
  const dir = path.join(base, root)
  const deployPath = path.join(servers.workDir, root)
  const url = `http://127.0.0.1:${(health.address() as AddressInfo).port}/up`
  await writeDeployfile(
    dir,
    commonDeployfile(
      appDir,
      [{ alias: 'web1', options: hostOptions, deployPath }],
      `set('healthcheck_url', ${JSON.stringify(url)})\nset('healthcheck_command', 'test -f index.html && echo "$HOME" >/dev/null')`,
    ),
  )
  return { dir, deployPath }
}

beforeAll(async () => {
  servers = await startSshServers(1)
  base = await mkdtemp(path.join(tmpdir(), 'deployfile-dry-'))
  appDir = path.join(base, 'app')
  await mkdir(path.join(appDir, 'config'), { recursive: true })
  await writeFile(path.join(appDir, 'index.html'), '<h1>hi</h1>\n')
  await writeFile(path.join(appDir, 'config/app.env'), 'MODE=seed\n')
  health = http.createServer((_, response) => {
    healthRequests++
    response.end('ok')
  })
  await new Promise<void>((resolve) => health.listen(0, '127.0.0.1', () => resolve()))
})

afterAll(async () => {
  await new Promise<void>((resolve) => (health ? health.close(() => resolve()) : resolve()))
  await servers?.stopAll()
  if (base) await rm(base, { recursive: true, force: true })
})

describe('dep deploy --dry-run', () => {
  it('reads the real state (release 3 after 1 and 2), changes nothing, makes no HTTP request, exits 0', async () => {
    const { dir, deployPath } = await project('reads', servers.hostOptions(0))
    for (let i = 0; i < 2; i++) expect((await dep(['deploy'], { cwd: dir })).code).toBe(0)
    const requestsBefore = healthRequests
    const releasesBefore = await readdir(path.join(deployPath, 'releases'))

    const result = await dep(['deploy', '--dry-run'], { cwd: dir })
    expect(result.code, result.output).toBe(0)
    expect(result.output).toContain(`${deployPath}/releases/3`)
    expect(result.output).not.toContain(`${deployPath}/releases/1 `)
    expect(result.output).toMatch(/would check http:\/\/127\.0\.0\.1/)
    expect(result.output).toMatch(/Only read-only commands ran/)
    // Exactly the text the transport would send: the command rendered with its cwd (renderCommand),
    // not a format of the dry run's own.
    expect(result.output).toContain(`\n${renderCommand(new Command('test -f index.html && echo "$HOME" >/dev/null', [], { cwd: `${deployPath}/releases/3` }))}\n`)
    expect(result.output).not.toContain('(cd ')
    expect(healthRequests).toBe(requestsBefore)
    expect(await readdir(path.join(deployPath, 'releases'))).toEqual(releasesBefore)
    expect(await currentOf(deployPath)).toBe('releases/2')
    expect(isLocked(deployPath)).toBe(false)
  }, 120_000)

  it('names a held lock as what would stop a real run, and still exits 0 without touching it', async () => {
    const { dir, deployPath } = await project('held', servers.hostOptions(0))
    expect((await dep(['deploy'], { cwd: dir })).code).toBe(0)
    const lockDir = path.join(deployPath, '.dep/deploy.lock')
    await mkdir(lockDir)
    await writeFile(path.join(lockDir, 'owner.json'), `${JSON.stringify({ user: 'alice', machine: 'laptop', run_id: 'other-run' })}\n`)
    const result = await dep(['deploy', '--dry-run'], { cwd: dir })
    expect(result.code, result.output).toBe(0)
    expect(result.output).toMatch(/the lock is held by alice on laptop.*a real run would stop here \(exit 4\)/)
    expect(existsSync(path.join(lockDir, 'owner.json'))).toBe(true)
    await rm(lockDir, { recursive: true })
  }, 120_000)

  it('an unreachable host is exit 3 (the dry run connects); --offline connects to nothing and says so', async () => {
    const { dir } = await project('offline', { ...servers.hostOptions(0), port: 1, connectRetries: 0 })
    const online = await dep(['deploy', '--dry-run'], { cwd: dir })
    expect(online.code, online.output).toBe(3)
    expect(online.output).toMatch(/Cannot connect to web1/)

    const offline = await dep(['deploy', '--dry-run', '--offline'], { cwd: dir })
    expect(offline.code, offline.output).toBe(0)
    expect(offline.output).toMatch(/offline: nothing was read from the hosts/)
    expect(offline.output).not.toMatch(/Cannot connect/)
  }, 120_000)

  it('--offline without --dry-run is refused (exit 2)', async () => {
    const { dir } = await project('refused', servers.hostOptions(0))
    const result = await dep(['deploy', '--offline'], { cwd: dir })
    expect(result.code, result.output).toBe(2)
    expect(result.output).toMatch(/--offline only goes with --dry-run/)
  }, 60_000)
})
