/**
 * Plugins installed in a project, for `dep init`: which packages are plugins, and what their
 * recipe declares when applied to a scratch registry (the settings it would ask about).
 *
 * A package is a plugin when the project's package.json lists it (dependencies or
 * devDependencies) and its name is `deployfile-plugin-*` (scoped or not) or its package.json has
 * a `deployfile` field. Its recipe is the export named by `deployfile.recipe`, else the
 * camel-cased rest of the name (`deployfile-plugin-slack-notify` → `slackNotify`).
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createJiti } from 'jiti'
import { withRegistry } from '../dsl/registry-scope.js'
import { Registry } from '../model/registry.js'
import type { SettingDeclaration } from '../model/settings.js'
import { selfAliases } from './load.js'

/** A plugin package installed in the project. */
export interface InstalledPlugin {
  /** The package name, as imported. */
  name: string
  /** The named export that is its recipe. */
  recipe: string
}

/** What `dep init` learns from applying a plugin's recipe. */
export interface PluginSettings extends InstalledPlugin {
  /** Settings the plugin declared with an `ask` question, by name. */
  questions: SettingDeclaration[]
  /** The scratch registry, to parse and check answers with the plugin's declarations. */
  registry: Registry
}

const PLUGIN_NAME = /^(?:@[^/]+\/)?deployfile-plugin-([a-z0-9][a-z0-9-]*)$/

/** `deployfile-plugin-slack-notify` → `slackNotify`; undefined for a name not of that form. */
export function recipeExportOf(packageName: string): string | undefined {
  const rest = PLUGIN_NAME.exec(packageName)?.[1]
  return rest?.replace(/-+([a-z0-9])/g, (_, c: string) => c.toUpperCase()).replace(/-+$/, '')
}

function readJson(file: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
  } catch {
    return undefined
  }
}

/** The plugins the project in `dir` depends on and has installed, sorted by name. */
export function findInstalledPlugins(dir: string): InstalledPlugin[] {
  const project = readJson(join(dir, 'package.json'))
  if (!project) return []
  const names = new Set<string>()
  for (const field of ['dependencies', 'devDependencies']) {
    const deps = project[field]
    if (deps && typeof deps === 'object') for (const name of Object.keys(deps)) names.add(name)
  }
  const plugins: InstalledPlugin[] = []
  for (const name of [...names].sort()) {
    if (name === 'deployfile') continue
    const manifest = join(dir, 'node_modules', name, 'package.json')
    if (!existsSync(manifest)) continue
    const field = readJson(manifest)?.deployfile
    const declared = field && typeof field === 'object' ? (field as { recipe?: unknown }).recipe : undefined
    if (!field && !PLUGIN_NAME.test(name)) continue
    const recipe = typeof declared === 'string' && declared ? declared : recipeExportOf(name)
    if (recipe) plugins.push({ name, recipe })
  }
  return plugins
}

/** The settings a registry's recipes declared with a `dep init` question, by name. */
export function askedSettings(registry: Registry): SettingDeclaration[] {
  return registry.settings
    .names()
    .map((key) => registry.settings.get(key)!)
    .filter((declaration) => declaration.ask && declaration.origin !== 'builtin')
}

/**
 * Imports each plugin from the project and applies its recipe to a scratch registry. A plugin
 * that does not load, or has no such recipe export, is reported through `warn` and left out:
 * `dep init` still writes a deployfile.
 */
export async function loadPluginSettings(dir: string, plugins: InstalledPlugin[], warn: (message: string) => void): Promise<PluginSettings[]> {
  const jiti = createJiti(pathToFileURL(join(dir, 'package.json')).href, { moduleCache: false, fsCache: false, interopDefault: true, alias: selfAliases() })
  const loaded: PluginSettings[] = []
  for (const plugin of plugins) {
    try {
      const registry = new Registry()
      await withRegistry(registry, async () => {
        const mod = (await jiti.import(plugin.name)) as Record<string, unknown>
        const recipe = mod[plugin.recipe]
        if (typeof recipe !== 'function') {
          throw new Error(`it has no recipe export "${plugin.recipe}" (name it in its package.json: "deployfile": { "recipe": "<export>" })`)
        }
        await (recipe as () => unknown)()
      })
      loaded.push({ ...plugin, questions: askedSettings(registry), registry })
    } catch (error) {
      warn(`dep init: skipping plugin ${plugin.name}: ${(error as Error).message}`)
    }
  }
  return loaded
}
