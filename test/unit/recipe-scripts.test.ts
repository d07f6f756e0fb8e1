/**
 * The common recipe's scripts run by a real /bin/sh in temp dirs: writable
 * modes (and their clear failures), the real-directory guard, shared links,
 * the lock-owner check on unlock.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { revertScript, sharedScript, switchScript, writableScript } from '../../recipes/common/scripts.js'
import { parseProbe, probeScript } from '../../recipes/common/probe.js'
import { forceUnlockScript, takeLockScript, unlockScript } from '../../recipes/common/lock.js'
import type { Layout } from '../../recipes/common/layout.js'
import type { Command } from '../../src/shell/command.js'

const sandbox = mkdtempSync(path.join(tmpdir(), 'df-scripts-'))
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

function sh(command: Command, env: NodeJS.ProcessEnv = process.env) {
  const result = spawnSync('/bin/sh', ['-c', command.text], { encoding: 'utf8', env })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

function release(name: string): string {
  const dir = path.join(sandbox, name)
  mkdirSync(dir, { recursive: true })
  return dir
}

const hasSetfacl = spawnSync('sh', ['-c', 'command -v setfacl']).status === 0

describe('writable modes', () => {
  it('chmod makes the dirs (recursively) group-writable', () => {
    const dir = release('chmod')
    mkdirSync(path.join(dir, 'cache/deep'), { recursive: true })
    const result = sh(writableScript({ releasePath: dir, dirs: ['cache', 'logs'], mode: 'chmod', recursive: true, chmodMode: '0775' })!)
    expect(result.code, result.stderr).toBe(0)
    expect((statSync(path.join(dir, 'cache/deep')).mode & 0o777).toString(8)).toBe('775')
    expect(existsSync(path.join(dir, 'logs'))).toBe(true)
  })

  it.runIf(hasSetfacl)('acl grants the web user rwX with default ACLs', () => {
    const dir = release('acl')
    const result = sh(writableScript({ releasePath: dir, dirs: ['storage'], mode: 'acl', recursive: true, chmodMode: '0775', httpUser: 'nobody' })!)
    expect(result.code, result.stderr).toBe(0)
    const acl = execFileSync('getfacl', ['-p', path.join(dir, 'storage')], { encoding: 'utf8' })
    expect(acl).toMatch(/^user:nobody:rwx$/m)
    expect(acl).toMatch(/^default:user:nobody:rwx$/m)
  })

  it('acl without setfacl on the host fails with the reason and the way out', () => {
    const dir = release('no-acl')
    // A PATH with the usual tools but no setfacl.
    const bin = path.join(sandbox, 'bin-no-setfacl')
    mkdirSync(bin, { recursive: true })
    for (const tool of ['mkdir', 'id', 'ps', 'grep', 'head', 'cut']) {
      const found = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim()
      if (!existsSync(path.join(bin, tool))) symlinkSync(found, path.join(bin, tool))
    }
    const result = sh(writableScript({ releasePath: dir, dirs: ['storage'], mode: 'acl', recursive: true, chmodMode: '0775', httpUser: 'nobody' })!, { PATH: bin })
    expect(result.code).toBe(5)
    expect(result.stderr).toMatch(/needs setfacl, which is not installed on this host \(apt-get install acl\)/)
    expect(result.stderr).toMatch(/writable_mode to chmod, chown, chgrp or skip/)
  })

  it('chgrp without http_group says what to set', () => {
    const result = sh(writableScript({ releasePath: release('chgrp'), dirs: ['x'], mode: 'chgrp', recursive: true, chmodMode: '0775' })!)
    expect(result.code).toBe(5)
    expect(result.stderr).toMatch(/needs http_group/)
  })

  it('chown to a user the deploy user may not give files to fails with the reason', () => {
    const dir = release('chown')
    const result = sh(writableScript({ releasePath: dir, dirs: ['x'], mode: 'chown', recursive: true, chmodMode: '0775', httpUser: 'no-such-user-df' })!)
    expect(result.code).toBe(5)
    expect(result.stderr).toMatch(/writable_mode "chown" failed/)
  })

  it('skip and an empty list do nothing', () => {
    expect(writableScript({ releasePath: '/x', dirs: ['a'], mode: 'skip', recursive: true, chmodMode: '0775' })).toBeUndefined()
    expect(writableScript({ releasePath: '/x', dirs: [], mode: 'chmod', recursive: true, chmodMode: '0775' })).toBeUndefined()
  })
})

/** The default layout of a deploy_path (what layoutOf() builds from the default settings). */
function layoutAt(deployPath: string, overrides: Partial<Layout> = {}): Layout {
  return {
    deployPath,
    depDir: `${deployPath}/.dep`,
    lockDir: `${deployPath}/.dep/deploy.lock`,
    ledgerFile: `${deployPath}/.dep/releases_log`,
    repoDir: `${deployPath}/.dep/repo`,
    sharedDir: `${deployPath}/shared`,
    releasesDir: `${deployPath}/releases`,
    currentPath: `${deployPath}/current`,
    releaseLink: `${deployPath}/release`,
    capistranoLog: `${deployPath}/revisions.log`,
    ...overrides,
  }
}

const owner = (user: string, run_id: string) => ({ user, machine: 'laptop', pid: 1, run_id, started_at: new Date().toISOString() })
const probeOf = (layout: Layout, lockOwner?: ReturnType<typeof owner>) => parseProbe('h1', layout, sh(probeScript(layout, lockOwner)).stdout)

describe('the probe and the lock, through a real sh', () => {
  it('takes the lock once, with its owner inside, and reports the owner to the next run', () => {
    const layout = layoutAt(release('probe'))
    const first = probeOf(layout, owner('alice', 'run-a'))
    expect(first.lock.state).toBe('taken')
    const second = probeOf(layout, owner('bob', 'run-b'))
    expect(second.lock).toMatchObject({ state: 'held', owner: { user: 'alice', machine: 'laptop', run_id: 'run-a' } })
    // No temporary lock directory is left behind by the run that lost.
    expect(execFileSync('ls', ['-A', layout.depDir], { encoding: 'utf8' }).trim().split('\n').sort()).toEqual(['deploy.lock'])
    // Only the owner's run id removes it.
    expect(sh(unlockScript(layout, 'run-b')).code).toBe(0)
    expect(existsSync(layout.lockDir)).toBe(true)
    expect(sh(unlockScript(layout, 'run-a')).code).toBe(0)
    expect(existsSync(layout.lockDir)).toBe(false)
  })

  it('a lock directory without owner.json is reported as broken, and --force removes it', () => {
    const layout = layoutAt(release('broken-lock'))
    mkdirSync(layout.lockDir, { recursive: true })
    writeFileSync(path.join(layout.lockDir, 'owner.json'), '')
    expect(probeOf(layout, owner('bob', 'run-b')).lock.state).toBe('broken')
    expect(probeOf(layout).lock.state).toBe('broken')
    expect(sh(forceUnlockScript(layout)).stdout).toMatch(/removed the lock of nobody \(it was broken/)
    expect(probeOf(layout, owner('bob', 'run-b')).lock.state).toBe('taken')
  })

  it('a lock that cannot be created is an error with the shell\'s reason, never "held"', () => {
    const layout = layoutAt(release('no-write'))
    mkdirSync(layout.depDir, { recursive: true })
    // Runs as an unprivileged user where the tests run as root: .dep belongs to root, mode 0755.
    const asNobody = (command: Command) => spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '/bin/sh', '-c', command.text], { encoding: 'utf8' })
    const canDrop = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'true']).status === 0
    if (!canDrop) return
    execFileSync('chmod', ['0777', layout.deployPath])
    execFileSync('chmod', ['0755', layout.depDir])
    const view = parseProbe('h1', layout, asNobody(takeLockScript(layout, owner('bob', 'run-b'))).stdout)
    expect(view.lock.state).toBe('error')
    expect(view.lock.error).toMatch(/Permission denied/)
    expect(existsSync(layout.lockDir)).toBe(false)
  })

  it('a deploy_path the host cannot create is a setup error naming the reason', () => {
    const layout = layoutAt(`${release('too-long')}/${'x'.repeat(300)}`)
    const view = probeOf(layout, owner('bob', 'run-b'))
    expect(view.setupError).toMatch(/File name too long/)
    expect(view.lock.state).not.toBe('held')
  })

  it('reads releases, REVISION, the exact current target and another tool\'s logs', () => {
    const layout = layoutAt(release('adopted'))
    for (const name of ['1', '2', '3']) {
      mkdirSync(path.join(layout.releasesDir, name), { recursive: true })
      writeFileSync(path.join(layout.releasesDir, name, 'REVISION'), `rev${name}\n`)
    }
    mkdirSync(path.join(layout.releasesDir, 'empty'))
    symlinkSync('releases/3', layout.currentPath)
    writeFileSync(layout.capistranoLog, 'Branch main (at abc123) deployed as release 2 by carol\n')
    const view = probeOf(layout)
    expect(view.lock.state).toBe('free')
    expect(view.current).toBe('3')
    expect(view.currentTarget).toBe('releases/3')
    expect(view.releases.map((r) => [r.name, r.revision, r.complete]).sort()).toEqual([
      ['1', 'rev1', true],
      ['2', 'rev2', true],
      ['3', 'rev3', true],
      ['empty', undefined, false],
    ])
    expect(view.ledger).toEqual([expect.objectContaining({ release: '2', revision: 'abc123', user: 'carol', origin: 'capistrano' })])
    // The read-only probe created nothing.
    expect(existsSync(layout.depDir)).toBe(false)
  })

  it('a current outside the releases directory is kept as its exact target', () => {
    const layout = layoutAt(release('legacy'))
    symlinkSync('/srv/legacy/app-v1', layout.currentPath)
    const view = probeOf(layout)
    expect(view.current).toBeUndefined()
    expect(view.currentTarget).toBe('/srv/legacy/app-v1')
  })
})

describe('switch and revert, through a real sh', () => {
  it('the revert restores exactly the link that was there, wherever it pointed', () => {
    const layout = layoutAt(release('revert-exact'))
    const legacy = release('legacy-app-v1')
    symlinkSync(legacy, layout.currentPath)
    mkdirSync(path.join(layout.releasesDir, '1'), { recursive: true })
    mkdirSync(layout.depDir, { recursive: true })
    expect(sh(switchScript(layout, '1', true, [])).code).toBe(0)
    expect(readlinkSync(layout.currentPath)).toBe('releases/1')
    const reverted = sh(revertScript({ layout, name: '1', previousTarget: legacy, mvT: true, dropRelease: true, entries: [] }))
    expect(reverted.code, reverted.stderr).toBe(0)
    expect(reverted.stdout).toContain('@switched_back')
    expect(readlinkSync(layout.currentPath)).toBe(legacy)
    expect(existsSync(path.join(layout.releasesDir, '1'))).toBe(false)
  })

  it('the revert leaves a current that another run moved alone', () => {
    const layout = layoutAt(release('revert-other'))
    mkdirSync(path.join(layout.releasesDir, '1'), { recursive: true })
    mkdirSync(layout.depDir, { recursive: true })
    symlinkSync('releases/7', layout.currentPath)
    const reverted = sh(revertScript({ layout, name: '1', previousTarget: 'releases/6', mvT: true, dropRelease: false, entries: [] }))
    expect(reverted.stdout).not.toContain('@switched_back')
    expect(readlinkSync(layout.currentPath)).toBe('releases/7')
  })
})

describe('shared links', () => {
  it('seeds shared/ from the release only when missing, and links relatively', () => {
    const deployPath = release('shared')
    const releasePath = path.join(deployPath, 'releases/1')
    mkdirSync(path.join(releasePath, 'storage/logs'), { recursive: true })
    writeFileSync(path.join(releasePath, 'storage/logs/a.log'), 'from release 1')
    writeFileSync(path.join(releasePath, '.env'), 'FROM=release')
    expect(sh(sharedScript(layoutAt(deployPath), releasePath, ['storage'], ['.env', 'config/x.json'])!).code).toBe(0)
    expect(readlinkSync(path.join(releasePath, 'storage'))).toBe('../../shared/storage')
    expect(readlinkSync(path.join(releasePath, 'config/x.json'))).toBe('../../../shared/config/x.json')
    expect(execFileSync('cat', [path.join(deployPath, 'shared/storage/logs/a.log')], { encoding: 'utf8' })).toBe('from release 1')

    const release2 = path.join(deployPath, 'releases/2')
    mkdirSync(path.join(release2, 'storage'), { recursive: true })
    writeFileSync(path.join(release2, '.env'), 'FROM=release2')
    expect(sh(sharedScript(layoutAt(deployPath), release2, ['storage'], ['.env'])!).code).toBe(0)
    // shared/ already had them: the release's copies are replaced by links, not copied over.
    expect(execFileSync('cat', [path.join(release2, '.env')], { encoding: 'utf8' })).toBe('FROM=release')
    expect(existsSync(path.join(release2, 'storage/logs/a.log'))).toBe(true)
  })
})
