/**
 * Secrets never reach an output channel: the built `dep` runs a localhost
 * deployfile that uses secrets in commands, in their output, in an error
 * message and in a failing command's stderr, in every output mode, and every
 * channel (stdout, stderr, the log file, a terminal) is searched for them.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, dep, writeDeployfile } from '../support/dep.js'

const DB_PASSWORD = 'S3cr3t-Vault-Value-42'
const RUN_SECRET = 'Run-Option-Secret-77'
const OVERRIDE = 'Override-Secret-99'
const LAZY = 'Lazy-Computed-Secret-31'
const ALL = [DB_PASSWORD, RUN_SECRET, OVERRIDE, LAZY]

const sandbox = realpathSync(mkdtempSync(path.join(tmpdir(), 'df-secrets-')))
const project = path.join(sandbox, 'project')
const deployPath = path.join(sandbox, 'srv')
const logDir = path.join(sandbox, 'logs')

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsup\` first.`)
  await writeDeployfile(
    project,
    `import { get, info, localhost, run, secret, task } from 'deployfile'
import { writeFileSync } from 'node:fs'

localhost('local', { deployPath: ${JSON.stringify(deployPath)} })
secret('db_password', ${JSON.stringify(DB_PASSWORD)})
secret('api_token', async () => ${JSON.stringify(LAZY)})

task('use', async () => {
  const password = await get('db_password')
  // The real value reaches the commands: proof written where no output channel looks.
  await run\`mkdir -p ${deployPath} && printf '%s' \${password} > ${path.join(deployPath, 'proof')}\`
  await run\`echo connecting with \${password}\`
  await run('echo template {{db_password}} >&2')
  await run('echo token=$TOKEN', { env: { TOKEN: ${JSON.stringify(RUN_SECRET)} }, secrets: [${JSON.stringify(RUN_SECRET)}] })
  await run(\`echo lazy \${await get('api_token')}\`)
  info(\`logged in with \${password}\`)
}, { description: 'Uses the secrets' })

task('fail-command', async () => {
  await run\`echo "password \${await get('db_password')} was refused" >&2; exit 7\`
})

task('fail-throw', async () => {
  throw new Error(\`cannot log in as admin:\${await get('db_password')}\`)
})
`,
  )
}, 60_000)

afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

let logCount = 0
async function depWithLog(args: string[], env: Record<string, string> = {}) {
  const log = path.join(logDir, `run-${++logCount}.log`)
  const result = await dep([...args, '--log', log], { cwd: project, env })
  return { ...result, log: existsSync(log) ? readFileSync(log, 'utf8') : '' }
}

function expectNoSecret(channels: Record<string, string>): void {
  for (const [name, text] of Object.entries(channels)) {
    for (const secret of ALL) expect(text.includes(secret), `${name} shows ${secret}:\n${text}`).toBe(false)
  }
}

const MODES: Array<[string, string[]]> = [
  ['default', []],
  ['-v', ['-v']],
  ['-vv', ['-vv']],
  ['--json', ['--json']],
]

describe.each(MODES)('secrets in %s mode', (_mode, flags) => {
  it('a task using secrets in commands, output, env and messages shows *** everywhere', async () => {
    const r = await depWithLog(['use', ...flags])
    expect(r.code, r.output).toBe(0)
    expect(readFileSync(path.join(deployPath, 'proof'), 'utf8')).toBe(DB_PASSWORD)
    expectNoSecret({ stdout: r.stdout, stderr: r.stderr, log: r.log })
    // The masked values are there, so the test saw the lines it means to check.
    expect(r.log).toContain('connecting with ***')
    expect(r.log).toContain('template ***')
    expect(r.log).toContain('token=***')
    expect(r.log).toContain('lazy ***')
    expect(r.log).toContain('logged in with ***')
    if (flags.includes('-v') || flags.includes('-vv')) expect(r.stdout).toContain('[local] connecting with ***')
    if (flags.includes('--json')) expect(r.stdout).toContain('"text":"connecting with ***"')
  })

  it("a failing command's command line and stderr are masked", async () => {
    const r = await depWithLog(['fail-command', ...flags])
    expect(r.code).toBe(1)
    expectNoSecret({ stdout: r.stdout, stderr: r.stderr, log: r.log })
    expect(r.log).toContain('password *** was refused')
    expect(r.stdout + r.stderr).toContain('password *** was refused')
  })

  it('an error message with a secret is masked', async () => {
    const r = await depWithLog(['fail-throw', ...flags])
    expect(r.code).toBe(1)
    expectNoSecret({ stdout: r.stdout, stderr: r.stderr, log: r.log })
    expect(r.stdout + r.stderr).toContain('cannot log in as admin:***')
    expect(r.log).toContain('cannot log in as admin:***')
  })
})

describe('secrets elsewhere', () => {
  it('a secret given with -o is masked too (and kept out of the log header)', async () => {
    const r = await depWithLog(['use', '-v', '-o', `db_password=${OVERRIDE}`])
    expect(r.code, r.output).toBe(0)
    expect(readFileSync(path.join(deployPath, 'proof'), 'utf8')).toBe(OVERRIDE)
    expectNoSecret({ stdout: r.stdout, stderr: r.stderr, log: r.log })
    expect(r.log).toContain('-o db_password=…')
  })

  it('dep config and --dry-run mask secrets', async () => {
    const config = await dep(['config'], { cwd: project })
    expect(config.code).toBe(0)
    expect(config.stdout).toContain('db_password: ***')
    const dry = await dep(['use', '--dry-run', '-v'], { cwd: project })
    expectNoSecret({ config: config.stdout + config.stderr, dryRunOut: dry.stdout, dryRunErr: dry.stderr })
    expect(dry.stdout).toContain('connecting with ***')
  })

  it('a terminal (the live view, through a pty) shows no secret', async () => {
    const hasScript = (() => {
      try {
        execFileSync('script', ['--version'], { stdio: 'ignore' })
        return true
      } catch {
        return false
      }
    })()
    if (!hasScript) return
    const command = `stty cols 120 rows 40; ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} fail-command`
    let screen = ''
    try {
      screen = execFileSync('script', ['-qfec', command, '/dev/null'], {
        cwd: project,
        env: { ...process.env, CI: '', GITHUB_ACTIONS: '', NO_COLOR: '', TERM: 'xterm' },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 30_000,
      }).toString()
    } catch (error) {
      screen = String((error as { stdout?: Buffer }).stdout ?? '')
    }
    // The live view ran (a tree, not [host] lines) and the failure is there, masked.
    expect(screen).toContain('fail-command')
    expect(screen).toContain('password *** was refused')
    expectNoSecret({ terminal: screen })
  })
})
