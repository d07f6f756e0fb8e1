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
import { probeScript, setupScript, sharedScript, unlockScript, writableScript } from '../../recipes/common/scripts.js'
import { parseProbe } from '../../recipes/common/host-state.js'
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

describe('layout guards', () => {
  it('deploy:setup refuses a current that is a real directory', () => {
    const deployPath = release('real-current')
    mkdirSync(path.join(deployPath, 'current'))
    const result = sh(setupScript(deployPath))
    expect(result.code).toBe(3)
    expect(result.stderr).toMatch(/current is a real directory, not a link/)
  })

  it('the probe takes the lock once and reports the owner to the next run', () => {
    const deployPath = release('probe')
    const first = parseProbe(sh(probeScript(deployPath, { user: 'alice', machine: 'laptop', pid: 1, run_id: 'run-a', started_at: new Date().toISOString() })).stdout)
    expect(first.lockTaken).toBe(true)
    const second = parseProbe(sh(probeScript(deployPath, { user: 'bob', run_id: 'run-b' })).stdout)
    expect(second.lockTaken).toBe(false)
    expect(second.owner).toMatchObject({ user: 'alice', machine: 'laptop', run_id: 'run-a' })
    // Only the owner's run id removes it.
    expect(sh(unlockScript(deployPath, 'run-b')).code).toBe(0)
    expect(existsSync(path.join(deployPath, '.dep/deploy.lock'))).toBe(true)
    expect(sh(unlockScript(deployPath, 'run-a')).code).toBe(0)
    expect(existsSync(path.join(deployPath, '.dep/deploy.lock'))).toBe(false)
  })
})

describe('shared links', () => {
  it('seeds shared/ from the release only when missing, and links relatively', () => {
    const deployPath = release('shared')
    const releasePath = path.join(deployPath, 'releases/1')
    mkdirSync(path.join(releasePath, 'storage/logs'), { recursive: true })
    writeFileSync(path.join(releasePath, 'storage/logs/a.log'), 'from release 1')
    writeFileSync(path.join(releasePath, '.env'), 'FROM=release')
    expect(sh(sharedScript(deployPath, releasePath, ['storage'], ['.env', 'config/x.json'])).code).toBe(0)
    expect(readlinkSync(path.join(releasePath, 'storage'))).toBe('../../shared/storage')
    expect(readlinkSync(path.join(releasePath, 'config/x.json'))).toBe('../../../shared/config/x.json')
    expect(execFileSync('cat', [path.join(deployPath, 'shared/storage/logs/a.log')], { encoding: 'utf8' })).toBe('from release 1')

    const release2 = path.join(deployPath, 'releases/2')
    mkdirSync(path.join(release2, 'storage'), { recursive: true })
    writeFileSync(path.join(release2, '.env'), 'FROM=release2')
    expect(sh(sharedScript(deployPath, release2, ['storage'], ['.env'])).code).toBe(0)
    // shared/ already had them: the release's copies are replaced by links, not copied over.
    expect(execFileSync('cat', [path.join(release2, '.env')], { encoding: 'utf8' })).toBe('FROM=release')
    expect(existsSync(path.join(release2, 'storage/logs/a.log'))).toBe(true)
  })
})
