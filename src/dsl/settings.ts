import type { ConfigKey, DeployConfig } from '../model/config-types.js'
import { mergeValues } from '../model/config.js'
import { ConfigError } from '../model/errors.js'
import type { SecretSource } from '../model/registry.js'
import { inferType, type SettingSpec } from '../model/settings.js'
import { taskContextStorage } from './ambient.js'
import { noteSite } from './call-site.js'
import type { TaskContext } from './context.js'
import { currentRegistry } from './registry-scope.js'

/**
 * A setting computed when a task first reads it, once per host, then kept for
 * the rest of the run. It receives the context of that task (its host, its
 * settings, `run`, `shared`…).
 *
 * @example set('node_version', async (ctx) => ctx.run`node --version`)
 */
export type LazyValue<T> = (ctx: TaskContext) => T | Promise<T>

/** A value for `set()`: the value itself, or a function computing it once per host when first read. */
export type SettingValue<T> = T | LazyValue<T>

/**
 * Declares a setting at run time, so that `set()`, host config and `-o` accept
 * it and check its values: every key must be declared, by deployfile itself
 * (the keys of {@link DeployConfig}), a recipe, a plugin or the deployfile.
 * Declaration merging types the key for the editor; this makes it known to the
 * run. `dep config` shows the description.
 *
 * Declaring a key again with the same type updates it; with another type it is
 * an error. A `default` is a recipe default (any `set()` beats it), `secret`
 * masks the value everywhere, like {@link secret}.
 *
 * @example
 * declare module 'deployfile' {
 *   interface DeployConfig { slack_webhook: string }
 * }
 * declareSetting('slack_webhook', { type: 'string', description: 'Where deploys are announced' })
 * set('slack_webhook', process.env.SLACK_WEBHOOK ?? '')
 *
 * @example declareSetting('worker_count', { type: 'positive-integer', default: 2 })
 * @example declareSetting('cache_driver', { type: { oneOf: ['redis', 'file'] }, default: 'file' })
 * @throws ConfigError for a bad type, a default not of the type, or a key already declared with another type.
 */
export function declareSetting(name: string, spec: SettingSpec): void {
  const registry = currentRegistry()
  const declaration = registry.settings.declare(name, spec)
  if (declaration.secret) registry.secretKeys.add(name)
  if (spec.default !== undefined) {
    registry.defaults.set(name, spec.default)
    noteSite(registry, 'default', name, `declareSetting('${name}', …)`)
    if (declaration.secret && typeof spec.default === 'string') registry.secretValues.add(spec.default)
  }
}

/**
 * Sets a setting. At load time it is global (a function is computed once per
 * host, when first read); inside a task it sets the value for the current host.
 * The key must be declared (see {@link declareSetting}), and the value of its
 * type: checked when the deployfile has loaded, or at once inside a task; a
 * lazy or templated value is checked when it resolves.
 */
export function set<K extends ConfigKey>(key: K, value: SettingValue<DeployConfig[K]>): void {
  const ctx = taskContextStorage.getStore()
  if (ctx) {
    ctx.set(key, value)
    return
  }
  const registry = currentRegistry()
  registry.config.set(key, value)
  noteSite(registry, 'global', key, `set('${key}', …)`)
}

/**
 * Sets a recipe default: any value the deployfile sets, before or after
 * `use(recipe)`, beats it. For recipes. A key not declared yet is declared
 * with the type of the value (use {@link declareSetting} to give a
 * description or a stricter type).
 */
export function setDefault<K extends ConfigKey>(key: K, value: SettingValue<DeployConfig[K]>): void {
  const registry = currentRegistry()
  registry.settings.declare(key, { type: inferType(value) }, 'inferred')
  registry.defaults.set(key, value)
  noteSite(registry, 'default', key, `setDefault('${key}', …)`)
}

/** Appends to an array setting (or merges into an object setting). */
export function add<K extends ConfigKey>(
  key: K,
  values: DeployConfig[K] extends unknown[] ? DeployConfig[K] : Partial<DeployConfig[K]>,
): void {
  const registry = currentRegistry()
  const config = registry.config
  const current = config.has(key) ? config.get(key) : registry.defaults.has(key) ? registry.defaults.get(key) : Array.isArray(values) ? [] : {}
  if (typeof current === 'function') throw new ConfigError(`add('${key}', …): the value is computed lazily; set it instead.`)
  config.set(key, mergeValues(key, current, values as unknown[] | Record<string, unknown>))
  noteSite(registry, 'global', key, `add('${key}', …)`)
}

/**
 * Declares a secret setting and sets it: its value is masked as `***` in
 * output, logs, events and `dep config`. A key not declared yet is declared
 * (with the type of the value), so `secret()` needs no {@link declareSetting}.
 */
export function secret<K extends ConfigKey>(key: K, value: SettingValue<DeployConfig[K]>): void {
  const registry = currentRegistry()
  registry.settings.declare(key, { type: inferType(value), secret: true }, 'inferred')
  registry.config.set(key, value)
  noteSite(registry, 'global', key, `secret('${key}', …)`)
  registry.secretKeys.add(key)
  if (typeof value === 'string') registry.secretValues.add(value)
  // A PIN or a numeric token is a secret too (masked from 4 digits).
  else if (typeof value === 'number' && Number.isFinite(value)) registry.secretValues.add(String(value))
}

/**
 * Registers a source of secrets: before a run's first step, it is called once per host with the
 * host's settings, and every value it returns is masked as `***` for the whole run (every task,
 * `dep run`, every output channel). For values a recipe derives from settings, such as the Laravel
 * recipe's `.env` values.
 *
 * @example secretsFrom(async (config) => (config.has('api_keys') ? Object.values(await config.get('api_keys') as object) : []))
 */
export function secretsFrom(source: SecretSource): void {
  currentRegistry().secretSources.push(source)
}
