import { HostConfig, type HostConfigOptions } from './config.js'
import { ConfigError } from './errors.js'
import { expandHostPattern, Host, type HostOptions } from './host.js'
import type { TaskDefinition } from './task.js'
import { didYouMean } from './suggest.js'
import { SettingsTable } from './settings.js'
import type { RunListener } from './run-listener.js'

export type HookKind = 'before' | 'after' | 'fail'

/** What a {@link SecretSource} may read: one host's settings. */
export interface SecretSourceConfig {
  get(key: string): Promise<unknown>
  has(key: string): boolean
}

/**
 * Computes values to mask for the whole run from a host's settings (a recipe's `.env` values, a
 * key read from a file). Runs once per host before the run's first step.
 */
export type SecretSource = (config: SecretSourceConfig) => Promise<Iterable<string>> | Iterable<string>

/**
 * A task name written somewhere in a deployfile (a hook's target or hook, a group's member), with the
 * call that wrote it: checked once the deployfile has loaded, so a typo is an error at load time that
 * points at the line, not a hook that silently never runs.
 */
export interface TaskReference {
  /** The name referenced. */
  name: string
  /** How it was written, for the message: `before('deploy:symlnk', 'build')`, `task('deploy', [...])`. */
  call: string
  /** Captured at the call: its stack says where in the deployfile it was. */
  site: Error
}

/**
 * Everything one deployfile declared: tasks, hooks, hosts and global settings.
 * Loading a deployfile fills a fresh registry, so two can live in one process.
 */
export class Registry {
  readonly tasks = new Map<string, TaskDefinition>()
  readonly before = new Map<string, string[]>()
  readonly after = new Map<string, string[]>()
  readonly fail = new Map<string, string>()
  readonly hosts = new Map<string, Host>()
  readonly config = new Map<string, unknown>()
  /** Recipe defaults: any value the deployfile sets, before or after `use()`, beats them. */
  readonly defaults = new Map<string, unknown>()
  /** Keys whose values are masked everywhere. */
  readonly secretKeys = new Set<string>()
  /** Values masked everywhere (literal secrets registered at load time). */
  readonly secretValues = new Set<string>()
  /** The settings this deployfile may use: deployfile's own, and those declared by recipes, plugins and the deployfile. */
  readonly settings = new SettingsTable()
  /**
   * Where each value was given (`set('x', …) at deployfile.ts:4:1`), keyed by
   * {@link siteKey}: settings are checked once loading ends (a deployfile may
   * `set()` a key before the `use()` that declares it), and the error must
   * still point at the line.
   */
  readonly sites = new Map<string, string>()
  /** Sources of values masked for the whole run (see secretsFrom()). */
  readonly secretSources: SecretSource[] = []
  /** What observes each run from this machine (see onRunEvent()), in the order registered. */
  readonly runListeners: RunListener[] = []
  /** Recipes already applied, so `use()` twice is harmless. */
  readonly recipes = new Set<unknown>()
  /** Task names referenced by hooks and groups, checked after loading (see `checkReferences`). */
  readonly references: TaskReference[] = []
  private anonymous = 0

  defineTask(task: TaskDefinition): TaskDefinition {
    this.tasks.set(task.name, task)
    return task
  }

  /** A name for a hook given as a function. */
  anonymousTaskName(kind: HookKind, target: string): string {
    this.anonymous += 1
    return `${kind}:${target}#${this.anonymous}`
  }

  addHook(kind: 'before' | 'after', target: string, taskName: string): void {
    const map = kind === 'before' ? this.before : this.after
    const list = map.get(target) ?? []
    if (!list.includes(taskName)) list.push(taskName)
    map.set(target, list)
  }

  addHost(pattern: string, options: HostOptions, local = false): Host[] {
    const aliases = expandHostPattern(pattern)
    const hostnames = options.hostname?.includes('[') ? expandHostPattern(options.hostname) : undefined
    if (hostnames && hostnames.length !== aliases.length) {
      throw new ConfigError(`Host "${pattern}": hostname "${options.hostname}" expands to a different number of hosts.`)
    }
    return aliases.map((alias, index) => {
      const host = new Host(alias, hostnames ? { ...options, hostname: hostnames[index] } : options, local)
      this.hosts.set(alias, host)
      return host
    })
  }

  /**
   * The settings one host sees: `-o` overrides, then values set during the
   * run, then the host's, then global ones, then recipe defaults.
   */
  hostConfig(
    host: Host | undefined,
    overrides: Map<string, unknown> = new Map(),
    onSecret?: (value: string) => void,
    options?: HostConfigOptions,
  ): HostConfig {
    return new HostConfig(
      host?.alias ?? '(global)',
      { overrides, runtime: new Map(), host: host?.config ?? new Map(), global: this.config, defaults: this.defaults },
      onSecret,
      this.secretKeys,
      { ...options, settings: this.settings },
    )
  }

  /**
   * Checks every setting given while loading, once it is over: each key must
   * be declared, and each value given literally must be of its type (lazy and
   * templated values are checked when they resolve). Throws a ConfigError
   * naming the first problem and where the value was given.
   */
  checkSettings(): void {
    const where = (scope: string, key: string, fallback: string) => this.sites.get(siteKey(scope, key)) ?? fallback
    for (const [key, value] of this.config) {
      this.settings.checkKnown(key, value, where('global', key, `set('${key}', …)`), { secret: this.secretKeys.has(key) })
    }
    for (const [key, value] of this.defaults) {
      this.settings.checkKnown(key, value, where('default', key, `setDefault('${key}', …)`), { secret: this.secretKeys.has(key) })
    }
    for (const host of this.hosts.values()) {
      for (const [key, value] of host.config) {
        this.settings.checkKnown(key, value, where(`host:${host.alias}`, key, `config of host ${host.alias}`), { secret: this.secretKeys.has(key) })
      }
    }
  }

  /** Every reference to a task nobody defined, in the order written. */
  undefinedReferences(): TaskReference[] {
    return this.references.filter((ref) => !this.tasks.has(ref.name))
  }

  getTask(name: string): TaskDefinition {
    const task = this.tasks.get(name)
    if (!task) {
      const names = [...this.tasks.values()].filter((t) => !t.hidden).map((t) => t.name)
      throw new ConfigError(`Task "${name}" is not defined.`, didYouMean(name, names) || 'Run `dep list` to see the tasks.')
    }
    return task
  }
}

/** The key of {@link Registry.sites}: `global`, `default` or `host:<alias>`, then the setting. */
export function siteKey(scope: string, key: string): string {
  return `${scope}\u0000${key}`
}
