/**
 * `dep init` and installed plugins: each plugin package the project depends on is applied to a
 * scratch registry (src/config/plugins.ts); the settings it declared with an `ask` question are
 * asked (or taken from `-o key=value`, or their default with `--yes`), checked against their
 * declared type like `-o`, and written into the deployfile after `use(<plugin>)`.
 */
import { ConfigError } from '../../model/errors.js'
import { didYouMean } from '../../model/suggest.js'
import type { SettingDeclaration } from '../../model/settings.js'
import { isLiteral } from '../../model/settings.js'
import { findInstalledPlugins, loadPluginSettings, type PluginSettings } from '../../config/plugins.js'

/** What the deployfile gets for one plugin: its import, its `use()`, and its settings lines. */
export interface PluginSetup {
  /** The package name. */
  name: string
  /** Its recipe export. */
  recipe: string
  /** `set(…)`/`secret(…)` lines (and comments for questions left unanswered). */
  lines: string[]
}

/** Where the plugin questions are asked; absent with `--yes`. */
export interface Prompt {
  input: NodeJS.ReadableStream
  output: NodeJS.WritableStream
}

/** A value as TypeScript source. */
export function literal(value: unknown): string {
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`
  if (Array.isArray(value)) return `[${value.map(literal).join(', ')}]`
  return JSON.stringify(value)
}

/** The environment variable a secret setting is read from: `slack_webhook` → `SLACK_WEBHOOK`. */
export function secretEnvName(key: string): string {
  return key.toUpperCase().replace(/[^A-Z0-9]+/g, '_')
}

/** The default shown and used for a question, when it has one that can be written as is. */
function defaultOf(declaration: SettingDeclaration): unknown {
  return declaration.default !== undefined && isLiteral(declaration.default) ? declaration.default : undefined
}

function shown(value: unknown): string {
  if (value === undefined) return ''
  return Array.isArray(value) ? value.join(',') : String(value)
}

/** Asks one question until the answer is of the setting's type (a readline `question`). */
async function askOne(question: (text: string) => Promise<string>, output: NodeJS.WritableStream, plugin: PluginSettings, declaration: SettingDeclaration): Promise<unknown> {
  const fallback = defaultOf(declaration)
  for (;;) {
    const reply = await question(`${declaration.ask} (${plugin.name})${fallback !== undefined ? ` [${shown(fallback)}]` : ''}: `)
    // Enter keeps the default; a lone "-" leaves the setting out.
    if (reply.trim() === '') return fallback
    if (reply.trim() === '-') return undefined
    try {
      return plugin.registry.settings.parseOption(declaration.name, reply.trim())
    } catch (error) {
      output.write(`  ${(error as Error).message}\n`)
    }
  }
}

/** The deployfile lines for one plugin, asking (or reading `given`) for each of its questions. */
async function setupOf(plugin: PluginSettings, given: Map<string, string>, ask: ((declaration: SettingDeclaration) => Promise<unknown>) | undefined): Promise<PluginSetup> {
  const lines: string[] = []
  for (const declaration of plugin.questions) {
    const key = declaration.name
    const about = declaration.description ? `  // ${declaration.description}` : ''
    if (declaration.secret) {
      lines.push(`secret(${literal(key)}, process.env.${secretEnvName(key)} ?? '')${about}`)
      continue
    }
    const value = given.has(key)
      ? plugin.registry.settings.parseOption(key, given.get(key)!)
      : ask
        ? await ask(declaration)
        : defaultOf(declaration)
    lines.push(value === undefined ? `// set(${literal(key)}, …)${about}` : `set(${literal(key)}, ${literal(value)})`)
  }
  return { name: plugin.name, recipe: plugin.recipe, lines }
}

/**
 * The plugins installed in `cwd`, loaded. `given` holds the `-o` answers `dep init` itself does
 * not know (`initKeys`); one that no plugin asks for either is a ConfigError, before any question.
 */
export async function installedPlugins(
  cwd: string,
  given: Map<string, string>,
  initKeys: readonly string[],
  warn: (message: string) => void = (message) => process.stderr.write(`${message}\n`),
): Promise<PluginSettings[]> {
  const plugins = await loadPluginSettings(cwd, findInstalledPlugins(cwd), warn)
  const questions = plugins.flatMap((plugin) => plugin.questions)
  const asked = questions.map((q) => q.name)
  for (const key of given.keys()) {
    if (questions.some((q) => q.name === key && q.secret)) {
      throw new ConfigError(`dep init does not write the secret "${key}" into the deployfile.`, `Set ${secretEnvName(key)} in the environment of the deploy (a CI secret) instead.`)
    }
    if (!asked.includes(key)) {
      const known = [...initKeys, ...asked]
      throw new ConfigError(`dep init does not know "${key}".`, didYouMean(key, known) || `It knows: ${known.join(', ')}.`)
    }
  }
  return plugins
}

/** What each plugin's setup is: its questions asked on `prompt` (none with `--yes`), or taken from `given`. */
export async function pluginSetups(plugins: readonly PluginSettings[], given: Map<string, string>, prompt: Prompt | undefined): Promise<PluginSetup[]> {
  const questions = plugins.some((plugin) => plugin.questions.some((q) => !q.secret && !given.has(q.name)))
  // One reader for every question: lines typed ahead are kept (a new readline per question drops them).
  const rl = prompt && questions ? (await import('node:readline/promises')).createInterface({ input: prompt.input, output: prompt.output, terminal: false }) : undefined
  try {
    const setups: PluginSetup[] = []
    for (const plugin of plugins) {
      const ask = rl && prompt ? (declaration: SettingDeclaration) => askOne((text) => rl.question(text), prompt.output, plugin, declaration) : undefined
      setups.push(await setupOf(plugin, given, ask))
    }
    return setups
  } finally {
    rl?.close()
  }
}

/** The lines `renderDeployfile` adds for plugins: imports, `use()` calls, and settings. */
export function pluginLines(setups: readonly PluginSetup[]): { imports: string[]; uses: string[]; settings: string[]; needsSecret: boolean } {
  return {
    imports: setups.map((s) => `import { ${s.recipe} } from ${literal(s.name)}`),
    uses: setups.map((s) => `use(${s.recipe})`),
    settings: setups.flatMap((s) => (s.lines.length ? ['', `// ${s.name} (docs: its README)`, ...s.lines] : [])),
    needsSecret: setups.some((s) => s.lines.some((line) => line.startsWith('secret('))),
  }
}
