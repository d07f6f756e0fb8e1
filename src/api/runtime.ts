import type { ConfigKey, DeployConfig } from '../model/config-types.js'
import type { Host } from '../model/host.js'
import type { Command, ShellValue } from '../shell/command.js'
import type { QueueOptions, RunOptions, TaskContext, UploadOptions } from '../executor/context.js'
import { currentTaskContext, taskContextStorage } from '../executor/current.js'
import { currentRegistry } from './registry-scope.js'

type Template = TemplateStringsArray

/*
 * These functions act on the host whose task is running (found through
 * AsyncLocalStorage), so hosts run truly in parallel in one process.
 */

/** Runs a command on the current host; see {@link TaskContext.run}. */
export function run(strings: Template, ...values: ShellValue[]): Promise<string>
export function run(command: string | Command, options?: RunOptions): Promise<string>
export function run(first: Template | string | Command, ...rest: unknown[]): Promise<string> {
  return (currentTaskContext('run').run as (...args: unknown[]) => Promise<string>)(first, ...rest)
}

/** Runs a command on this machine; see {@link TaskContext.runLocally}. */
export function runLocally(strings: Template, ...values: ShellValue[]): Promise<string>
export function runLocally(command: string | Command, options?: RunOptions): Promise<string>
export function runLocally(first: Template | string | Command, ...rest: unknown[]): Promise<string> {
  return (currentTaskContext('runLocally').runLocally as (...args: unknown[]) => Promise<string>)(first, ...rest)
}

/** Queues a command to send with the host's next round trip; see {@link TaskContext.queue}. */
export function queue(strings: Template, ...values: ShellValue[]): Promise<void>
export function queue(command: string | Command, options?: QueueOptions): Promise<void>
export function queue(first: Template | string | Command, ...rest: unknown[]): Promise<void> {
  return (currentTaskContext('queue').queue as (...args: unknown[]) => Promise<void>)(first, ...rest)
}

/** True when the command exits 0 on the current host. */
export function test(strings: Template, ...values: ShellValue[]): Promise<boolean>
export function test(command: string | Command, options?: RunOptions): Promise<boolean>
export function test(first: Template | string | Command, ...rest: unknown[]): Promise<boolean> {
  return (currentTaskContext('test').test as (...args: unknown[]) => Promise<boolean>)(first, ...rest)
}

/** Sets the directory later commands of the task run in. */
export function cd(path: string): Promise<void> {
  return currentTaskContext('cd').cd(path)
}

/** Runs `fn` with commands in `path`. */
export function within<T>(path: string, fn: () => Promise<T> | T): Promise<T> {
  return currentTaskContext('within').within(path, fn)
}

/** Runs another task now, on the current host. */
export function invoke(taskName: string): Promise<void> {
  return currentTaskContext('invoke').invoke(taskName)
}

/** Runs `fn` on other hosts (a host, a list, or a selector). */
export function on<T>(target: Host | Host[] | string, fn: (ctx: TaskContext) => Promise<T> | T): Promise<T[]> {
  return currentTaskContext('on').on(target, fn)
}

/** Prints a message for the current host. */
export function info(message: string): void {
  currentTaskContext('info').info(message)
}

/** Prints a warning for the current host. */
export function warning(message: string): void {
  currentTaskContext('warning').warning(message)
}

/** Uploads a local file or directory (or a Buffer of content) to the current host. */
export function upload(source: string | Buffer, destination: string, options?: UploadOptions): Promise<void> {
  return currentTaskContext('upload').upload(source, destination, options)
}

/** Downloads a file or directory from the current host. */
export function download(source: string, destination: string): Promise<void> {
  return currentTaskContext('download').download(source, destination)
}

/** Expands `{{key}}` settings in a string for the current host. */
export function parse(text: string): Promise<string> {
  return currentTaskContext('parse').parse(text)
}

/** The host the current task runs on. */
export function currentHost(): Host {
  return currentTaskContext('currentHost').host
}

/** The context of the current task (the same object a task body receives). */
export function context(): TaskContext {
  return currentTaskContext('context')
}

/**
 * Reads a setting. Inside a task: the value for the current host (host
 * settings and `-o` beat global ones; lazy values computed once). Outside: the
 * global value.
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
