import { existsSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { cosmiconfig } from 'cosmiconfig'
import { createJiti } from 'jiti'
import { withRegistry } from '../api/registry-scope.js'
import { ConfigError, DeployError } from '../model/errors.js'
import { Registry } from '../model/registry.js'

/** Where deployfiles are looked for, in order, in each directory from the working directory up. */
export const DEPLOYFILE_NAMES = ['deployfile.ts', 'deployfile.mts', 'deployfile.js', 'deployfile.mjs']

/** A loaded deployfile: its path and what it declared. */
export interface LoadedDeployfile {
  path: string
  registry: Registry
}

/** The root of this package (where package.json is), for resolving `import … from 'deployfile'`. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(resolve(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  return dir
}

/**
 * `deployfile` inside a deployfile must be this very package, so the
 * deployfile's calls land in the registry this loader reads. When running from
 * the build, point at the build; from source (tests), at the source.
 */
function selfAliases(): Record<string, string> {
  const here = fileURLToPath(import.meta.url)
  const root = packageRoot()
  const fromSource = here.endsWith('.ts')
  return fromSource
    ? { 'deployfile/recipes': resolve(root, 'recipes'), deployfile: resolve(root, 'src/index.ts') }
    : { 'deployfile/recipes': resolve(root, 'dist/recipes'), deployfile: resolve(root, 'dist/index.js') }
}

async function importModule(path: string): Promise<unknown> {
  if (/\.m?js$/.test(path)) return import(`${pathToFileURL(path).href}?t=${Date.now()}`)
  const jiti = createJiti(import.meta.url, {
    // A fresh module per load (two deployfiles in one process), but the
    // transpiled code is cached on disk by content hash: start-up stays fast.
    moduleCache: false,
    fsCache: true,
    interopDefault: true,
    alias: selfAliases(),
  })
  return jiti.import(path)
}

/** Finds the deployfile: `file` if given, else searching upward from `cwd`. */
export async function findDeployfile(cwd: string, file?: string): Promise<string> {
  if (file) {
    const path = resolve(cwd, file)
    if (!existsSync(path)) throw new ConfigError(`Deployfile not found: ${path}`, 'Check the path given to -f/--file.')
    return path
  }
  const explorer = cosmiconfig('deployfile', {
    searchPlaces: DEPLOYFILE_NAMES,
    searchStrategy: 'global',
    stopDir: '/',
    cache: false,
    // Only finding happens here; loading (with side effects) is ours.
    loaders: Object.fromEntries(['.ts', '.mts', '.js', '.mjs'].map((ext) => [ext, () => ({})])),
    ignoreEmptySearchPlaces: false,
  })
  const found = await explorer.search(cwd)
  if (!found) {
    throw new ConfigError(
      `No deployfile found in ${cwd} or any directory above it.`,
      `Create one with \`dep init\`, or name one with -f path/to/deployfile.ts (looked for ${DEPLOYFILE_NAMES.join(', ')}).`,
    )
  }
  return found.filepath
}

/**
 * Loads a deployfile into a fresh registry. Syntax and runtime errors become
 * a ConfigError naming the file and line.
 */
export async function loadDeployfile(path: string): Promise<LoadedDeployfile> {
  const registry = new Registry()
  try {
    await withRegistry(registry, async () => {
      const mod = (await importModule(path)) as { default?: unknown } | undefined
      // A deployfile may also export a recipe-like default function.
      if (mod && typeof mod.default === 'function') await (mod.default as () => unknown)()
    })
  } catch (error) {
    if (error instanceof DeployError) throw error
    throw new ConfigError(`The deployfile ${path} failed to load: ${describeLoadError(error, path)}`, 'Fix the deployfile and run again.', error)
  }
  return { path, registry }
}

function describeLoadError(error: unknown, path: string): string {
  const e = error instanceof Error ? error : new Error(String(error))
  const location = findLocation(e, path)
  return location ? `${e.message} (at ${location})` : e.message
}

/** The first `file:line:column` of the deployfile in an error's stack or message. */
function findLocation(error: Error, path: string): string | undefined {
  const escaped = path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const match = new RegExp(`${escaped}:(\\d+)(?::(\\d+))?`).exec(`${error.message}\n${error.stack ?? ''}`)
  return match ? `${path}:${match[1]}${match[2] ? `:${match[2]}` : ''}` : undefined
}
