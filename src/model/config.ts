import { ConfigError } from './errors.js'
import { didYouMean } from './suggest.js'

/**
 * A setting computed when first read, once per host, then cached for the rest
 * of the run. It receives the host it is computed for.
 */
export type LazyValue<T = unknown> = (host: { alias: string }) => T | Promise<T>

export type Scope = Map<string, unknown>

const TEMPLATE = /(\\?)\{\{\s*([A-Za-z0-9_./:-]+)\s*\}\}/g

export interface ConfigLookup {
  /** The raw (unresolved) value of `key` for this host, walking overrides → host → global. */
  raw(key: string): { found: boolean; value: unknown }
  /** Every key visible to this host. */
  keys(): string[]
}

/**
 * Resolves settings for one host: `-o` overrides beat host values, which beat
 * global ones; lazy values are computed once and cached; strings are templated.
 */
export class HostConfig {
  private readonly cache = new Map<string, Promise<unknown>>()

  constructor(
    readonly hostAlias: string,
    private readonly layers: { overrides: Scope; runtime: Scope; host: Scope; global: Scope; defaults?: Scope },
    private readonly onSecret: (value: string) => void = () => {},
    private readonly secretKeys: Set<string> = new Set(),
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

  keys(): string[] {
    const all = new Set<string>()
    for (const layer of Object.values(this.layers)) for (const key of layer?.keys() ?? []) all.add(key)
    return [...all].sort()
  }

  /** Sets a value for this host only, for the rest of the run. */
  set(key: string, value: unknown): void {
    this.layers.runtime.set(key, value)
    this.cache.delete(key)
  }

  isSecret(key: string): boolean {
    return this.secretKeys.has(key)
  }

  async get(key: string, fallback?: unknown, stack: string[] = []): Promise<unknown> {
    if (stack.includes(key)) {
      throw new ConfigError(`Setting "${key}" refers to itself: ${[...stack, key].join(' → ')}`)
    }
    const { found, value } = this.rawValue(key)
    if (!found) {
      if (fallback !== undefined) return fallback
      throw new ConfigError(
        `Missing setting "${key}" for host ${this.hostAlias}.`,
        [`Set it with set('${key}', …), in the host's config, or with -o ${key}=…`, didYouMean(key, this.keys())]
          .filter(Boolean)
          .join('. '),
      )
    }
    let pending = this.cache.get(key)
    if (!pending) {
      pending = this.resolve(key, value, [...stack, key])
      this.cache.set(key, pending)
      // A failed lazy value is not cached: the next read tries again.
      pending.catch(() => this.cache.delete(key))
    }
    return pending
  }

  private async resolve(key: string, value: unknown, stack: string[]): Promise<unknown> {
    const computed = typeof value === 'function' ? await (value as LazyValue)({ alias: this.hostAlias }) : value
    const resolved = await this.template(computed, stack)
    if (this.secretKeys.has(key)) this.markSecret(resolved)
    return resolved
  }

  private markSecret(value: unknown): void {
    if (typeof value === 'string') this.onSecret(value)
    else if (Array.isArray(value)) value.forEach((v) => this.markSecret(v))
    else if (value && typeof value === 'object') Object.values(value).forEach((v) => this.markSecret(v))
  }

  /** Expands `{{key}}` in strings (recursively in arrays and plain objects). `\{{x}}` stays literal. */
  async template(value: unknown, stack: string[] = []): Promise<unknown> {
    if (typeof value === 'string') return this.expand(value, stack)
    if (Array.isArray(value)) return Promise.all(value.map((item) => this.template(item, stack)))
    if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      const entries = await Promise.all(
        Object.entries(value).map(async ([k, v]) => [k, await this.template(v, stack)] as const),
      )
      return Object.fromEntries(entries)
    }
    return value
  }

  /**
   * Expands a template string; `format` turns each value into text (commands
   * use it to quote values for the shell).
   */
  async expand(text: string, stack: string[] = [], format: (value: string) => string = (v) => v): Promise<string> {
    if (!text.includes('{{')) return text
    const parts: Array<string | Promise<string>> = []
    let last = 0
    for (const match of text.matchAll(TEMPLATE)) {
      const [whole, escape, name] = match
      parts.push(text.slice(last, match.index))
      if (escape) parts.push(whole.slice(1))
      else parts.push(this.get(name, undefined, stack).then((v) => format(stringify(v))))
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

/** Parses a `-o key=value` option; values that look like JSON (numbers, booleans, arrays) are parsed. */
export function parseOverride(option: string): [string, unknown] {
  const eq = option.indexOf('=')
  if (eq <= 0) throw new ConfigError(`Option -o "${option}" is not key=value.`, 'Write it as -o key=value, e.g. -o branch=main')
  const key = option.slice(0, eq).trim()
  const text = option.slice(eq + 1)
  if (/^(true|false|null|-?\d+(\.\d+)?|\[.*\]|\{.*\})$/s.test(text.trim())) {
    try {
      return [key, JSON.parse(text)]
    } catch {
      // not JSON after all: keep the text
    }
  }
  return [key, text]
}
