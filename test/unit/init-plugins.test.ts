/**
 * `dep init` and installed plugins: which packages count as plugins and which export is their
 * recipe; their questions asked as a user at a terminal answers them (checked against the
 * declared type), and what the deployfile gets.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { askedSettings, findInstalledPlugins, recipeExportOf, type PluginSettings } from '../../src/config/plugins.js'
import { pluginSetups } from '../../src/cli/commands/init-plugins.js'
import { defaultAnswers } from '../../src/cli/commands/init.js'
import { renderDeployfile } from '../../src/cli/commands/init-files.js'
import { example } from '../fixtures/deployfile-plugin-example/index.js'
import { declare } from './helpers.js'

const dirs: string[] = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

function project(deps: Record<string, Record<string, unknown> | undefined>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'df-init-plugins-'))
  dirs.push(dir)
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'shop', devDependencies: Object.fromEntries(Object.keys(deps).map((n) => [n, '*'])) }))
  for (const [name, manifest] of Object.entries(deps)) {
    if (!manifest) continue // listed, not installed
    mkdirSync(path.join(dir, 'node_modules', name), { recursive: true })
    writeFileSync(path.join(dir, 'node_modules', name, 'package.json'), JSON.stringify({ name, ...manifest }))
  }
  return dir
}

/** Answers the questions as a person would: each reply typed once its question shows. */
async function answer(plugins: PluginSettings[], replies: string[]): Promise<{ lines: string[]; prompts: string }> {
  const input = new PassThrough()
  const output = new PassThrough()
  let prompts = ''
  const queue = [...replies]
  output.on('data', (chunk: Buffer) => {
    prompts += chunk.toString()
    if (prompts.endsWith(': ')) setImmediate(() => (queue.length ? input.write(`${queue.shift()}\n`) : input.end()))
  })
  const setups = await pluginSetups(plugins, new Map(), { input, output })
  return { lines: setups.flatMap((s) => s.lines), prompts }
}

describe('finding installed plugins', () => {
  it('names the recipe export after the package: the rest of the name, camel-cased', () => {
    expect(recipeExportOf('deployfile-plugin-example')).toBe('example')
    expect(recipeExportOf('@acme/deployfile-plugin-slack-notify')).toBe('slackNotify')
    expect(recipeExportOf('deployfile')).toBeUndefined()
    expect(recipeExportOf('my-deployfile-plugin-x')).toBeUndefined()
  })

  it('takes dependencies named deployfile-plugin-* or declaring a "deployfile" field, installed ones only', () => {
    const dir = project({
      'deployfile-plugin-example': {},
      '@acme/deployfile-plugin-slack-notify': {},
      'acme-deploy-tools': { deployfile: { recipe: 'acmeTools' } },
      'deployfile-plugin-renamed': { deployfile: { recipe: 'custom' } },
      'deployfile-plugin-missing': undefined,
      deployfile: {},
      'left-pad': {},
    })
    expect(findInstalledPlugins(dir)).toEqual([
      { name: '@acme/deployfile-plugin-slack-notify', recipe: 'slackNotify' },
      { name: 'acme-deploy-tools', recipe: 'acmeTools' },
      { name: 'deployfile-plugin-example', recipe: 'example' },
      { name: 'deployfile-plugin-renamed', recipe: 'custom' },
    ])
  })
})

describe('the questions of a plugin', () => {
  async function examplePlugin(): Promise<PluginSettings> {
    const registry = await declare(() => example())
    return { name: 'deployfile-plugin-example', recipe: 'example', questions: askedSettings(registry), registry }
  }

  it('asks each declared question with its default, refuses an answer of the wrong type and asks again, never asks a secret', async () => {
    const plugin = await examplePlugin()
    expect(plugin.questions.map((q) => q.name)).toEqual(['example_greeting', 'example_times', 'example_token'])
    const { lines, prompts } = await answer([plugin], ['howdy', 'three', '3'])
    expect(prompts).toContain('Greeting written after each deploy (deployfile-plugin-example) [hello]: ')
    expect(prompts).toContain('example_times must be a positive integer, got "three"')
    expect(prompts).not.toContain('API token')
    expect(lines).toEqual([
      `set('example_greeting', 'howdy')`,
      `set('example_times', 3)`,
      `secret('example_token', process.env.EXAMPLE_TOKEN ?? '')  // A token the plugin would send somewhere (never shown).`,
    ])
  })

  it('Enter keeps the default, "-" leaves the setting out; the deployfile imports, uses and sets the plugin', async () => {
    const plugin = await examplePlugin()
    const { lines } = await answer([plugin], ['', '-'])
    expect(lines.slice(0, 2)).toEqual([`set('example_greeting', 'hello')`, `// set('example_times', …)  // How many times the greeting is written.`])
    const text = renderDeployfile({ ...defaultAnswers('/tmp/shop'), repository: '' }, [{ name: plugin.name, recipe: plugin.recipe, lines }])
    expect(text).toContain(`import { set, secret, use, localhost } from 'deployfile'`)
    expect(text).toContain(`import { common } from 'deployfile/recipes/common'\nimport { example } from 'deployfile-plugin-example'\n`)
    expect(text).toContain('use(common)\nuse(example)\n')
    expect(text).toContain(`// deployfile-plugin-example (docs: its README)\nset('example_greeting', 'hello')`)
  })
})
