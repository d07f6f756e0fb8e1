/**
 * deployfile: typed, Deployer-style zero-downtime deploys over SSH.
 *
 * A deployfile.ts imports these functions, declares tasks, hooks, hosts and
 * settings, and `dep <task>` runs them. Every name here is listed, with why it
 * exists, in docs/architecture.md ("Public API"); test/unit/exports.test.ts pins the list.
 * @packageDocumentation
 */
export { task, before, after, fail, use } from './dsl/tasks.js'
export type { Recipe } from './dsl/tasks.js'
export { set, setDefault, add, secret, declareSetting, secretsFrom } from './dsl/settings.js'
export type { SettingValue, LazyValue } from './dsl/settings.js'
export { host, localhost } from './dsl/hosts.js'
export { run, runLocally, queue, test, cd, within, invoke, on, info, warning, upload, download, parse, get, has, currentHost } from './dsl/runtime.js'
export type { TaskContext, RunOptions, QueueOptions, UploadOptions, FailureMeaning, FailureInfo, AbortHandler } from './dsl/context.js'
export { sh, raw } from './shell/command.js'
export type { Command, ShellValue, CommandSettings } from './shell/command.js'
export { parseMarkers, ScriptExit } from './shell/protocol.js'
export type { Markers, ScriptExitCode } from './shell/protocol.js'
export { onRunEvent } from './dsl/run-listeners.js'
export type { RunListener, RunListenerContext } from './model/run-listener.js'
export type { DeployConfig, ConfigKey } from './model/config-types.js'
export type { SettingSpec, SettingType } from './model/settings.js'
export type { SecretSource, SecretSourceConfig } from './model/registry.js'
export type { Host, HostOptions, StrictHostKeyChecking } from './model/host.js'
export type { Phase, TaskOptions, TaskBody } from './model/task.js'
export { ExitCode, DeployError, ConfigError, ConnectionError, LockHeldError, CommandError, InterruptedError } from './model/errors.js'
export type { ExitCodeValue } from './model/errors.js'
export type * from './model/events.js'
