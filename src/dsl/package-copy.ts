/**
 * One deployfile package per run. A plugin that brings its own copy of
 * deployfile (a `dependencies` entry instead of a peer dependency, so npm
 * nests `node_modules/deployfile` inside the plugin) declares its tasks,
 * settings and types through that copy: another version's registry, another
 * `DeployConfig` for the type checker. The loader claims the run for its own
 * package; a DSL call from any other copy is refused with the plugin's name and
 * the fix, instead of half working.
 *
 * Two instances of the *same* files are fine (a TypeScript loader evaluates the
 * package again for the deployfile): copies are told apart by package directory.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { basename, dirname, join, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '../model/errors.js'

const LOADER = Symbol.for('deployfile.loaderPackage')
type Holder = { [LOADER]?: string }
const holder = globalThis as Holder

/** The directory of the package.json above `file` (real path), or the file's own directory when there is none. */
export function packageDirOf(file: string): string {
  let dir = dirname(file)
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) break
    const parent = dirname(dir)
    if (parent === dir) return dirname(file)
    dir = parent
  }
  try {
    return realpathSync(dir)
  } catch {
    return dir
  }
}

let ownDir: string | undefined
/** The package directory of this copy of deployfile. */
function thisPackageDir(): string {
  return (ownDir ??= packageDirOf(fileURLToPath(import.meta.url)))
}

/**
 * Makes this copy the one the run belongs to while `fn` runs (the loader calls
 * it around loading a deployfile); the previous owner is restored after.
 */
export async function asLoaderPackage<T>(fn: () => Promise<T>): Promise<T> {
  const previous = holder[LOADER]
  holder[LOADER] = thisPackageDir()
  try {
    return await fn()
  } finally {
    holder[LOADER] = previous
  }
}

/** Throws when a load is in progress and it belongs to another copy of deployfile than this one. */
export function assertLoaderPackage(): void {
  const loader = holder[LOADER]
  if (loader === undefined || loader === thisPackageDir()) return
  throw secondCopyError(thisPackageDir(), loader)
}

function versionOf(dir: string): string {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string }).version ?? '?'
  } catch {
    return '?'
  }
}

function nameOf(dir: string): string {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name ?? basename(dir)
  } catch {
    return basename(dir)
  }
}

/**
 * The error for a DSL call made through the copy at `copy` while the run
 * belongs to `loader`. A copy nested in a package's node_modules names that
 * package (the plugin); a project's own copy means another `dep` is running.
 */
export function secondCopyError(copy: string, loader: string): ConfigError {
  const nested = `${sep}node_modules${sep}`
  const holderDir = copy.endsWith(`${nested}deployfile`) ? copy.slice(0, -`${nested}deployfile`.length) : undefined
  const inPackage = holderDir?.includes(nested) === true
  const what = `Two copies of deployfile in one run: ${inPackage ? `${nameOf(holderDir!)} (${holderDir}) imports` : 'the deployfile imports'} ${copy} (${versionOf(copy)}), but this run is ${loader} (${versionOf(loader)}).`
  const why = 'Tasks, settings and types declared through the second copy would not be the ones this run checks and runs.'
  const fix = inPackage
    ? `Make deployfile a peerDependency of ${nameOf(holderDir!)} (not a dependency) and reinstall so that npm keeps one copy: remove ${copy}, run npm install (or npm dedupe), and check with npm ls deployfile.`
    : `Run the project's own dep (npx dep …), or install the same deployfile the project uses.`
  return new ConfigError(`${what} ${why}`, fix)
}
