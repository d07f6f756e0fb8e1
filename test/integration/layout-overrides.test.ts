/**
 * A Deployer habit against two real OpenSSH daemons, through the built `dep`:
 * release_path and current_path overridden. Releases are made in release_path's
 * directory, current_path (outside deploy_path, its directory not there yet)
 * links to them with one rename, and rollback, the automatic revert and
 * cleanup (keep_releases) all find them there; nothing appears in the default
 * places (releases/, current).
 */
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readlink, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSshServers, type SshServers } from '../support/sshd.js'
import { commonDeployfile, dep, isLocked, statusOf, writeDeployfile } from '../support/dep.js'

const ALIASES = ['web1', 'web2']
let servers: SshServers
let base: string
let project: string

const deployPathOf = (alias: string) => path.join(servers.workDir, 'app', alias)
/** current_path: outside deploy_path, in a directory the first deploy creates (like /var/www/html). */
const currentPathOf = (alias: string) => path.join(servers.workDir, 'www', alias, 'html')
const buildsOf = (alias: string) => path.join(deployPathOf(alias), 'builds')

async function currentTargets(): Promise<string[]> {
  return Promise.all(ALIASES.map((alias) => readlink(currentPathOf(alias))))
}

async function builds(alias: string): Promise<string[]> {
  return (await readdir(buildsOf(alias))).sort((a, b) => Number(a) - Number(b))
}

beforeAll(async () => {
  servers = await startSshServers(2)
  base = await mkdtemp(path.join(tmpdir(), 'deployfile-layout-'))
  const appDir = path.join(base, 'app')
  await mkdir(path.join(appDir, 'logs'), { recursive: true })
  await mkdir(path.join(appDir, 'config'), { recursive: true })
  await writeFile(path.join(appDir, 'index.html'), '<h1>hi</h1>\n')
  await writeFile(path.join(appDir, 'config/app.env'), 'MODE=seed\n')
  const hosts = ALIASES.map((alias, index) => ({
    alias,
    options: { ...servers.hostOptions(index), config: { current_path: currentPathOf(alias) } },
    deployPath: deployPathOf(alias),
  }))
  project = path.join(base, 'project')
  await writeDeployfile(
    project,
    commonDeployfile(
      appDir,
      hosts,
      `
set('release_path', '{{deploy_path}}/builds/{{release_name}}')
set('keep_releases', 2)
after('deploy:symlink', async (ctx) => {
  if (process.env.FAIL_AFTER_SWITCH === ctx.host.alias) await ctx.run('echo failing after the switch >&2; exit 42')
})
`,
    ),
  )
})

afterAll(async () => {
  await servers?.stopAll()
  if (base) await rm(base, { recursive: true, force: true })
})

describe('release_path and current_path overridden', () => {
  it('deploys into release_path and switches current_path; rollback, revert and cleanup find the releases there', async () => {
    for (const expected of ['1', '2']) {
      const deploy = await dep(['deploy'], { cwd: project })
      expect(deploy.code, deploy.output).toBe(0)
      expect(deploy.output).toContain(`release ${expected} is live on web1`)
    }
    // An absolute link: current_path is not below the builds directory.
    expect(await currentTargets()).toEqual(ALIASES.map((alias) => path.join(buildsOf(alias), '2')))
    for (const alias of ALIASES) {
      expect(await builds(alias)).toEqual(['1', '2'])
      expect(existsSync(path.join(buildsOf(alias), '2', 'index.html'))).toBe(true)
      // Shared files are linked into the release in release_path.
      expect(await readlink(path.join(buildsOf(alias), '2', 'logs'))).toBe('../../shared/logs')
      // Nothing in the default places; the `release` link is gone after the switch.
      for (const name of ['releases', 'current', 'release']) expect(existsSync(path.join(deployPathOf(alias), name)), name).toBe(false)
    }

    const releases = await dep(['releases'], { cwd: project })
    expect(releases.code, releases.output).toBe(0)
    expect(releases.output).toMatch(/● 2 +live now/)
    expect(releases.output).not.toContain('outside the releases directory')

    const rollback = await dep(['rollback'], { cwd: project })
    expect(rollback.code, rollback.output).toBe(0)
    expect(await currentTargets()).toEqual(ALIASES.map((alias) => path.join(buildsOf(alias), '1')))
    expect(await statusOf(deployPathOf('web1'), '2')).toBe('rolled_back')

    // Release 3 fails after the switch on web2: every host goes back to exactly what it served (1).
    const failed = await dep(['deploy'], { cwd: project, env: { FAIL_AFTER_SWITCH: 'web2' } })
    expect(failed.code, failed.output).toBe(1)
    expect(await currentTargets()).toEqual(ALIASES.map((alias) => path.join(buildsOf(alias), '1')))
    for (const alias of ALIASES) expect(await builds(alias)).toEqual(['1', '2'])

    // keep_releases 2: the rolled-back release goes first, then the oldest beyond the two newest good ones.
    const fourth = await dep(['deploy'], { cwd: project })
    expect(fourth.code, fourth.output).toBe(0)
    for (const alias of ALIASES) expect(await builds(alias)).toEqual(['1', '4'])
    const fifth = await dep(['deploy'], { cwd: project })
    expect(fifth.code, fifth.output).toBe(0)
    expect(await currentTargets()).toEqual(ALIASES.map((alias) => path.join(buildsOf(alias), '5')))
    for (const alias of ALIASES) {
      expect(await builds(alias)).toEqual(['4', '5'])
      expect(isLocked(deployPathOf(alias))).toBe(false)
    }
  })
})
