/**
 * One fleet, one truth: the fleet-wide decisions of the common recipe against
 * three real OpenSSH daemons, through the built `dep` — fleet-wide rollback
 * after subset deploys, a rollback that cannot happen, another tool's layout,
 * a `current` outside releases/, lock faults (a full tmpfs, a directory the
 * deploy user cannot write, a path too long, a broken lock), release names.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withTmpfs } from '../support/tmpfs.js'
import { startSshServers, type SshServers } from '../support/sshd.js'
import { commonDeployfile, currentOf, dep, isLocked, ledgerOf, releasesOf, statusOf, writeDeployfile } from '../support/dep.js'

const ALIASES = ['web1', 'web2', 'web3']
let servers: SshServers
let base: string
let appDir: string

function deployfileFor(root: string, extra = '', deployPath = (alias: string) => path.join(servers.workDir, root, alias)): string {
  const hosts = ALIASES.map((alias, index) => ({ alias, options: servers.hostOptions(index), deployPath: deployPath(alias) }))
  return commonDeployfile(
    appDir,
    hosts,
    `
set('keep_releases', 5)
after('deploy:symlink', async (ctx) => {
  if (process.env.FAIL_AFTER_SWITCH === ctx.host.alias) await ctx.run('echo failing after the switch >&2; exit 42')
})
${extra}`,
  )
}

/** A project directory with a deployfile for `root`; returns it and the hosts' deploy paths. */
async function project(root: string, extra = ''): Promise<{ dir: string; paths: string[] }> {
  const dir = path.join(base, root)
  await writeDeployfile(dir, deployfileFor(root, extra))
  return { dir, paths: ALIASES.map((alias) => path.join(servers.workDir, root, alias)) }
}

async function currents(paths: string[]): Promise<Array<string | undefined>> {
  return Promise.all(paths.map(currentOf))
}

/** Runs a command as root on "the host" (this machine) and gives the tree to the deploy user. */
function asDeployUser(target: string): void {
  execFileSync('chown', ['-R', `${servers.user}:`, target])
}

beforeAll(async () => {
  servers = await startSshServers(3)
  base = await mkdtemp(path.join(tmpdir(), 'deployfile-fleet-'))
  appDir = path.join(base, 'app')
  await mkdir(path.join(appDir, 'config'), { recursive: true })
  await mkdir(path.join(appDir, 'logs'), { recursive: true })
  await writeFile(path.join(appDir, 'index.html'), '<h1>v1</h1>\n')
  await writeFile(path.join(appDir, 'config/app.env'), 'MODE=seed\n')
})

afterAll(async () => {
  await servers?.stopAll()
  if (base) await rm(base, { recursive: true, force: true })
})

describe('fleet-wide rollback', () => {
  it('after subset deploys that reused a name with other revisions, moves every host to the one release they share', async () => {
    const { dir, paths } = await project('subset')
    for (let i = 0; i < 2; i++) expect((await dep(['deploy', '-o', `revision=base${i}`], { cwd: dir })).code).toBe(0)
    expect((await dep(['deploy', 'web1', '-o', 'revision=only-web1'], { cwd: dir })).code).toBe(0)
    expect((await dep(['deploy', 'web2', '-o', 'revision=only-web2'], { cwd: dir })).code).toBe(0)
    expect(await currents(paths)).toEqual(['releases/3', 'releases/3', 'releases/2'])

    const rollback = await dep(['rollback'], { cwd: dir })
    expect(rollback.code, rollback.output).toBe(0)
    expect(await currents(paths)).toEqual(['releases/2', 'releases/2', 'releases/2'])
    for (const deployPath of paths) expect(isLocked(deployPath)).toBe(false)
    expect(await statusOf(paths[0], '3')).toBe('rolled_back')
  })

  it('when no release is on every host, changes nothing, says what each host has, and exits 1', async () => {
    const { dir, paths } = await project('single')
    expect((await dep(['deploy'], { cwd: dir })).code).toBe(0)
    const rollback = await dep(['rollback'], { cwd: dir })
    expect(rollback.code, rollback.output).toBe(1)
    expect(rollback.output).toMatch(/Nothing was rolled back: no good release older than 1 is on every selected host/)
    for (const alias of ALIASES) expect(rollback.output).toContain(`${alias}: serves 1; good releases: 1`)
    expect(rollback.output).not.toMatch(/dropped|undone on every host/)
    expect(await currents(paths)).toEqual(['releases/1', 'releases/1', 'releases/1'])
    for (const deployPath of paths) expect(isLocked(deployPath)).toBe(false)
  })

  it('names releases as strings: v8, v9, v10 roll back in order, and rollback_to=1 finds release 1', async () => {
    const { dir, paths } = await project('names')
    expect((await dep(['deploy'], { cwd: dir })).code).toBe(0)
    for (const name of ['v8', 'v9', 'v10']) {
      const result = await dep(['deploy', '-o', `release_name=${name}`], { cwd: dir })
      expect(result.code, result.output).toBe(0)
    }
    const reused = await dep(['deploy', '-o', 'release_name=v9'], { cwd: dir })
    expect(reused.code, reused.output).toBe(1)
    expect(reused.output).toMatch(/release v9 already exists/)

    const back = await dep(['rollback'], { cwd: dir })
    expect(back.code, back.output).toBe(0)
    expect(await currents(paths)).toEqual(['releases/v9', 'releases/v9', 'releases/v9'])
    const named = await dep(['rollback', '-o', 'rollback_to=1'], { cwd: dir })
    expect(named.code, named.output).toBe(0)
    expect(await currents(paths)).toEqual(['releases/1', 'releases/1', 'releases/1'])
  })
})

describe('layouts deployfile did not make', () => {
  it('adopts releases without a ledger (another tool, or .dep/ removed): keeps them, and rolls back to them', async () => {
    const { dir, paths } = await project('adopted')
    for (const deployPath of paths) {
      for (const name of ['1', '2', '3']) {
        await mkdir(path.join(deployPath, 'releases', name), { recursive: true })
        await writeFile(path.join(deployPath, 'releases', name, 'index.html'), `old ${name}\n`)
      }
      await symlink('releases/3', path.join(deployPath, 'current'))
      asDeployUser(deployPath)
    }
    const deploy = await dep(['deploy'], { cwd: dir })
    expect(deploy.code, deploy.output).toBe(0)
    expect(deploy.output).not.toMatch(/removing/)
    for (const deployPath of paths) expect(await releasesOf(deployPath)).toEqual(['1', '2', '3', '4'])

    const releases = await dep(['releases'], { cwd: dir })
    expect(releases.output, releases.output).toMatch(/ 2\s+adopted/)
    expect(releases.output).toMatch(/● 4\s+live now/)

    const rollback = await dep(['rollback'], { cwd: dir })
    expect(rollback.code, rollback.output).toBe(0)
    expect(await currents(paths)).toEqual(['releases/3', 'releases/3', 'releases/3'])
  })

  it("reads Capistrano's revisions.log and keeps its timestamped releases", async () => {
    const { dir, paths } = await project('capistrano')
    for (const deployPath of paths) {
      for (const stamp of ['20240101120000', '20240102120000']) {
        await mkdir(path.join(deployPath, 'releases', stamp), { recursive: true })
        await writeFile(path.join(deployPath, 'releases', stamp, 'REVISION'), `sha-${stamp}\n`)
      }
      await symlink('releases/20240102120000', path.join(deployPath, 'current'))
      await writeFile(path.join(deployPath, 'revisions.log'), 'Branch main (at sha-20240102120000) deployed as release 20240102120000 by carol\n')
      asDeployUser(deployPath)
    }
    const deploy = await dep(['deploy'], { cwd: dir })
    expect(deploy.code, deploy.output).toBe(0)
    expect(await currents(paths)).toEqual(Array(3).fill('releases/20240102120001'))
    const releases = await dep(['releases', 'web1'], { cwd: dir })
    expect(releases.output).toMatch(/20240102120000\s+adopted \(capistrano\)\s+carol\s+sha-20240102120000/)
    const rollback = await dep(['rollback'], { cwd: dir })
    expect(rollback.code, rollback.output).toBe(0)
    expect(await currents(paths)).toEqual(Array(3).fill('releases/20240102120000'))
  })

  it('a revert restores a current that pointed outside releases/, exactly', async () => {
    const { dir, paths } = await project('legacy')
    const legacy = path.join(servers.workDir, 'legacy-app-v1')
    await mkdir(legacy, { recursive: true })
    await writeFile(path.join(legacy, 'index.html'), 'legacy\n')
    for (const deployPath of paths) {
      await mkdir(deployPath, { recursive: true })
      await symlink(legacy, path.join(deployPath, 'current'))
      asDeployUser(deployPath)
    }
    const result = await dep(['deploy'], { cwd: dir, env: { FAIL_AFTER_SWITCH: 'web2' } })
    expect(result.code, result.output).toBe(1)
    for (const deployPath of paths) {
      expect(await readlink(path.join(deployPath, 'current'))).toBe(legacy)
      expect(existsSync(path.join(deployPath, 'current/index.html'))).toBe(true)
      expect(isLocked(deployPath)).toBe(false)
    }
  })
})

describe('lock faults are not "held"', () => {
  it('a full disk at lock time: exit 3 naming "No space left", no lock left; with space again the deploy works', async () => {
    await withTmpfs(path.join(servers.workDir, 'tmpfs-full'), '256k', async (mount) => {
      const dir = path.join(base, 'full')
      await writeDeployfile(dir, deployfileFor('full', '', (alias) => path.join(mount, alias)))
      // Fill the disk to the last byte.
      spawnSync('sh', ['-c', `dd if=/dev/zero of=${mount}/filler bs=4k 2>/dev/null; true`])
      const full = await dep(['deploy'], { cwd: dir })
      expect(full.code, full.output).toBe(3)
      expect(full.output).toMatch(/Cannot create the deploy lock on web1 .*No space left on device/)
      expect(full.output).toMatch(/Free space on the host/)
      expect(full.output).not.toMatch(/held by/)
      for (const alias of ALIASES) expect(existsSync(path.join(mount, alias, '.dep/deploy.lock'))).toBe(false)

      await rm(path.join(mount, 'filler'))
      const again = await dep(['deploy'], { cwd: dir })
      expect(again.code, again.output).toBe(0)
      for (const alias of ALIASES) expect(await currentOf(path.join(mount, alias))).toBe('releases/1')
    })
  })

  it('a .dep the deploy user cannot write: exit 2 naming the permission, and unlock --force says "not locked"', async () => {
    const { dir, paths } = await project('perm')
    for (const deployPath of paths) {
      await mkdir(path.join(deployPath, '.dep'), { recursive: true })
      asDeployUser(deployPath)
      execFileSync('chown', ['root:', path.join(deployPath, '.dep')])
    }
    const result = await dep(['deploy'], { cwd: dir })
    expect(result.code, result.output).toBe(2)
    expect(result.output).toMatch(/Cannot create the deploy lock on web1 .*Permission denied/)
    expect(result.output).not.toMatch(/held by/)
    const unlock = await dep(['deploy:unlock', '--force'], { cwd: dir })
    expect(unlock.output).toMatch(/not locked/)
  })

  it('a deploy_path longer than the host allows: exit 2 naming it', async () => {
    const dir = path.join(base, 'long')
    const long = (alias: string) => path.join(servers.workDir, 'long', `${'x'.repeat(250)}/`.repeat(17), alias)
    await writeDeployfile(dir, deployfileFor('long', '', long))
    const result = await dep(['deploy'], { cwd: dir })
    expect(result.code, result.output).toBe(2)
    expect(result.output).toMatch(/File name too long/)
    expect(result.output).toMatch(/choose a shorter deploy_path/)
    // Node's fs cannot remove a path this long; rm can.
    execFileSync('rm', ['-rf', path.join(servers.workDir, 'long')])
  })

  it('a lock without its owner is reported as broken with the fix, and the fix works', async () => {
    const { dir, paths } = await project('broken')
    expect((await dep(['deploy'], { cwd: dir })).code).toBe(0)
    await mkdir(path.join(paths[0], '.dep/deploy.lock'))
    await writeFile(path.join(paths[0], '.dep/deploy.lock/owner.json'), '')
    asDeployUser(paths[0])
    const blocked = await dep(['deploy'], { cwd: dir })
    expect(blocked.code, blocked.output).toBe(4)
    expect(blocked.output).toMatch(/The deploy lock on web1 is broken: .* has no owner.json/)
    expect(blocked.output).toMatch(/dep deploy:unlock --force web1/)
    expect((await dep(['deploy:unlock', '--force', 'web1'], { cwd: dir })).code).toBe(0)
    expect((await dep(['deploy'], { cwd: dir })).code).toBe(0)
    expect(await currents(paths)).toEqual(['releases/2', 'releases/2', 'releases/2'])
    expect((await ledgerOf(paths[0])).filter((e) => e.status === 'live').map((e) => e.release)).toEqual(['1', '2'])
  })
})
