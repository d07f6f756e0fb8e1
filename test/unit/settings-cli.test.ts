/**
 * Bad settings through the built `dep` (dist/cli.js): exit 2 and one readable
 * error, before anything runs (issue 10, item 9).
 */
import { existsSync, mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, dep, writeDeployfile } from '../support/dep.js'

const sandbox = realpathSync(mkdtempSync(join(tmpdir(), 'df-settings-cli-')))
const deployPath = join(sandbox, 'srv')
let good: string
let typo: string

beforeAll(async () => {
  // `npm test` builds dist/ first; rebuilding here would wipe it under the other test files.
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does) first.`)
  good = join(sandbox, 'good')
  await writeDeployfile(
    good,
    `import { declareSetting, localhost, set, use } from 'deployfile'
import { common } from 'deployfile/recipes/common'

use(common)
declareSetting('slack_webhook', { type: 'string', description: 'Where deploys are announced' })
localhost('local', { deployPath: ${JSON.stringify(deployPath)} })
set('upload_path', ${JSON.stringify(sandbox)})
set('slack_webhook', 'https://hooks.example.test/x')
`,
  )
  typo = join(sandbox, 'typo')
  await writeDeployfile(
    typo,
    `import { localhost, set, use } from 'deployfile'
import { common } from 'deployfile/recipes/common'

use(common)
localhost('local', { deployPath: ${JSON.stringify(deployPath)} })
set('keep_release', 3)
`,
  )
}, 60_000)

afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

/** stderr as lines, without the trailing newline. */
const lines = (stderr: string) => stderr.trimEnd().split('\n')

describe('dep refuses bad settings with exit 2 and one readable error', () => {
  it("set('keep_release', 3): the line, and the key it meant", async () => {
    const r = await dep(['deploy'], { cwd: typo })
    expect(r.code, r.output).toBe(2)
    expect(lines(r.stderr)).toHaveLength(2)
    expect(lines(r.stderr)[0]).toMatch(new RegExp(`^✖ Unknown setting "keep_release" \\(set\\('keep_release', …\\) at ${join(typo, 'deployfile\\.ts')}:6\\)\\.$`))
    expect(lines(r.stderr)[1]).toMatch(/^ {2}→ Did you mean "keep_releases"\? If "keep_release" is a setting of your own, declare it first/)
    expect(r.stdout).toBe('')
    expect(existsSync(deployPath)).toBe(false)
  })

  it('-o keep_releases=five', async () => {
    const r = await dep(['deploy', '-o', 'keep_releases=five'], { cwd: good })
    expect(r.code, r.output).toBe(2)
    expect(lines(r.stderr)).toEqual([
      '✖ keep_releases must be a positive integer, got "five" (-o keep_releases=five).',
      '  → keep_releases: How many good releases to keep on each host.',
    ])
    expect(existsSync(deployPath)).toBe(false)
  })

  it('-o deploy_path= (an unset CI variable): nothing is created', async () => {
    const r = await dep(['deploy', '-o', 'deploy_path='], { cwd: good })
    expect(r.code, r.output).toBe(2)
    expect(lines(r.stderr)[0]).toBe('✖ deploy_path must be a non-empty absolute path, got "" (-o deploy_path=).')
    expect(existsSync(deployPath)).toBe(false)
    expect(readdirSync(sandbox).sort()).toEqual(['good', 'typo'])
  })

  it('an unknown -o key, with --json: one JSON line on stdout', async () => {
    const r = await dep(['deploy', '--json', '-o', 'keep_releasez=3'], { cwd: good })
    expect(r.code, r.output).toBe(2)
    const out = r.stdout.trimEnd().split('\n')
    expect(out).toHaveLength(1)
    expect(JSON.parse(out[0])).toMatchObject({ type: 'error', exitCode: 2, error: { name: 'ConfigError', message: 'Unknown setting "keep_releasez" (-o keep_releasez=3).' } })
  })
})

describe('dep config', () => {
  it('-o values keep their type (rollback_to=4 is "4"), and each setting shows its description', async () => {
    const r = await dep(['config', '-o', 'rollback_to=4', '-o', 'shared_dirs=storage,logs', '-o', 'keep_releases=7'], { cwd: good })
    expect(r.code, r.output).toBe(0)
    expect(r.stdout).toContain('  rollback_to: "4"  # Release to switch to with dep rollback, instead of the previous good one.\n')
    expect(r.stdout).toContain('  shared_dirs: ["storage","logs"]  # ')
    expect(r.stdout).toContain('  keep_releases: 7  # How many good releases to keep on each host.\n')
    expect(r.stdout).toContain('  slack_webhook: "https://hooks.example.test/x"  # Where deploys are announced\n')
  })
})
