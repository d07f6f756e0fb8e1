import { AsyncLocalStorage } from 'node:async_hooks'
import { ConfigError, DeployError } from './errors.js'
import { closeSettings, isOfType, parseLoose, type SettingsTable } from './settings.js'

/**
 * A setting computed when first read, once per host, then cached for the rest
 * of the run (the DSL's `LazyValue`, typed there). It receives what
 * {@link HostConfigOptions.lazyContext} gives: the context of the task reading it.
 */
type LazyFunction = (context: unknown) => unknown

export type Scope = Map<string, unknown>

const TEMPLATE = /(\\?)\{\{\s*([A-Za-z0-9_./:-]+)\s*\}\}/g

export interface ConfigLookup {
  /** The raw (unresolved) value of `key` for this host, walking overrides → host → global. */
  raw(key: string): { found: boolean; value: unknown }
  /** Every key visible to this host. */
  keys(): string[]
}

/** The lazy keys being computed in the current async context, to catch a value that reads itself. */
const computing = new AsyncLocalStorage<string[]>()

/** Options of a {@link HostConfig}. */
export interface HostConfigOptions {
  /** Refuse to compute lazy values (e.g. `dep config`, which must not run anything). */
  noLazy?: boolean
  /** The known settings: values are checked against their types once resolved. */
  settings?: SettingsTable
  /**
   * What a lazy value receives: the context of the task that reads it (the DSL's TaskContext), or
   * undefined where no task of this host runs (the value cannot be computed there).
   */
  lazyContext?: () => unknown
}

/**
 * Resolves settings for one host: `-o` overrides beat values set during the
 * run, host values, global values and recipe defaults; lazy values are
 * computed once and cached; strings are templated on every read, so a
 * template always sees the current values it refers to.
 */
export class HostConfig {
  /** Results of lazy values, before templating. */
  private readonly lazyResults = new Map<string, Promise<unknown>>()

  constructor(
    readonly hostAlias: string,
    private readonly layers: { overrides: Scope; runtime: Scope; host: Scope; global: Scope; defaults?: Scope },
    private readonly onSecret: (value: string) => void = () => {},
    private readonly secretKeys: Set<string> = new Set(),
    private readonly options: HostConfigOptions = {},
  ) {}

  private rawValue(key: string): { found: boolean; value: unknown } {
    for (const layer of [this.layers.overrides, this.layers.runtime, this.layers.host, this.layers.global, this.layers.defaults ?? new Map()]) {
      if (layer.has(key)) return { found: true, value: layer.get(key) }
    }
    return { found: false, value: undefined }
  }

  has(key: string): boolean {
    return this.rawValue(key).found
  }

  /** True when the value of `key` is computed lazily (a function). */
  isLazy(key: string): boolean {
    return typeof this.rawValue(key).value === 'function'
  }

  keys(): string[] {
    const all = new Set<string>()
    for (const layer of Object.values(this.layers)) for (const key of layer?.keys() ?? []) all.add(key)
    return [...all].sort()
  }

  /** Sets a value for this host only, for the rest of the run. */
  set(key: string, value: unknown): void {
    this.layers.runtime.set(key, value)
    this.lazyResults.delete(key)
  }

  isSecret(key: string): boolean {
    return this.secretKeys.has(key)
  }

  /**
   * The templated value of `key`; `given` supplies values that win over every
   * layer for this one read (e.g. a placeholder release name, to learn where
   * releases live before the name is chosen).
   */
  async get(key: string, fallback?: unknown, stack: string[] = [], given?: Record<string, unknown>): Promise<unknown> {
    if (given && Object.hasOwn(given, key)) return given[key]
    if (stack.includes(key) || computing.getStore()?.includes(key)) {
      throw new ConfigError(`Setting "${key}" refers to itself: ${[...(computing.getStore() ?? []), ...stack, key].join(' → ')}`)
    }
    const { found, value } = this.rawValue(key)
    if (!found) {
      if (fallback !== undefined) return fallback
      throw this.missing(key)
    }
    const computed = typeof value === 'function' ? await this.computeLazy(key, value as LazyFunction) : value
    const resolved = await this.template(computed, [...stack, key], given)
    if (this.secretKeys.has(key)) this.markSecret(resolved)
    // Literal values were checked when given; lazy and templated ones can only be checked now.
    // (The message is built only for a value that fails: get() is called a lot.)
    const declared = this.options.settings?.get(key)
    if (declared && !isOfType(declared.type, resolved)) {
      this.options.settings!.check(key, resolved, `${describeOrigin(value)} for host ${this.hostAlias}`, { secret: this.secretKeys.has(key), resolved: true })
    }
    return resolved
  }

  /**
   * The error for reading a key nobody set. A known key is spelt right: say
   * where to set it, and suggest no other name (a missing deploy_path is not a
   * misspelt upload_path). An unknown one may be a typo: suggest close names.
   */
  private missing(key: string): ConfigError {
    const known = this.options.settings?.has(key)
    const ways =
      key === 'deploy_path'
        ? "Set deployPath in its host() options, or set('deploy_path', …), or give -o deploy_path=/absolute/path."
        : `Set it with set('${key}', …), in the host's config, or with -o ${key}=….`
    const near = known ? [] : closeSettings(key, [...this.keys(), ...(this.options.settings?.names() ?? [])]).filter((n) => n !== key)
    return new ConfigError(
      `Missing setting "${key}" for host ${this.hostAlias}.`,
      [ways, near.length ? `Did you mean ${near.map((n) => `"${n}"`).join(', ')}?` : ''].filter(Boolean).join(' '),
    )
  }

  private computeLazy(key: string, fn: LazyFunction): Promise<unknown> {
    if (this.options.noLazy) return Promise.reject(new LazyValueRefused(key))
    let pending = this.lazyResults.get(key)
    if (!pending) {
      const context = this.options.lazyContext?.()
      if (context === undefined) {
        return Promise.reject(
          new ConfigError(
            `Setting "${key}" is computed by a function, which runs inside a task (it receives the task's context): it cannot be read outside one.`,
            `Read it inside a task (ctx.get('${key}')), or give it a plain value.`,
          ),
        )
      }
      const chain = [...(computing.getStore() ?? []), key]
      pending = computing.run(chain, async () => fn(context))
      this.lazyResults.set(key, pending)
      // A failed lazy value is not cached: the next read tries again.
      pending.catch(() => this.lazyResults.delete(key))
    }
    return pending
  }

  private readonly reportedSecrets = new Set<string>()

  private markSecret(value: unknown): void {
    // A numeric secret (a PIN) is masked as the digits it prints as.
    if (typeof value === 'number' && Number.isFinite(value)) value = String(value)
    if (typeof value === 'string') {
      if (!this.reportedSecrets.has(value)) this.onSecret(value)
      this.reportedSecrets.add(value)
    }
    else if (Array.isArray(value)) for (const v of value) this.markSecret(v)
    else if (value && typeof value === 'object') for (const v of Object.values(value)) this.markSecret(v)
  }

  /** Expands `{{key}}` in strings (recursively in arrays and plain objects). `\{{x}}` stays literal. */
  async template(value: unknown, stack: string[] = [], given?: Record<string, unknown>): Promise<unknown> {
    if (typeof value === 'string') return this.expand(value, stack, undefined, given)
    if (Array.isArray(value)) return Promise.all(value.map((item) => this.template(item, stack, given)))
    if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      const entries = await Promise.all(
        Object.entries(value).map(async ([k, v]) => [k, await this.template(v, stack, given)] as const),
      )
      return Object.fromEntries(entries)
    }
    return value
  }

  /**
   * Expands a template string; `format` turns each value into text (commands
   * use it to quote values for the shell).
   */
  async expand(text: string, stack: string[] = [], format: (value: string) => string = (v) => v, given?: Record<string, unknown>): Promise<string> {
    if (!text.includes('{{')) return text
    const parts: Array<string | Promise<string>> = []
    let last = 0
    for (const match of text.matchAll(TEMPLATE)) {
      const [whole, escaped, name] = match
      parts.push(text.slice(last, match.index))
      if (escaped) parts.push(whole.slice(1))
      else parts.push(this.get(name, undefined, stack, given).then((v) => format(stringify(v))))
      last = match.index! + whole.length
    }
    parts.push(text.slice(last))
    return (await Promise.all(parts)).join('')
  }
}

function stringify(value: unknown): string {
  if (Array.isArray(value)) return value.join(' ')
  if (value === null || value === undefined) return ''
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}

/** Splits a `-o key=value` option into the key and the text of the value. */
export function splitOverride(option: string): [string, string] {
  const eq = option.indexOf('=')
  if (eq <= 0) throw new ConfigError(`Option -o "${option}" is not key=value.`, 'Write it as -o key=value, e.g. -o branch=main')
  return [option.slice(0, eq).trim(), option.slice(eq + 1)]
}

/**
 * Parses a `-o key=value` option without knowing the key's type: values that
 * look like JSON (numbers, booleans, arrays) are parsed. Settings are parsed
 * against their declared type instead ({@link SettingsTable.parseOption}).
 */
export function parseOverride(option: string): [string, unknown] {
  const [key, text] = splitOverride(option)
  return [key, parseLoose(text)]
}

/**
 * The `-o key=value` options as settings: each key must be known, each value
 * is parsed as its key's type (`-o rollback_to=4` stays the string "4") and
 * checked (`-o keep_releases=five` and an empty `-o deploy_path=` are refused).
 */
export function parseOverrides(settings: SettingsTable, options: readonly string[], secretKeys: ReadonlySet<string> = new Set()): Map<string, unknown> {
  const overrides = new Map<string, unknown>()
  for (const option of options) {
    const [key, text] = splitOverride(option)
    overrides.set(key, settings.parseOption(key, text, secretKeys.has(key)))
  }
  return overrides
}

/** How a value was given, for errors about what it resolved to. */
function describeOrigin(value: unknown): string {
  if (typeof value === 'function') return 'computed by its function'
  if (typeof value === 'string' && value.includes('{{')) return `from ${JSON.stringify(value)}`
  return 'as resolved'
}

/** Thrown instead of computing a lazy value when a HostConfig must not run anything. */
export class LazyValueRefused extends Error {
  constructor(readonly key: string) {
    super(`"${key}" is computed at run time`)
  }
}

/** Appends to an array value or merges into an object value; anything else is an error naming the key. */
export function mergeValues(key: string, current: unknown, values: unknown[] | Record<string, unknown>): unknown {
  if (Array.isArray(values)) {
    if (!Array.isArray(current)) throw new DeployError(`add('${key}', […]): the current value is not an array.`)
    return [...current, ...values.filter((v) => !current.includes(v))]
  }
  if (!current || typeof current !== 'object' || Array.isArray(current)) {
    throw new DeployError(`add('${key}', {…}): the current value is not an object.`)
  }
  return { ...(current as object), ...values }
}
