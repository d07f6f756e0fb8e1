/**
 * Issue 10, scenario 5: a fleet of 30 hosts (aliases spread over 3 real sshd
 * daemons) with one or two aliases pointing at closed ports. `dep deploy`
 * must exit 3 with one error per unreachable host, each naming that host and
 * its own address, and nothing may have run on any host (no deploy path, no
 * lock, no release).
 */
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, commonDeployfile, dep, writeDeployfile, type DeployfileHost } from '../support/dep.js'
import { startSshServers, type SshServers } from '../support/sshd.js'
import type { JsonLine } from '../../src/model/events.js'
import { closedPort } from '../support/ports.js'

const HOSTS = 30
const sandbox = realpathSync(mkdtempSync(path.join(tmpdir(), 'df-fleet-connect-')))
const appDir = path.join(sandbox, 'app')
let servers: SshServers
const closedPorts: number[] = []

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsup\` first.`)
  mkdirSync(path.join(appDir, 'config'), { recursive: true })
  writeFileSync(path.join(appDir, 'index.html'), 'hello\n')
  // Ten connections at once per daemon are more than sshd's default MaxStartups lets through unharmed.
  servers = await startSshServers(3, { extraConfig: ['MaxStartups 100', 'MaxSessions 100'] })
  closedPorts.push(await closedPort(), await closedPort())
}, 120_000)

afterAll(async () => {
  await servers?.stopAll()
  rmSync(sandbox, { recursive: true, force: true })
})

const aliasOf = (i: number) => `w${i + 1}`
const deployPathOf = (name: string, alias: string) => path.join(servers.workDir, name, alias)

/** 30 hosts; `down` maps an alias to the closed port it points at instead of a daemon. */
async function project(name: string, down: Record<string, number>): Promise<string> {
  const hosts: DeployfileHost[] = Array.from({ length: HOSTS }, (_, i) => {
    const alias = aliasOf(i)
    const options: Record<string, unknown> = { ...servers.hostOptions(i % 3), connectTimeout: 5000 }
    if (down[alias] !== undefined) options.port = down[alias]
    return { alias, options, deployPath: deployPathOf(name, alias) }
  })
  const dir = path.join(sandbox, name)
  await writeDeployfile(dir, commonDeployfile(appDir, hosts))
  return dir
}

/** The output lines that report a failure to connect. */
const connectErrors = (output: string) => output.split('\n').filter((line) => line.includes('Cannot connect to'))

describe('one unreachable host among 30', () => {
  it('exit 3, exactly one error line naming that host and its own port, nothing created anywhere', async () => {
    const port = closedPorts[0]
    const dir = await project('one-down', { w17: port })
    const r = await dep(['deploy'], { cwd: dir })
    expect(r.code, r.output).toBe(3)
    const lines = connectErrors(r.output)
    expect(lines, r.output).toHaveLength(1)
    expect(lines[0]).toContain(`Cannot connect to w17 (127.0.0.1 port ${port})`)
    // No other host is blamed, in any line (the first line lists the fleet).
    const rest = r.output.split('\n').filter((line) => !line.startsWith('Running deploy on ')).join('\n')
    for (let i = 0; i < HOSTS; i++) {
      const alias = aliasOf(i)
      if (alias === 'w17') continue
      expect(rest).not.toMatch(new RegExp(`\\b${alias}\\b`))
    }
    expect(r.stderr).toContain('(exit 3: a host could not be reached, logged in to, or trusted)')
    expect(r.output).not.toContain('deploy:revert')
    for (let i = 0; i < HOSTS; i++) expect(existsSync(deployPathOf('one-down', aliasOf(i))), aliasOf(i)).toBe(false)
  })

  it('--json: every stdout line parses; run:end exit 3 names w17 only, and no step ran', async () => {
    const port = closedPorts[0]
    const dir = await project('one-down-json', { w17: port })
    const r = await dep(['deploy', '--json'], { cwd: dir })
    expect(r.code, r.output).toBe(3)
    const events = r.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as JsonLine)
    expect(events[0].type).toBe('run:start')
    expect(events.filter((e) => e.type === 'step:start')).toHaveLength(0)
    const end = events.at(-1)!
    if (end.type !== 'run:end') throw new Error(`last event is ${end.type}`)
    expect(end.exitCode).toBe(3)
    expect(end.error).toMatchObject({ name: 'ConnectionError', host: 'w17' })
    expect(end.error!.message).toContain(`Cannot connect to w17 (127.0.0.1 port ${port})`)
    for (let i = 0; i < HOSTS; i++) expect(existsSync(deployPathOf('one-down-json', aliasOf(i)))).toBe(false)
  })

  it('two hosts down: one error each, each naming its own host and port', async () => {
    const [a, b] = closedPorts
    const dir = await project('two-down', { w4: a, w23: b })
    const r = await dep(['deploy'], { cwd: dir })
    expect(r.code, r.output).toBe(3)
    const lines = connectErrors(r.output)
    expect(lines, r.output).toHaveLength(2)
    const w4 = lines.filter((l) => l.includes('Cannot connect to w4 '))
    const w23 = lines.filter((l) => l.includes('Cannot connect to w23 '))
    expect(w4).toHaveLength(1)
    expect(w23).toHaveLength(1)
    expect(w4[0]).toContain(`(127.0.0.1 port ${a})`)
    expect(w4[0]).not.toContain(String(b))
    expect(w23[0]).toContain(`(127.0.0.1 port ${b})`)
    expect(w23[0]).not.toContain(String(a))
    for (let i = 0; i < HOSTS; i++) expect(existsSync(deployPathOf('two-down', aliasOf(i)))).toBe(false)
  })

  it('every host up: the same fleet deploys (the pre-connect does not get in the way)', async () => {
    const dir = await project('all-up', {})
    const r = await dep(['deploy'], { cwd: dir })
    expect(r.code, r.output).toBe(0)
    for (let i = 0; i < HOSTS; i++) expect(existsSync(path.join(deployPathOf('all-up', aliasOf(i)), 'current'))).toBe(true)
  }, 120_000)
})
