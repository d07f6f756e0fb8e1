import type { ConfigKey, DeployConfig } from '../model/config-types.js'
import type { LazyValue } from '../model/config.js'
import { ConfigError } from '../model/errors.js'
import type { Host, HostOptions } from '../model/host.js'
import type { Phase, TaskBody, TaskDefinition, TaskOptions } from '../model/task.js'
import { PHASES } from '../model/task.js'
import type { TaskContext } from '../executor/context.js'
import { mergeValues } from '../executor/context.js'
import { taskContextStorage } from '../executor/current.js'
import { currentRegistry } from './registry-scope.js'
import { siteKey, type Registry } from '../model/registry.js'
import { inferType, type SettingSpec } from '../model/settings.js'
import { userLocation } from '../executor/errors.js'
import type { SecretSource } from '../model/registry.js'

/** A value for `set()`: the value itself, or a function computing it once per host when first read. */
export type SettingValue<T> = T | LazyValue<T>

/** A task just defined; chain options on it: `task('x', fn).once().desc('…')`. */
export class TaskBuilder {
  constructor(private name: string) {}

  private update(options: Partial<TaskDefinition>): this {
    const registry = currentRegistry()
    const task = registry.getTask(this.name)
    registry.defineTask({ ...task, ...options })
    return this
  }

  /** Sets the description shown by `dep list`. */
  desc(description: string): this {
    return this.update({ description })
  }
  /** Runs the task on one host only. */
  once(value = true): this {
    return this.update({ once: value })
  }
  /** Hides the task from `dep list`. */
  hidden(value = true): this {
    return this.update({ hidden: value })
  }
  /** At most `n` hosts run the task at once. */
  limit(n: number): this {
    return this.update({ limit: n })
  }
  /** Restricts the task to hosts matching `selector`. */
  select(selector: string): this {
    return this.update({ select: selector })
  }
  /** Declares the deploy phase of the task. */
  phase(phase: Phase): this {
    return this.update({ phase })
  }
}

/** Describes the next task defined (PHP Deployer's `desc()`). */
export function desc(description: string): void {
  currentRegistry().pendingDescription = description
}

/**
 * Defines a task (redefining a name replaces the task). The body runs on each
 * selected host with that host's context; a list of names makes a group task.
 *
 * @example task('build', async () => { await runLocally`npm run build` })
 * @example task('deploy', ['deploy:prepare', 'deploy:publish'])
 */
export function task(name: string, body: TaskBody<TaskContext> | readonly string[], options: TaskOptions = {}): TaskBuilder {
  if (!name || typeof name !== 'string') throw new ConfigError('task() needs a name.')
  if (typeof body !== 'function' && !Array.isArray(body)) {
    throw new ConfigError(`task('${name}', …) needs a function or a list of task names.`)
  }
  if (options.phase && !PHASES.includes(options.phase)) {
    throw new ConfigError(`Task "${name}": phase must be one of ${PHASES.join(', ')}, got "${options.phase}".`)
  }
  const registry = currentRegistry()
  const description = options.description ?? registry.pendingDescription
  registry.pendingDescription = undefined
  registry.defineTask({
    ...options,
    description,
    name,
    ...(typeof body === 'function' ? { body } : { group: [...body] }),
  })
  if (typeof body !== 'function') {
    const site = new Error()
    for (const member of body) registry.references.push({ name: member, call: `task('${name}', [${body.map((m) => `'${m}'`).join(', ')}])`, site })
  }
  return new TaskBuilder(name)
}

function hookTaskName(kind: 'before' | 'after' | 'fail', target: string, hook: string | TaskBody<TaskContext>): string {
  const registry = currentRegistry()
  // Both names are checked once the deployfile has loaded (tasks may be defined after their hooks).
  const site = new Error()
  const call = `${kind}('${target}', ${typeof hook === 'string' ? `'${hook}'` : '…'})`
  registry.references.push({ name: target, call, site })
  if (typeof hook === 'string') {
    registry.references.push({ name: hook, call, site })
    return hook
  }
  const name = registry.anonymousTaskName(kind, target)
  registry.defineTask({ name, body: hook, hidden: true })
  return name
}

/** Runs `hook` (a task name or a function) before `target`. */
export function before(target: string, hook: string | TaskBody<TaskContext>): void {
  currentRegistry().addHook('before', target, hookTaskName('before', target, hook))
}

/** Runs `hook` (a task name or a function) after `target`. */
export function after(target: string, hook: string | TaskBody<TaskContext>): void {
  currentRegistry().addHook('after', target, hookTaskName('after', target, hook))
}

/**
 * Runs `hook` on every selected host when `target` (run as the top-level task)
 * fails. Inside it, `ctx.failure` says what failed, where, and in which phase.
 */
export function fail(target: string, hook: string | TaskBody<TaskContext>): void {
  currentRegistry().fail.set(target, hookTaskName('fail', target, hook))
}

/**
 * `file:line` of the deployfile (or user recipe) line that called into the
 * DSL. Not the column: a TypeScript loader's column is one of the compiled
 * code, which would point past the end of the line.
 */
function callSite(): string | undefined {
  return userLocation(new Error())?.replace(/:\d+$/, '')
}

/** Remembers where a value was given, for the check at the end of loading. */
function noteSite(registry: Registry, scope: string, key: string, call: string, site = callSite()): void {
  registry.sites.set(siteKey(scope, key), site ? `${call} at ${site}` : call)
}

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

/** Hosts declared by one `host()` call; settings chain onto all of them. */
export class HostList {
  constructor(readonly hosts: Host[]) {}

  /** Sets a setting on each of these hosts (checked like {@link set}). */
  set<K extends ConfigKey>(key: K, value: SettingValue<DeployConfig[K]>): this {
    const registry = currentRegistry()
    const site = callSite()
    for (const host of this.hosts) {
      host.config.set(key, value)
      noteSite(registry, `host:${host.alias}`, key, `host('${host.alias}').set('${key}', …)`, site)
    }
    return this
  }
}

/**
 * Declares hosts. Ranges expand: `web[1:3].acme.test` is three hosts,
 * `web[01:10]` keeps the padding, `db[a:c]` uses letters.
 */
export function host(pattern: string, options: HostOptions = {}): HostList {
  return new HostList(noteHostSites(currentRegistry().addHost(pattern, options), 'host'))
}

/** Declares this machine as a host: commands run locally, without SSH. */
export function localhost(alias = 'localhost', options: Pick<HostOptions, 'deployPath' | 'labels' | 'config'> = {}): HostList {
  return new HostList(noteHostSites(currentRegistry().addHost(alias, options, true), 'localhost'))
}

/** Remembers where each host's settings (`config`, `deployPath`) were given. */
function noteHostSites(hosts: Host[], call: string): Host[] {
  const registry = currentRegistry()
  const site = callSite()
  for (const host of hosts) {
    for (const key of host.config.keys()) noteSite(registry, `host:${host.alias}`, key, `${call}('${host.alias}', …)`, site)
  }
  return hosts
}

/** A recipe: a function that declares tasks, hooks and settings through this API. */
export type Recipe = () => void

/** Applies a recipe (once, however often it is used). */
export function use(recipe: Recipe): void {
  const registry = currentRegistry()
  if (registry.recipes.has(recipe)) return
  registry.recipes.add(recipe)
  recipe()
}
