/**
 * The run-time side of settings: which keys exist, of what type, with what
 * default and description, and which are secret. `DeployConfig` (declaration
 * merging) types `set()`/`get()` for the editor; this table is what a run can
 * check, because types are gone by then and a deployfile, `-o` or a lazy value
 * can hand over anything (`-o keep_releases=five`, an empty `-o deploy_path=`,
 * `set('keep_release', 3)`).
 */
import { ConfigError } from './errors.js'
import { closest } from './suggest.js'

/**
 * The type of a setting, checked when a value is given and again when a
 * templated or lazy value resolves:
 *
 * - `'string'`: any string (`-o` keeps the text as given, so `-o rollback_to=4` is `"4"`);
 * - `'absolute-path'`: a non-empty string starting with `/`;
 * - `'positive-integer'`, `'integer'`, `'number'`;
 * - `'boolean'` (`-o` accepts true/false, yes/no, 1/0);
 * - `'string[]'`: a list of strings (`-o` accepts JSON `["a","b"]` or `a,b`);
 * - `{ oneOf: [...] }`: one of the given strings;
 * - `'any'`: not checked (objects, or several shapes).
 */
export type SettingType =
  | 'string'
  | 'absolute-path'
  | 'positive-integer'
  | 'integer'
  | 'number'
  | 'boolean'
  | 'string[]'
  | 'any'
  | { readonly oneOf: readonly string[] }

/** What {@link declareSetting} is told about a setting. */
export interface SettingSpec {
  /** What values the setting takes; see {@link SettingType}. */
  type: SettingType
  /** The value used when nothing sets the key (a recipe default: any `set()` beats it). */
  default?: unknown
  /** One line shown by `dep config` (and in error messages about the key). */
  description?: string
  /** Mask the value as `***` in output, logs, events and `dep config`. */
  secret?: boolean
  /**
   * The question `dep init` asks for this setting when the plugin declaring it is installed
   * (docs/plugins.md). The answer is checked against `type`, like `-o`; `default` is offered.
   * A secret is never asked: `dep init` writes `secret('key', process.env.KEY ?? '')` instead.
   */
  ask?: string
}

/** A known setting: its spec, and how it became known. */
export interface SettingDeclaration extends SettingSpec {
  name: string
  /**
   * `builtin`: deployfile's own; `declared`: by `declareSetting()`; `inferred`:
   * by `setDefault()`/`secret()` from the value given (a later `declareSetting()`
   * may replace it).
   */
  origin: 'builtin' | 'declared' | 'inferred'
}

const WRITABLE_MODES = ['acl', 'chmod', 'chown', 'chgrp', 'skip'] as const

/**
 * deployfile's own settings: every key of `DeployConfig` (src/model/config-types.ts).
 * Defaults are the common recipe's: it sets them with `setDefault()`, so a
 * deployfile without the recipe has none of them; they are listed here for
 * `dep config` and documentation.
 */
export const BUILTIN_SETTINGS: Readonly<Record<string, SettingSpec>> = {
  alias: { type: 'string', description: "The host's alias (set for every host)." },
  hostname: { type: 'string', description: "The host's address (set for every host)." },
  remote_user: { type: 'string', description: "The host's SSH user, when given in its options." },
  port: { type: 'positive-integer', description: "The host's SSH port, when given in its options." },
  deploy_path: { type: 'absolute-path', description: 'Where releases live on the host, e.g. /var/www/site.' },
  repository: { type: 'string', description: 'Git URL the code comes from (code strategy git).' },
  branch: { type: 'string', description: "Branch to deploy (default: the repository's HEAD)." },
  tag: { type: 'string', description: 'Tag to deploy instead of a branch.' },
  revision: { type: 'string', description: 'Exact revision (commit) to deploy.' },
  keep_releases: { type: 'positive-integer', default: 5, description: 'How many good releases to keep on each host.' },
  release_name: { type: 'string', description: 'Name of the release being deployed (same on every host).' },
  release_path: { type: 'absolute-path', default: '{{deploy_path}}/releases/{{release_name}}', description: 'Absolute path of the release being prepared.' },
  current_path: { type: 'absolute-path', default: '{{deploy_path}}/current', description: 'Absolute path of the current link.' },
  shared_dirs: { type: 'string[]', default: [], description: 'Directories kept across releases in shared/ and linked into each release.' },
  shared_files: { type: 'string[]', default: [], description: 'Files kept across releases in shared/ and linked into each release.' },
  writable_dirs: { type: 'string[]', default: [], description: 'Directories the web server user must be able to write.' },
  writable_mode: { type: { oneOf: WRITABLE_MODES }, default: 'acl', description: 'How to make writable_dirs writable.' },
  writable_recursive: { type: 'boolean', default: true, description: 'Apply writable modes recursively.' },
  writable_chmod_mode: { type: 'string', default: '0775', description: "Mode used by writable_mode 'chmod'." },
  http_user: { type: 'string', description: 'The web server user (for acl/chown modes).' },
  http_group: { type: 'string', description: 'The web server group (for chgrp mode).' },
  clear_paths: { type: 'string[]', default: [], description: 'Paths removed from a release after the code is in place.' },
  copy_dirs: { type: 'string[]', default: [], description: 'Directories copied from the previous release before install steps (e.g. vendor).' },
  update_code_strategy: { type: { oneOf: ['git', 'upload'] }, description: 'Where the code comes from: git (repository) or upload (upload_path).' },
  upload_path: { type: 'string', description: 'Local directory uploaded by the upload strategy.' },
  healthcheck_command: { type: 'string', description: 'Command run inside the new release before the switch; a failure aborts the deploy everywhere.' },
  healthcheck_url: { type: 'string', description: 'URL fetched after the switch; a non-2xx answer rolls the whole fleet back.' },
  healthcheck_retries: { type: 'positive-integer', default: 5, description: 'Tries for healthcheck_url.' },
  healthcheck_timeout: { type: 'number', default: 5, description: 'Timeout of one healthcheck_url try, in seconds.' },
  rollback_to: { type: 'string', description: 'Release to switch to with dep rollback, instead of the previous good one.' },
  log_file: { type: 'string', description: 'Write a transcript of the run to this file.' },
  user: { type: 'string', description: 'Who is deploying (recorded in the lock and the ledger).' },
  'bin/git': { type: 'string', default: 'git', description: 'The git binary on the host.' },
  'bin/php': { type: 'string', description: 'The php binary on the host.' },
  'bin/composer': { type: 'string', description: 'The composer command on the host.' },
  // A path, the content itself, or an object of values: several shapes, checked by the recipe.
  dotenv: { type: 'any', description: 'The shared .env (Laravel recipe): a local file, its content, or an object of values.' },
  upload_exclude: { type: 'string[]', default: ['.git'], description: 'tar patterns left out by the upload strategy.' },
  force: { type: 'boolean', description: "Set by --force: e.g. deploy:unlock --force removes another run's lock." },
}

/** How a value of each type is described in errors ("keep_releases must be …"). */
export function describeType(type: SettingType): string {
  if (typeof type === 'object') return `one of ${type.oneOf.join(', ')}`
  switch (type) {
    case 'string':
      return 'a string'
    case 'absolute-path':
      return 'a non-empty absolute path'
    case 'positive-integer':
      return 'a positive integer'
    case 'integer':
      return 'an integer'
    case 'number':
      return 'a number'
    case 'boolean':
      return 'true or false'
    case 'string[]':
      return 'a list of strings'
    case 'any':
      return 'any value'
  }
}

/** True when `value` is of `type`. */
export function isOfType(type: SettingType, value: unknown): boolean {
  if (typeof type === 'object') return typeof value === 'string' && type.oneOf.includes(value)
  switch (type) {
    case 'string':
      return typeof value === 'string'
    case 'absolute-path':
      return typeof value === 'string' && value.startsWith('/')
    case 'positive-integer':
      return Number.isInteger(value) && (value as number) > 0
    case 'integer':
      return Number.isInteger(value)
    case 'number':
      return typeof value === 'number' && Number.isFinite(value)
    case 'boolean':
      return typeof value === 'boolean'
    case 'string[]':
      return Array.isArray(value) && value.every((item) => typeof item === 'string')
    case 'any':
      return true
  }
}

const VALID_TYPES = ['string', 'absolute-path', 'positive-integer', 'integer', 'number', 'boolean', 'string[]', 'any']

function isSettingType(type: unknown): type is SettingType {
  if (typeof type === 'string') return VALID_TYPES.includes(type)
  return (
    !!type &&
    typeof type === 'object' &&
    Array.isArray((type as { oneOf?: unknown }).oneOf) &&
    (type as { oneOf: unknown[] }).oneOf.length > 0 &&
    (type as { oneOf: unknown[] }).oneOf.every((v) => typeof v === 'string')
  )
}

function sameType(a: SettingType, b: SettingType): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

/** The type a value suggests, for keys known only from a `setDefault()`/`secret()` value. */
export function inferType(value: unknown): SettingType {
  if (typeof value === 'string') return 'string'
  if (typeof value === 'number') return 'number'
  if (typeof value === 'boolean') return 'boolean'
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return 'string[]'
  // A lazy value or an object: its shape is not known before it runs.
  return 'any'
}

/** A string that will be templated (`{{key}}` not escaped): its type is known only once it resolves. */
export function isTemplated(value: unknown): boolean {
  if (typeof value === 'string') return /(^|[^\\])\{\{/.test(value)
  if (Array.isArray(value)) return value.some(isTemplated)
  return false
}

/** A value that can be checked as given: neither lazy nor templated. */
export function isLiteral(value: unknown): boolean {
  return typeof value !== 'function' && !isTemplated(value)
}

/**
 * Close names for a misspelt setting. Tighter than for tasks: setting names
 * share long suffixes (`deploy_path`, `upload_path`, `release_path`), and
 * "did you mean upload_path" for a missing deploy_path sends people the wrong way.
 */
export function closeSettings(wanted: string, candidates: Iterable<string>): string[] {
  return closest(wanted, candidates, 3)
}

function show(value: unknown): string {
  if (typeof value === 'function') return 'a function'
  if (value === undefined) return 'undefined'
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

/**
 * The settings one registry (one loaded deployfile) knows: deployfile's own,
 * then those its recipes, plugins and the deployfile declare.
 */
export class SettingsTable {
  private readonly table = new Map<string, SettingDeclaration>()

  constructor(builtins: Readonly<Record<string, SettingSpec>> = BUILTIN_SETTINGS) {
    for (const [name, spec] of Object.entries(builtins)) this.table.set(name, { ...spec, name, origin: 'builtin' })
  }

  /** The declaration of `name`, if it is known. */
  get(name: string): SettingDeclaration | undefined {
    return this.table.get(name)
  }

  has(name: string): boolean {
    return this.table.has(name)
  }

  /** Every known name, sorted. */
  names(): string[] {
    return [...this.table.keys()].sort()
  }

  /**
   * Declares `name`. Declaring a known key again is allowed with the same type
   * (its description, default and secrecy are updated); a different type is an
   * error, unless the key was only inferred from a value.
   */
  declare(name: string, spec: SettingSpec, origin: 'declared' | 'inferred' = 'declared'): SettingDeclaration {
    if (typeof name !== 'string' || !name.trim()) throw new ConfigError('declareSetting() needs a setting name.')
    if (/\s/.test(name)) throw new ConfigError(`Setting name "${name}" has white space in it.`, 'Names are like app_name or bin/node.')
    if (!spec || !isSettingType(spec.type)) {
      throw new ConfigError(
        `declareSetting('${name}', …): type must be one of ${VALID_TYPES.map((t) => `'${t}'`).join(', ')} or { oneOf: ['a', 'b'] }, got ${show(spec?.type)}.`,
      )
    }
    if (spec.ask !== undefined && (typeof spec.ask !== 'string' || !spec.ask.trim())) {
      throw new ConfigError(`declareSetting('${name}', …): ask must be the question dep init asks, got ${show(spec.ask)}.`)
    }
    const known = this.table.get(name)
    if (known && known.origin !== 'inferred' && origin === 'inferred') return known
    if (known && known.origin !== 'inferred' && !sameType(known.type, spec.type)) {
      throw new ConfigError(
        `Setting "${name}" is already declared as ${describeType(known.type)}; it cannot also be ${describeType(spec.type)}.`,
        `Use another name for your setting, or declare it with the same type.`,
      )
    }
    const declaration: SettingDeclaration = {
      ...known,
      ...Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined)),
      type: spec.type,
      name,
      origin: known?.origin === 'builtin' ? 'builtin' : origin,
    }
    if ('default' in spec && spec.default !== undefined && isLiteral(spec.default) && !isOfType(spec.type, spec.default)) {
      throw new ConfigError(`declareSetting('${name}', …): the default ${show(spec.default)} is not ${describeType(spec.type)}.`)
    }
    this.table.set(name, declaration)
    return declaration
  }

  /**
   * The problem with `value` for `key`, as a ConfigError, or undefined when it
   * is fine (or cannot be told yet: lazy and templated values are checked when
   * they resolve). Unknown keys are not this method's business: see {@link unknown}.
   */
  problem(key: string, value: unknown, where: string, options: { secret?: boolean; resolved?: boolean } = {}): ConfigError | undefined {
    const declaration = this.table.get(key)
    if (!declaration) return undefined
    if (!options.resolved && !isLiteral(value)) return undefined
    if (isOfType(declaration.type, value)) return undefined
    const got = options.secret || declaration.secret ? '***' : show(value)
    const enumHint =
      typeof declaration.type === 'object' && typeof value === 'string'
        ? closest(value, declaration.type.oneOf).map((v) => `"${v}"`)[0]
        : undefined
    return new ConfigError(
      `${key} must be ${describeType(declaration.type)}, got ${got} (${where}).`,
      [enumHint ? `Did you mean ${enumHint}?` : '', declaration.description ? `${key}: ${declaration.description}` : '']
        .filter(Boolean)
        .join(' '),
    )
  }

  /** Throws {@link problem} if there is one. */
  check(key: string, value: unknown, where: string, options?: { secret?: boolean; resolved?: boolean }): void {
    const error = this.problem(key, value, where, options)
    if (error) throw error
  }

  /**
   * The error for a key nobody declared: the close known names, and how to
   * declare it (with the type its value suggests).
   */
  unknown(key: string, where: string, value?: unknown): ConfigError {
    const near = closeSettings(key, this.table.keys())
    const type = typeof value === 'function' || value === undefined ? undefined : inferType(value)
    const declaration = `declareSetting('${key}', { type: '${type && type !== 'any' ? type : 'string'}' })`
    return new ConfigError(
      `Unknown setting "${key}" (${where}).`,
      [
        near.length ? `Did you mean ${near.map((n) => `"${n}"`).join(', ')}?` : '',
        `If "${key}" is a setting of your own, declare it first, in the deployfile or its recipe: ${declaration}, imported from 'deployfile'.`,
      ]
        .filter(Boolean)
        .join(' '),
    )
  }

  /** Throws {@link unknown} when `key` is not declared, then {@link check}s the value. */
  checkKnown(key: string, value: unknown, where: string, options?: { secret?: boolean }): void {
    if (!this.table.has(key)) throw this.unknown(key, where, value)
    this.check(key, value, where, options)
  }

  /**
   * Parses the text of `-o key=value` as the key's type: string keys keep the
   * text (`-o rollback_to=4` is "4"), numbers and booleans are parsed, a list
   * is JSON (`["a","b"]`) or comma-separated. Unknown keys and values that do
   * not fit are a ConfigError.
   */
  parseOption(key: string, text: string, secret = false): unknown {
    const where = `-o ${key}=${secret ? '***' : text}`
    const declaration = this.table.get(key)
    if (!declaration) throw this.unknown(key, where)
    const value = parseText(declaration.type, text)
    this.check(key, value, where, { secret, resolved: true })
    return value
  }
}

/** `text` read as a value of `type`; text that does not parse is returned as is (and then refused by the check). */
export function parseText(type: SettingType, text: string): unknown {
  if (typeof type === 'object') return text
  const trimmed = text.trim()
  switch (type) {
    case 'string':
    case 'absolute-path':
      return text
    case 'positive-integer':
    case 'integer':
      return /^[-+]?\d+$/.test(trimmed) ? Number(trimmed) : text
    case 'number':
      return trimmed !== '' && Number.isFinite(Number(trimmed)) ? Number(trimmed) : text
    case 'boolean': {
      const lower = trimmed.toLowerCase()
      if (['true', 'yes', '1', 'on'].includes(lower)) return true
      if (['false', 'no', '0', 'off'].includes(lower)) return false
      return text
    }
    case 'string[]': {
      if (trimmed.startsWith('[')) {
        try {
          return JSON.parse(trimmed)
        } catch {
          return text
        }
      }
      return trimmed === '' ? [] : trimmed.split(',').map((item) => item.trim()).filter(Boolean)
    }
    case 'any':
      return parseLoose(text)
  }
}

/** Text that looks like JSON (numbers, booleans, arrays, objects) is parsed; anything else stays text. */
export function parseLoose(text: string): unknown {
  if (/^(true|false|null|-?\d+(\.\d+)?|\[.*\]|\{.*\})$/s.test(text.trim())) {
    try {
      return JSON.parse(text)
    } catch {
      // not JSON after all: keep the text
    }
  }
  return text
}
