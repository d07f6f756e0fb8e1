import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, unlinkSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { cosmiconfig } from 'cosmiconfig'
import { createJiti } from 'jiti'
import { withRegistry } from '../dsl/registry-scope.js'
import { ConfigError, DeployError } from '../model/errors.js'
import { Registry } from '../model/registry.js'
import { userLocation } from '../model/user-location.js'
import { didYouMean } from '../model/suggest.js'

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
export function selfAliases(): Record<string, string> {
  const here = fileURLToPath(import.meta.url)
  const root = packageRoot()
  const fromSource = here.endsWith('.ts')
  return fromSource
    ? { 'deployfile/recipes': resolve(root, 'recipes'), 'deployfile/plugins': resolve(root, 'plugins'), 'deployfile/testing': resolve(root, 'src/testing/rehearse.ts'), deployfile: resolve(root, 'src/index.ts') }
    : { 'deployfile/recipes': resolve(root, 'dist/recipes'), 'deployfile/plugins': resolve(root, 'dist/plugins'), 'deployfile/testing': resolve(root, 'dist/testing.js'), deployfile: resolve(root, 'dist/index.js') }
}

async function importModule(path: string): Promise<unknown> {
  if (/\.m?js$/.test(path)) return import(`${pathToFileURL(path).href}?t=${Date.now()}`)
  const cacheDir = transpileCacheDir()
  const jiti = createJiti(import.meta.url, {
    // A fresh module per load (two deployfiles in one process), but the transpiled code is cached
    // on disk by content hash: without it every start pays ~2 s for loading babel and transpiling
    // (measured: `dep list` 2.0 s vs 0.11–0.35 s). The cache is the user's own (see
    // transpileCacheDir), never jiti's default `$TMPDIR/jiti`, which any local user can create first.
    moduleCache: false,
    fsCache: cacheDir ?? false,
    // jiti's other fallback for ESM writes to `$TMPDIR/jiti-esm`; a data: URL needs no file.
    esmEvalTempFile: false,
    interopDefault: true,
    alias: selfAliases(),
  })
  // Files jiti writes now are 0600 (the cache holds the deployfile's literal secrets).
  const umask = cacheDir ? process.umask(0o077) : undefined
  try {
    return await jiti.import(path)
  } finally {
    if (umask !== undefined) process.umask(umask)
  }
}

/** The directory of this user's caches: `$XDG_CACHE_HOME`, else `~/.cache`. */
function userCacheBase(): string | undefined {
  const xdg = process.env.XDG_CACHE_HOME
  if (xdg && isAbsolute(xdg)) return xdg
  const home = homedir()
  return home && isAbsolute(home) ? join(home, '.cache') : undefined
}

/**
 * Where transpiled deployfiles are cached: `<user cache dir>/deployfile/jiti`, created 0700, or
 * undefined (no disk cache, only slower) when it cannot be made safe. A cached file is code this
 * process will run and may hold secrets, so nobody else may be able to write or read it:
 * - the directory is owned by this user, mode 0700, not a symlink;
 * - every directory above it is owned by this user or root and not writable by group or others
 *   (or is sticky, like /tmp): nobody else can rename it away and put their own in its place;
 * - every entry in it that is not a regular file owned by this user with no group/other bits is
 *   deleted before jiti looks (so it is never loaded), and our own files are made 0600;
 * - only the newest TRANSPILE_CACHE_ENTRIES files are kept.
 * A directory that fails a check is left alone, with a warning on stderr.
 */
export function transpileCacheDir(base: string | undefined = userCacheBase(), warn: (message: string) => void = defaultWarn): string | undefined {
  if (!base || typeof process.getuid !== 'function') return undefined
  const uid = process.getuid()
  const dir = join(base, 'deployfile', 'jiti')
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch {
    return undefined // a read-only home, say: run without the cache
  }
  const unsafe = unsafeReason(dir, uid)
  if (unsafe) {
    warn(`deployfile: not using the transpile cache ${dir}: ${unsafe}. Fix or remove it (start-up is slower without it).`)
    return undefined
  }
  try {
    const kept: Array<{ file: string; mtimeMs: number }> = []
    for (const name of readdirSync(dir)) {
      const file = join(dir, name)
      const info = lstatSync(file)
      if (!info.isFile() || info.uid !== uid || (info.mode & 0o022) !== 0) unlinkSync(file)
      else {
        if ((info.mode & 0o077) !== 0) chmodSync(file, 0o600)
        kept.push({ file, mtimeMs: info.mtimeMs })
      }
    }
    // Every edit of a deployfile leaves a new entry: keep the newest, so that old copies of its
    // secrets do not pile up and this sweep stays short (1,900 entries cost 20 ms of every start).
    kept.sort((a, b) => b.mtimeMs - a.mtimeMs)
    for (const { file } of kept.slice(TRANSPILE_CACHE_ENTRIES)) unlinkSync(file)
  } catch (error) {
    warn(`deployfile: not using the transpile cache ${dir}: ${(error as Error).message}`)
    return undefined
  }
  return dir
}

/** How many transpiled files the cache keeps (the newest): a few projects' deployfiles and their imports. */
export const TRANSPILE_CACHE_ENTRIES = 64

/** Why `dir` (or a directory above it) is not safe to keep code in, or undefined when it is. */
function unsafeReason(dir: string, uid: number): string | undefined {
  const own = lstatSync(dir)
  if (!own.isDirectory()) return 'it is not a directory'
  if (own.uid !== uid) return `it belongs to uid ${own.uid}, not ${uid}`
  if ((own.mode & 0o077) !== 0) return `its mode is ${(own.mode & 0o777).toString(8)}, not 700`
  // The directories above, as they really are (a symlinked home is judged by its target).
  for (let parent = realpathSync(dirname(dir)); ; parent = dirname(parent)) {
    const info = lstatSync(parent)
    const sticky = (info.mode & 0o1000) !== 0
    if (info.uid !== uid && info.uid !== 0) return `${parent} belongs to uid ${info.uid}`
    if ((info.mode & 0o022) !== 0 && !sticky) return `${parent} is writable by others (mode ${(info.mode & 0o777).toString(8)})`
    if (dirname(parent) === parent) return undefined
  }
}

function defaultWarn(message: string): void {
  process.stderr.write(`${message}\n`)
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
 * a ConfigError naming the file and line, and so do settings that are not
 * declared or not of their type.
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
    throw loadError(error, path)
  }
  checkReferences(registry, path)
  // Only now: a deployfile may set() a key before the use(recipe) that declares it.
  // Each error names the line the value was given on.
  registry.checkSettings()
  return { path, registry }
}

/**
 * A hook on a task nobody defined never runs, and a group listing one fails only when run: both are
 * load-time errors (exit 2) naming the call, its file:line, and the nearest task names.
 */
function checkReferences(registry: Registry, path: string): void {
  const missing = registry.undefinedReferences()
  if (missing.length === 0) return
  const names = [...registry.tasks.values()].filter((t) => !t.hidden).map((t) => t.name)
  const [first] = missing
  const location = findLocation(first.site, path) ?? userLocation(first.site)
  const where = location ? (/^(.*):(\d+):(\d+)$/.exec(location) ?? undefined) : undefined
  const others = missing.slice(1).map((ref) => {
    const at = findLocation(ref.site, path) ?? userLocation(ref.site)
    return `Also: ${ref.call} names "${ref.name}", not defined either${at ? ` (at ${at})` : ''}.`
  })
  throw new ConfigError(
    `${first.call}${location ? ` at ${location}` : ''}: there is no task "${first.name}".`,
    [
      didYouMean(first.name, names) || 'Run `dep list` to see the tasks.',
      ...others,
      ...(where ? codeFrame(where[1], Number(where[2]), Number(where[3])) : []),
    ].join('\n'),
  )
}

/**
 * One readable error for a deployfile that does not load: a syntax error, or
 * code that threw at load time (calling something undefined, a bad setting),
 * naming the file and line and showing it.
 */
function loadError(error: unknown, path: string): Error {
  const e = error instanceof Error ? error : new Error(String(error))
  // jiti reports a syntax error as "ParseError: <what>\n <file>:<line>:<column>".
  const parse = /^(?:ParseError|SyntaxError): ([\s\S]*?)\s*\n\s*(\/[^\n]*?):(\d+):(\d+)\s*$/.exec(e.message)
  if (parse) {
    const [, what, file, line, column] = parse
    return new ConfigError(
      `The deployfile ${path} failed to load: syntax error at ${file}:${line}:${column}: ${what.trim()}`,
      ['Fix the deployfile and run again.', ...codeFrame(file, Number(line), Number(column))].join('\n'),
      error,
    )
  }
  const location = findLocation(e, path) ?? userLocation(e)
  const where = location ? (/^(.*):(\d+):(\d+)$/.exec(location) ?? /^(.*):(\d+)$/.exec(location)) : null
  const frame = where ? codeFrame(where[1], Number(where[2]), where[3] ? Number(where[3]) : undefined) : []
  if (error instanceof DeployError) {
    // Our own error (a bad task definition, a bad setting): keep it, say where it came from.
    if (location && !error.message.includes(location)) error.message = `${error.message} (at ${location})`
    return error
  }
  const what = e.name && e.name !== 'Error' && !e.message.startsWith(e.name) ? `${e.name}: ${e.message}` : e.message
  const notDefined = /^(\S+) is not defined$/.exec(e.message)?.[1]
  return new ConfigError(
    `The deployfile ${path} failed to load${location ? `, at ${location}` : ''}: ${what}`,
    [
      notDefined
        ? `Is "${notDefined}" imported (import { ${notDefined} } from 'deployfile') and spelled right?`
        : (retiredHint(e) ?? 'Fix the deployfile and run again.'),
      ...frame,
    ].join('\n'),
    error,
  )
}

/**
 * Ways a deployfile may know from PHP Deployer (or an earlier deployfile) that the API has one
 * other way for: the error then says which.
 */
const RETIRED: Record<string, string> = {
  desc: "deployfile has no desc(): give the description as an option, task('name', fn, { description: '…' }).",
  context: "deployfile has no context(): a task body receives its context, task('name', async (ctx) => …), and so does a lazy setting, set('key', (ctx) => …).",
  quote: 'deployfile exports no quote(): build the command with sh`… ${value}`, which quotes every value.',
}
const CHAINED =
  "host() and task() return nothing to chain: give a host's settings as host('web1', { config: { … } }) and a task's options as task('name', fn, { once: true, description: '…' })."

/** The hint for an error that a retired way of doing something causes at load time, if it is one. */
function retiredHint(error: Error): string | undefined {
  // "(0 , _deployfile.desc) is not a function" (a missing import, compiled) or "desc is not a function".
  const called = /(?:^|[.(\s])(\w+)\)? is not a function$/.exec(error.message)?.[1]
  if (called && Object.hasOwn(RETIRED, called)) return RETIRED[called]
  // host('web1').set(…), task('x', fn).once()
  if (/^Cannot read properties of undefined \(reading '(set|desc|once|hidden|limit|select|phase)'\)$/.test(error.message)) return CHAINED
  return undefined
}

/** The lines around `line` of a file, the line marked and a caret under `column`. */
function codeFrame(file: string, line: number, column?: number): string[] {
  let lines: string[]
  try {
    lines = readFileSync(file, 'utf8').split('\n')
  } catch {
    return []
  }
  if (line < 1 || line > lines.length) return []
  const width = String(Math.min(lines.length, line + 1)).length
  const frame: string[] = []
  for (let n = Math.max(1, line - 2); n <= Math.min(lines.length, line + 1); n++) {
    frame.push(`${n === line ? '>' : ' '} ${String(n).padStart(width)} | ${lines[n - 1]}`)
    if (n === line && column) frame.push(`  ${' '.repeat(width)} | ${' '.repeat(Math.max(0, column - 1))}^`)
  }
  return frame
}

/** The first `file:line:column` of the deployfile in an error's stack or message. */
function findLocation(error: Error, path: string): string | undefined {
  const escaped = path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const match = new RegExp(`${escaped}:(\\d+)(?::(\\d+))?`).exec(`${error.message}\n${error.stack ?? ''}`)
  return match ? `${path}:${match[1]}${match[2] ? `:${match[2]}` : ''}` : undefined
}
