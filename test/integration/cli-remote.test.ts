/**
 * `dep run`, `dep ssh` and plain tasks against real OpenSSH daemons, through
 * the built binary.
 */
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSshServers, type SshServers } from '../support/sshd.js'
import { CLI, dep, writeDeployfile } from '../support/dep.js'

let servers: SshServers
let dir: string

/** `dep …` with `input` on its stdin (a pipe, not a TTY). */
function depWithInput(args: string[], input: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1', CI: '1' } })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.on('close', (code) => resolve({ code, output }))
    child.stdin.end(input)
  })
}

beforeAll(async () => {
  servers = await startSshServers(3)
  dir = await mkdtemp(path.join(tmpdir(), 'deployfile-cli-remote-'))
  const hosts = ['web1', 'web2', 'web3'].map(
    (alias, index) =>
      `host(${JSON.stringify(alias)}, { ...${JSON.stringify(servers.hostOptions(index))}, deployPath: ${JSON.stringify(path.join(servers.workDir, alias))}, labels: { role: ${index === 2 ? "'worker'" : "'web'"} } })`,
  )
  await writeDeployfile(
    dir,
    `import { host, task, run } from 'deployfile'
${hosts.join('\n')}
task('hundred', async () => {
  for (let i = 0; i < 100; i++) await run('true')
})
`,
  )
  // web1 has a current release; web2 only its deploy_path; web3 nothing.
  await mkdir(path.join(servers.workDir, 'web1/releases/4'), { recursive: true })
  await symlink('releases/4', path.join(servers.workDir, 'web1/current'))
  await mkdir(path.join(servers.workDir, 'web2'), { recursive: true })
})

afterAll(async () => {
  await servers?.stopAll()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('dep run', () => {
  it('runs the command on every selected host, output prefixed by host', async () => {
    const result = await dep(['run', 'echo "user=$(id -un) dir=$(pwd -P)"', 'all'], { cwd: dir })
    expect(result.code, result.output).toBe(0)
    expect(result.output).toMatch(new RegExp(`\\[web1\\] user=${servers.user} dir=${path.join(servers.workDir, 'web1/releases/4')}`))
    expect(result.output).toMatch(new RegExp(`\\[web2\\] user=${servers.user} dir=${path.join(servers.workDir, 'web2')}$`, 'm'))
    expect(result.output).toMatch(/\[web3\] user=/)
  })

  it('takes selectors', async () => {
    const result = await dep(['run', 'echo hi-from-$(id -un)', 'role=worker'], { cwd: dir })
    expect(result.code, result.output).toBe(0)
    expect(result.output).toMatch(/\[web3\] hi-from-/)
    expect(result.output).not.toMatch(/\[web1\] hi-from-/)
  })

  it('fails with the host, command, exit code and stderr', async () => {
    const result = await dep(['run', 'echo broken >&2; exit 3', 'web2'], { cwd: dir })
    expect(result.code).toBe(1)
    expect(result.output).toMatch(/host:\s+web2/)
    expect(result.output).toMatch(/exit:\s+3/)
    expect(result.output).toMatch(/broken/)
  })
})

describe('dep ssh', () => {
  it('opens a shell in the current release', async () => {
    const result = await depWithInput(['ssh', 'web1'], 'pwd -P\nexit 7\n')
    expect(result.code, result.output).toBe(7)
    expect(result.output).toContain(path.join(servers.workDir, 'web1/releases/4'))
  })

  it('falls back to deploy_path when nothing is deployed yet', async () => {
    const result = await depWithInput(['ssh', 'web2'], 'pwd\n')
    expect(result.code, result.output).toBe(0)
    expect(result.output).toContain(path.join(servers.workDir, 'web2'))
  })

  it('needs a host name when there are several', async () => {
    const result = await dep(['ssh'], { cwd: dir })
    expect(result.code).toBe(2)
    expect(result.output).toMatch(/needs a host/)
  })
})

describe('one connection per host', () => {
  it('runs 100 sequential commands in 100 round trips', async () => {
    const started = Date.now()
    const result = await dep(['hundred', 'web1', '--json'], { cwd: dir })
    const wall = Date.now() - started
    expect(result.code, result.output).toBe(0)
    const end = result.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { type: string; roundTrips?: Record<string, number>; durationMs?: number })
      .find((event) => event.type === 'run:end')!
    expect(end.roundTrips).toEqual({ web1: 100 })
    // A figure for the closing note, not an assertion: timings are for the benchmark.
    console.log(`100 sequential run() on one host: ${end.durationMs} ms in the run, ${wall} ms for the whole dep process`)
  })
})
