/**
 * Every exit code of the README's table, from the built `dep`, each with the
 * one readable message that names the cause and the fix: 0 success, 1 task
 * failed, 2 bad input, 3 unreachable / auth / host key (real sshd on
 * loopback), 4 lock held, 5 rollback failed, 130 interrupted.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, dep, startDep, waitFor, writeDeployfile } from '../support/dep.js'
import { closedPort as anyClosedPort } from '../support/ports.js'
import { startSshServers, type SshServers } from '../support/sshd.js'

const sandbox = realpathSync(mkdtempSync(path.join(tmpdir(), 'df-exit-')))
const local = path.join(sandbox, 'local')
const deployPath = path.join(sandbox, 'srv')
const build = path.join(sandbox, 'build')
let servers: SshServers
let closedPort = 0

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsup\` first.`)
  mkdirSync(build, { recursive: true })
  writeFileSync(path.join(build, 'index.html'), 'hello\n')
  await writeDeployfile(
    local,
    `import { fail, localhost, run, set, task, use } from 'deployfile'
import { common } from 'deployfile/recipes/common'

use(common)
localhost('local', { deployPath: ${JSON.stringify(deployPath)} })
set('upload_path', ${JSON.stringify(build)})

task('ok', async () => { await run\`true\` })
task('broken', async () => { await run\`echo 'disk full' >&2; exit 9\` })
task('sleepy', async () => { await run\`sleep 30\` })
task('undo-fails', async () => { throw new Error('first failure') })
fail('undo-fails', async () => { throw new Error('the fail hook broke too') })
`,
  )
  servers = await startSshServers(1)
  closedPort = await anyClosedPort()
}, 120_000)

afterAll(async () => {
  await servers?.stopAll()
  rmSync(sandbox, { recursive: true, force: true })
})

/** A project whose one host is the test sshd, with these host options on top. */
async function remoteProject(name: string, options: Record<string, unknown>): Promise<string> {
  const dir = path.join(sandbox, name)
  await writeDeployfile(
    dir,
    `import { host, run, task } from 'deployfile'
host('web1', ${JSON.stringify({ ...servers.hostOptions(0), deployPath: path.join(servers.workDir, name), connectTimeout: 3000, ...options })})
task('ping', async () => { await run\`true\` })
`,
  )
  return dir
}

describe('exit codes', () => {
  it('0: success', async () => {
    const r = await dep(['ok'], { cwd: local })
    expect(r.code, r.output).toBe(0)
    expect(r.stdout).toContain('✔ ok finished')
  })

  it('1: a task failed (host, command, exit code and stderr named)', async () => {
    const r = await dep(['broken'], { cwd: local })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('✖ Command on local exited with code 9')
    expect(r.stderr).toMatch(/exit: +9/)
    expect(r.stderr).toContain('disk full')
    expect(r.stderr).toContain('(exit 1: a task failed)')
  })

  it('2: an unknown task, a broken deployfile, an unknown host', async () => {
    const task = await dep(['deplyo'], { cwd: local })
    expect(task.code).toBe(2)
    expect(task.stderr).toContain('Task "deplyo" is not defined.')
    expect(task.stderr).toContain('Did you mean "deploy"')

    const broken = path.join(sandbox, 'broken')
    await writeDeployfile(broken, `import { task } from 'deployfile'\ntask('x', async () => {\n  const a = (\n})\n`)
    const load = await dep(['list'], { cwd: broken })
    expect(load.code).toBe(2)
    expect(load.stderr).toContain(`syntax error at ${path.join(broken, 'deployfile.ts')}:4:`)

    const host = await dep(['ok', 'lcoal'], { cwd: local })
    expect(host.code).toBe(2)
    expect(host.stderr).toContain('Unknown host "lcoal".')
    expect(host.stderr).toContain('Did you mean "local"')
  })

  it('2: a missing required setting (deploy_path), with nothing left behind', async () => {
    const dir = path.join(sandbox, 'no-deploy-path')
    await writeDeployfile(dir, `import { localhost, use } from 'deployfile'\nimport { common } from 'deployfile/recipes/common'\nuse(common)\nlocalhost('local')\n`)
    const r = await dep(['deploy'], { cwd: dir })
    expect(r.code, r.output).toBe(2)
    expect(r.stderr).toContain('Missing setting "deploy_path" for host local.')
    expect(r.stderr).toContain("set('deploy_path', …)")
    expect(r.stderr).toContain('deployPath in its host() options')
  })

  it('3: an unreachable host (closed port, one try)', async () => {
    const dir = await remoteProject('unreachable', { port: closedPort, connectRetries: 1 })
    const r = await dep(['ping'], { cwd: dir })
    expect(r.code, r.output).toBe(3)
    expect(r.stderr).toContain(`Cannot connect to web1 (127.0.0.1 port ${closedPort})`)
    expect(r.stderr).toMatch(/connection refused.*nothing listens on port/)
    expect(r.stderr).toContain(`→ Check that 127.0.0.1 is up and that sshd listens on port ${closedPort}`)
    expect(r.stderr).toContain('(exit 3: a host could not be reached, logged in to, or trusted)')
  })

  it('3: authentication refused (a key the server does not know)', async () => {
    const stranger = await servers.generateKey('stranger')
    const dir = await remoteProject('auth', { identityFile: stranger.privateKey })
    const r = await dep(['ping'], { cwd: dir })
    expect(r.code, r.output).toBe(3)
    expect(r.stderr).toContain('Cannot connect to web1')
    expect(r.stderr).toMatch(/authentication/i)
    expect(r.stderr).toMatch(/→ /) // a hint on what to do
  })

  it('3: a changed host key', async () => {
    const other = await servers.generateKey('not-the-host')
    const knownHosts = path.join(sandbox, 'known_hosts_changed')
    writeFileSync(knownHosts, `[127.0.0.1]:${servers.servers[0].port} ${other.publicKey.split(' ').slice(0, 2).join(' ')}\n`)
    const dir = await remoteProject('hostkey', { knownHostsFile: knownHosts })
    const r = await dep(['ping'], { cwd: dir })
    expect(r.code, r.output).toBe(3)
    expect(r.stderr).toMatch(/host key/i)
    expect(r.stderr).toMatch(/changed|does not match|mismatch/i)
    expect(r.stderr).toContain('known_hosts')
  })

  it('4: the deploy lock is held by another run; nothing changes', async () => {
    const lock = path.join(deployPath, '.dep', 'deploy.lock')
    mkdirSync(lock, { recursive: true })
    const owner = { user: 'alice', machine: 'laptop', pid: 4242, run_id: 'other-run', started_at: new Date().toISOString() }
    writeFileSync(path.join(lock, 'owner.json'), JSON.stringify(owner))
    try {
      const r = await dep(['deploy'], { cwd: local })
      expect(r.code, r.output).toBe(4)
      expect(r.stderr).toMatch(/The deploy lock on local is held by .*alice/)
      expect(r.stderr).toContain('dep deploy:unlock --force local')
      expect(r.stderr).toContain('(exit 4: the deploy lock is held by another run; nothing changed)')
      // The other run's lock is untouched, and no release was made.
      expect(JSON.parse(readFileSync(path.join(lock, 'owner.json'), 'utf8'))).toEqual(owner)
      expect(existsSync(path.join(deployPath, 'releases', '1'))).toBe(false)
    } finally {
      rmSync(lock, { recursive: true, force: true })
    }
  })

  it('5: a failure, and the fail hook failed too', async () => {
    const r = await dep(['undo-fails'], { cwd: local })
    expect(r.code).toBe(5)
    expect(r.stderr).toContain('first failure')
    expect(r.stderr).toContain('Undoing the failure failed too')
    expect(r.stderr).toContain('the fail hook broke too')
    expect(r.stderr).toContain('hosts need a look')
  })

  it('130: interrupted (SIGINT during a command), promptly', async () => {
    const run = startDep(['sleepy', '-v'], { cwd: local })
    let seen = ''
    run.child.stdout!.on('data', (chunk: Buffer) => (seen += chunk.toString()))
    await waitFor(() => seen.includes('$ sleep 30'), 15_000, 'the sleep to start')
    run.child.kill('SIGINT')
    const r = await run.result
    expect(r.code, r.output).toBe(130)
    expect(r.output).toContain('SIGINT: stopping and reverting')
    expect(r.stderr).toContain('✖ sleepy interrupted')
  })
})
