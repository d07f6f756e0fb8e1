/**
 * The GitHub Action's script (scripts/github-action.sh, what action.yml runs) on this machine, with
 * a fake GitHub environment (RUNNER_TEMP, GITHUB_STEP_SUMMARY, GITHUB_OUTPUT as temp files), against
 * two real sshd hosts: the key comes only from the input (an encrypted one, with its passphrase),
 * the host keys only from the known-hosts input. Checks the job summary, the masking, that the key
 * file is gone afterwards, and that a failing run's summary names the failure.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSshServers, type SshServers } from '../support/sshd.js'
import { CLI, commonDeployfile, currentOf, REPO_ROOT, writeDeployfile } from '../support/dep.js'

const SCRIPT = path.join(REPO_ROOT, 'scripts/github-action.sh')
const PASSPHRASE = 'correct horse battery staple 42'
const ALIASES = ['web1', 'web2']

let servers: SshServers
let base: string
let project: string
let keyText: string
let knownHosts: string

interface ActionRun {
  code: number | null
  stdout: string
  stderr: string
  summary: string
  output: string
  runnerTemp: string
}

/** Runs the action's script as the runner would: inputs as INPUT_* variables, a fresh RUNNER_TEMP. */
async function runAction(inputs: Record<string, string>): Promise<ActionRun> {
  const run = await mkdtemp(path.join(base, 'run-'))
  const runnerTemp = path.join(run, 'runner-temp')
  const home = path.join(run, 'home')
  await mkdir(runnerTemp)
  await mkdir(home)
  const summaryFile = path.join(run, 'step-summary.md')
  const outputFile = path.join(run, 'github-output')
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    // An empty home: no ~/.ssh key or known_hosts can stand in for the inputs.
    HOME: home,
    USER: process.env.USER ?? 'runner',
    NO_COLOR: '1',
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_ACTOR: 'octo',
    GITHUB_WORKSPACE: project,
    GITHUB_ACTION_PATH: REPO_ROOT,
    RUNNER_TEMP: runnerTemp,
    GITHUB_STEP_SUMMARY: summaryFile,
    GITHUB_OUTPUT: outputFile,
    INPUT_WORKING_DIRECTORY: project,
    INPUT_SSH_PRIVATE_KEY: keyText,
    INPUT_SSH_KEY_PASSPHRASE: PASSPHRASE,
    INPUT_KNOWN_HOSTS: knownHosts,
    ...inputs,
  }
  const child = spawn('bash', [SCRIPT], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)))
  clearTimeout(timer)
  const read = async (file: string) => (existsSync(file) ? readFile(file, 'utf8') : '')
  return { code, stdout, stderr, summary: await read(summaryFile), output: await read(outputFile), runnerTemp }
}

/** Checks that every secret line was masked with ::add-mask:: and shows up nowhere else. */
function expectMasked(run: ActionRun): void {
  const secrets = [...keyText.split('\n').map((l) => l.trim()).filter(Boolean), PASSPHRASE]
  const maskLines = run.stdout.split('\n').filter((l) => l.startsWith('::add-mask::'))
  expect(maskLines.map((l) => l.slice('::add-mask::'.length))).toEqual(secrets)
  const rest = run.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::')).join('\n') + run.stderr
  for (const secret of secrets) expect(rest).not.toContain(secret)
}

beforeAll(async () => {
  servers = await startSshServers(2)
  base = await mkdtemp(path.join(tmpdir(), 'deployfile-action-'))
  // An encrypted key, known only to the action's input.
  const key = await servers.generateKey('ci', PASSPHRASE)
  await servers.authorize(key.publicKey)
  keyText = await readFile(key.privateKey, 'utf8')
  knownHosts = servers.servers.map((s) => s.knownHostsLine).join('\n')
  const appDir = path.join(base, 'app')
  await mkdir(appDir, { recursive: true })
  await writeFile(path.join(appDir, 'index.html'), '<h1>hello</h1>\n')
  project = path.join(base, 'project')
  // Hosts without identityFile or knownHostsFile: the action provides both.
  const hosts = ALIASES.map((alias, index) => {
    const { hostname, port, remoteUser, connectRetries } = servers.hostOptions(index)
    return { alias, options: { hostname, port, remoteUser, connectRetries, useSshConfig: false }, deployPath: path.join(servers.workDir, 'action', alias), labels: { stage: 'prod' } }
  })
  await writeDeployfile(project, commonDeployfile(appDir, hosts))
  // The project's installed dep, as `npm ci` leaves it.
  await mkdir(path.join(project, 'node_modules/.bin'), { recursive: true })
  await symlink(CLI, path.join(project, 'node_modules/.bin/dep'))
}, 60_000)

afterAll(async () => {
  await servers?.stopAll()
  if (base) await rm(base, { recursive: true, force: true })
})

describe('the GitHub Action script', () => {
  it('deploys with the key and host keys of its inputs, writes the job summary, masks the secrets and removes the key', async () => {
    const run = await runAction({ INPUT_TASK: 'deploy', INPUT_SELECTOR: 'stage=prod', INPUT_OPTIONS: 'revision=abc123\nkeep_releases=4\n' })
    expect(run.code, run.stdout + run.stderr).toBe(0)
    for (const alias of ALIASES) expect(await currentOf(path.join(servers.workDir, 'action', alias))).toBe('releases/1')
    // The GitHub output mode: a group per step.
    expect(run.stdout).toMatch(/^::group::/m)
    expect(run.summary).toContain('### dep deploy: ✅ succeeded')
    expect(run.summary).toMatch(/2 hosts · release `1` · .+ · \d+ round trips · exit 0/)
    expect(run.summary).toMatch(/^\| web1 \| `1` \| `abc123` \| \d+ \|$/m)
    expect(run.summary).toMatch(/^\| web2 \| `1` \| `abc123` \| \d+ \|$/m)
    expect(run.output).toBe('exit-code=0\n')
    expectMasked(run)
    // The run's private directory (key, known_hosts) is gone.
    expect(await readdir(run.runnerTemp)).toEqual([])
  }, 120_000)

  it('a failing run: exit 1, the summary names the failed step and the error; each option stays one argument', async () => {
    // A value with spaces, a quote and a semicolon: one -o argument, never split or run by a shell.
    const run = await runAction({ INPUT_TASK: 'deploy', INPUT_OPTIONS: `healthcheck_command=echo "not ready; really" >&2; exit 3` })
    expect(run.code, run.stdout + run.stderr).toBe(1)
    expect(run.summary).toContain('### dep deploy: ❌ failed')
    expect(run.summary).toContain('Nothing went live: the new release was discarded on every host.')
    expect(run.summary).toMatch(/\*\*Failure\*\* \(step `deploy:verify` on `web\d`\):/)
    expect(run.summary).toContain('not ready; really')
    expect(run.output).toBe('exit-code=1\n')
    expect(run.stdout).toMatch(/^::error /m)
    expectMasked(run)
    expect(await readdir(run.runnerTemp)).toEqual([])
  }, 120_000)

  it('refuses an option line that is not key=value, before anything runs, and still cleans up', async () => {
    const run = await runAction({ INPUT_TASK: 'deploy', INPUT_OPTIONS: '--force' })
    expect(run.code).toBe(2)
    expect(run.stdout).toContain('::error title=deployfile action::options: "--force" starts with a dash')
    expect(await readdir(run.runnerTemp)).toEqual([])
  }, 60_000)
})
