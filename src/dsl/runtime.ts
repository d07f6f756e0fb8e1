import type { ConfigKey, DeployConfig } from '../model/config-types.js'
import type { Host } from '../model/host.js'
import { currentTaskContext, taskContextStorage } from './ambient.js'
import type { TaskContext } from './context.js'
import { currentRegistry } from './registry-scope.js'

/*
 * PHP Deployer's top-level functions: each one acts on the host whose task is
 * running (found through the ambient store), so hosts run truly in parallel in
 * one process. Each has exactly the type of the TaskContext method it stands
 * for, overloads included.
 */

/** The TaskContext methods with overloads (a template tag, or a command with options). */
type Overloaded = 'run' | 'runLocally' | 'queue' | 'test'

/**
 * Calls an overloaded method of the running task's context with the arguments
 * it was given: the caller is typed by the method's own overloads (which one
 * applies is the method's business, not this forwarder's).
 */
function forward<K extends Overloaded>(name: K, args: unknown[]): ReturnType<TaskContext[K]> {
  const ctx = currentTaskContext(name)
  return Reflect.apply(ctx[name], ctx, args)
}

/** Runs a command on the current host; see {@link TaskContext.run}. */
export const run: TaskContext['run'] = (...args: unknown[]) => forward('run', args)
/** Runs a command on this machine; see {@link TaskContext.runLocally}. */
export const runLocally: TaskContext['runLocally'] = (...args: unknown[]) => forward('runLocally', args)
/** Queues a command to send with the host's next round trip; see {@link TaskContext.queue}. */
export const queue: TaskContext['queue'] = (...args: unknown[]) => forward('queue', args)
/** True when the command exits 0 on the current host; see {@link TaskContext.test}. */
export const test: TaskContext['test'] = (...args: unknown[]) => forward('test', args)
/** Sets the directory later commands of the task run in; see {@link TaskContext.cd}. */
export const cd: TaskContext['cd'] = (path) => currentTaskContext('cd').cd(path)
/** Runs `fn` with commands in `path`; see {@link TaskContext.within}. */
export const within: TaskContext['within'] = (path, fn) => currentTaskContext('within').within(path, fn)
/** Runs another task now, on the current host; see {@link TaskContext.invoke}. */
export const invoke: TaskContext['invoke'] = (taskName) => currentTaskContext('invoke').invoke(taskName)
/** Runs `fn` on other hosts (a host, a list, or a selector); see {@link TaskContext.on}. */
export const on: TaskContext['on'] = (target, fn) => currentTaskContext('on').on(target, fn)
/** Prints a message for the current host; see {@link TaskContext.info}. */
export const info: TaskContext['info'] = (message) => currentTaskContext('info').info(message)
/** Prints a warning for the current host; see {@link TaskContext.warning}. */
export const warning: TaskContext['warning'] = (message) => currentTaskContext('warning').warning(message)
/** Uploads a local file or directory (or a Buffer) to the current host; see {@link TaskContext.upload}. */
export const upload: TaskContext['upload'] = (source, destination, options) => currentTaskContext('upload').upload(source, destination, options)
/** Downloads a file or directory from the current host; see {@link TaskContext.download}. */
export const download: TaskContext['download'] = (source, destination) => currentTaskContext('download').download(source, destination)
/** Expands `{{key}}` settings in a string for the current host; see {@link TaskContext.parse}. */
export const parse: TaskContext['parse'] = (text, given) => currentTaskContext('parse').parse(text, given)

/** The host the current task runs on (PHP Deployer's `currentHost()`). */
export function currentHost(): Host {
  return currentTaskContext('currentHost').host
}

/**
 * Reads a setting. Inside a task: the value for the current host (host
 * settings and `-o` beat global ones; lazy values computed once). Outside: the
 * global value (a lazy value can only be read inside a task).
 */
export function get<K extends ConfigKey>(key: K, fallback?: DeployConfig[K]): Promise<DeployConfig[K]> {
  const ctx = taskContextStorage.getStore()
  if (ctx) return ctx.get(key, fallback)
  const registry = currentRegistry()
  return registry.hostConfig(undefined).get(key, fallback) as Promise<DeployConfig[K]>
}

/** True when a setting exists (for the current host inside a task, globally outside). */
export function has(key: ConfigKey): boolean {
  const ctx = taskContextStorage.getStore()
  const registry = currentRegistry()
  return ctx ? ctx.has(key) : registry.config.has(key) || registry.defaults.has(key)
}
