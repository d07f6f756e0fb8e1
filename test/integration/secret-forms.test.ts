/**
 * Issue 11, items 2 and 4, through the built `dep` on localhost: a secret is masked in every form it
 * is rendered in (POSIX-quoted on the command line, .env-escaped, JSON-escaped, URL-encoded, split
 * across output chunks; numeric ones too), in every output channel (default, -v, -vv, --json, the
 * log file, --dry-run); and every value of the Laravel recipe's `dotenv` is a secret for the whole
 * run, in `dep run` and in a task that never reads it.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, dep, writeDeployfile } from '../support/dep.js'

/** A quote, a double quote, a dollar, a backslash, a space, an ampersand and a slash: every escape differs. */
const TOKEN = `tok'en"Q$x\\y z&/${Math.random().toString(36).slice(2, 8)}`
const PIN = 48213
const DB_PASSWORD = 'dbPASS"3$x-Vault'
const APP_KEY = 'base64:K3yV4lueForTheTest0123456789abcdefXYZ='
const DOTENV_PIN = '90817263'

const sandbox = realpathSync(mkdtempSync(path.join(tmpdir(), 'df-secret-forms-')))
const project = path.join(sandbox, 'project')
const laravelProject = path.join(sandbox, 'laravel')
const deployPath = path.join(sandbox, 'srv')
const logDir = path.join(sandbox, 'logs')

/** Every form of a value a channel could show it in. */
function forms(value: string): string[] {
  return [
    value,
    value.replace(/'/g, `'\\''`),
    value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$'),
    JSON.stringify(value).slice(1, -1),
    encodeURIComponent(value),
  ]
}

function expectNone(values: string[], channels: Record<string, string>): void {
  for (const [name, text] of Object.entries(channels)) {
    for (const value of values) for (const form of forms(value)) expect(text.includes(form), `${name} shows ${form}:\n${text}`).toBe(false)
  }
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsup\` first.`)
  mkdirSync(deployPath, { recursive: true })
  await writeDeployfile(
    project,
    `import { get, localhost, run, secret, task } from 'deployfile'
localhost('local', { deployPath: ${JSON.stringify(deployPath)} })
secret('api_token', ${JSON.stringify(TOKEN)})
secret('pin', ${PIN})

task('forms', async () => {
  const token = await get('api_token')
  // The command line shows the POSIX-quoted form: 'tok'\\''en…'.
  await run('echo {{api_token}}')
  await run('echo pin {{pin}}')
  // What commands print: .env-escaped, JSON, URL-encoded.
  await run\`printf 'APP_TOKEN="%s"\\n' \${${JSON.stringify(forms(TOKEN)[2])}}\`
  await run\`printf '%s\\n' \${JSON.stringify({ token })}\`
  await run\`printf 'https://deploy:%s@example.com/?t=%s\\n' \${encodeURIComponent(token)} \${encodeURIComponent(token)}\`
  // One line, in two chunks a moment apart.
  const half = Math.floor(token.length / 2)
  await run\`printf 'split:%s' \${token.slice(0, half)}; sleep 0.3; printf '%s:end\\n' \${token.slice(half)}\`
}, { description: 'Prints a secret in every form' })
`,
  )
  await writeDeployfile(
    laravelProject,
    `import { localhost, run, set, task, use } from 'deployfile'
import { laravel } from 'deployfile/recipes/laravel'
use(laravel)
localhost('local', { deployPath: ${JSON.stringify(deployPath)} })
set('dotenv', () => ({ APP_NAME: 'Shown', APP_KEY: ${JSON.stringify(APP_KEY)}, DB_PASSWORD: ${JSON.stringify(DB_PASSWORD)}, PUSHER_APP_ID: ${JSON.stringify(DOTENV_PIN)} }))
task('unrelated', async () => {
  // A task that never reads dotenv: its values are masked all the same.
  await run(${JSON.stringify(`printf '%s|%s|%s\\n' '${APP_KEY}' 'dbPASS"3$x-Vault' ${DOTENV_PIN}`)})
})
`,
  )
  // What a previous deploy left: the .env, as the recipe writes it (escaped).
  mkdirSync(path.join(deployPath, 'shared'), { recursive: true })
  writeFileSync(path.join(deployPath, '.env'), `APP_NAME=Shown\nAPP_KEY=${APP_KEY}\nDB_PASSWORD="dbPASS\\"3\\$x-Vault"\nPUSHER_APP_ID=${DOTENV_PIN}\n`)
}, 60_000)

afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

let logs = 0
async function depWithLog(cwd: string, args: string[]) {
  const log = path.join(logDir, `run-${++logs}.log`)
  const result = await dep([...args, '--log', log], { cwd })
  return { ...result, log: existsSync(log) ? readFileSync(log, 'utf8') : '' }
}

describe.each([
  ['default', []],
  ['-v', ['-v']],
  ['-vv', ['-vv']],
  ['--json', ['--json']],
])('every form of a secret in %s mode', (_mode, flags) => {
  it('is masked on stdout, stderr and in the log file', async () => {
    const r = await depWithLog(project, ['forms', ...flags])
    expect(r.code, r.output).toBe(0)
    expectNone([TOKEN, String(PIN)], { stdout: r.stdout, stderr: r.stderr, log: r.log })
    // The lines are there, masked: the test saw what it means to check.
    expect(r.log).toContain(`$ echo '***'`)
    expect(r.log).toContain('> pin ***')
    expect(r.log).toContain('> APP_TOKEN="***"')
    expect(r.log).toContain('> {"token":"***"}')
    expect(r.log).toContain('> https://deploy:***@example.com/?t=***')
    expect(r.log).toContain('> split:***:end')
  })
})

describe('elsewhere', () => {
  it('--dry-run prints the scripts masked', async () => {
    const r = await dep(['forms', '--dry-run'], { cwd: project })
    expect(r.code, r.output).toBe(0)
    expectNone([TOKEN, String(PIN)], { stdout: r.stdout, stderr: r.stderr })
    expect(r.stdout).toContain(`echo '***'`)
  })

  it('dep config masks a dotenv value wherever another setting repeats it', async () => {
    const configProject = path.join(sandbox, 'config')
    const value = 'Cfg-Dotenv-Secret-5521'
    await writeDeployfile(
      configProject,
      `import { declareSetting, localhost, set } from 'deployfile'
import { laravel } from 'deployfile/recipes/laravel'
import { use } from 'deployfile'
use(laravel)
declareSetting('db_note', { type: 'string' })
localhost('local', { deployPath: ${JSON.stringify(deployPath)} })
set('dotenv', { DB_PASSWORD: ${JSON.stringify(value)} })
set('db_note', 'the password is ${value}')
`,
    )
    const r = await dep(['config'], { cwd: configProject })
    expect(r.code, r.output).toBe(0)
    expect(r.stdout).toContain('db_note: ')
    expectNone([value], { stdout: r.stdout, stderr: r.stderr })
  })

  it('every dotenv value is masked in dep run (cat .env) and in a task that never reads it', async () => {
    for (const flags of [['-v'], ['--json']]) {
      const r = await depWithLog(laravelProject, ['run', 'cat .env', ...flags])
      expect(r.code, r.output).toBe(0)
      expectNone([APP_KEY, DB_PASSWORD, DOTENV_PIN], { stdout: r.stdout, stderr: r.stderr, log: r.log })
      expect(r.log).toContain('> APP_NAME=Shown')
      expect(r.log).toContain('> DB_PASSWORD="***"')
      expect(r.log).toContain('> PUSHER_APP_ID=***')
      const u = await depWithLog(laravelProject, ['unrelated', ...flags])
      expect(u.code, u.output).toBe(0)
      expectNone([APP_KEY, DB_PASSWORD, DOTENV_PIN], { stdout: u.stdout, stderr: u.stderr, log: u.log })
      expect(u.log).toContain('> ***|***|***')
    }
  })
})
