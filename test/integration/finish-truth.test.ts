/**
 * Issue 10, scenario 8, with the common recipe on two real sshd hosts: the
 * connection of web2 is cut (fault proxy) in the finish phase, after
 * deploy:unlock queued its unlock and before anything sent it. The step line
 * must not say ✔ deploy:unlock for web2, the lock is still there, and the run
 * exits 6 (LockNotReleased) naming web2 and the unlock command; web1 is
 * unlocked and its line is ✔.
 */
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { appendFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, commonDeployfile, currentOf, dep, isLocked, writeDeployfile } from '../support/dep.js'
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js'
import { startSshServers, type SshServers } from '../support/sshd.js'

const sandbox = realpathSync(mkdtempSync(path.join(tmpdir(), 'df-finish-truth-')))
const appDir = path.join(sandbox, 'app')
let ssh: SshServers
let proxy: FaultProxy

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsup\` first.`)
  mkdirSync(path.join(appDir, 'config'), { recursive: true })
  writeFileSync(path.join(appDir, 'index.html'), 'hello\n')
  ssh = await startSshServers(2)
  proxy = await startFaultProxy({ targetPort: ssh.servers[1].port })
  await appendFile(ssh.knownHostsFile, `[127.0.0.1]:${proxy.port} ${ssh.servers[1].hostKeyPub}\n`)
}, 120_000)

afterAll(async () => {
  await proxy?.close()
  await ssh?.stopAll()
  rmSync(sandbox, { recursive: true, force: true })
})

describe('a connection lost in the finish phase', () => {
  it('shows ⚠ deploy:unlock (not ✔) for the host whose unlock never ran, keeps its lock, and exits 6 naming it', async () => {
    const deployPath = (alias: string) => path.join(ssh.workDir, 'finish', alias)
    const hosts = [
      { alias: 'web1', options: ssh.hostOptions(0), deployPath: deployPath('web1') },
      { alias: 'web2', options: { ...ssh.hostOptions(1), port: proxy.port, connectTimeout: 3000 }, deployPath: deployPath('web2') },
    ]
    const dir = path.join(sandbox, 'project')
    await writeDeployfile(
      dir,
      commonDeployfile(
        appDir,
        hosts,
        `
// deploy:unlock queued the unlock; web2's connection goes before anything carries it.
after('deploy:unlock', async (ctx) => {
  if (ctx.host.alias === 'web2') await fetch(${JSON.stringify(`${proxy.controlUrl}/cut`)})
})
`,
      ),
    )
    const r = await dep(['deploy'], { cwd: dir })
    await proxy.restore()
    expect(r.code, r.output).toBe(6)
    // The release went live on both hosts.
    expect(await currentOf(deployPath('web1'))).toBe('releases/1')
    expect(await currentOf(deployPath('web2'))).toBe('releases/1')
    // web1 unlocked; web2's lock is still there, and no line claims otherwise.
    expect(isLocked(deployPath('web1'))).toBe(false)
    expect(isLocked(deployPath('web2'))).toBe(true)
    const lines = r.output.split('\n')
    expect(lines.filter((l) => /✔ deploy:unlock/.test(l) && l.includes('web2'))).toEqual([])
    expect(lines.some((l) => l.startsWith('[web2] ⚠ deploy:unlock'))).toBe(true)
    expect(lines.some((l) => l.startsWith('[web1] ✔ deploy:unlock'))).toBe(true)
    expect(r.stderr).toContain('Command on web2 (queued by deploy:unlock) did not run')
    expect(r.stderr).toContain('dep deploy:unlock --force web2')
    expect(r.stderr).toContain('(exit 6: the deploy went live, but a deploy lock could not be released)')
  }, 120_000)
})
