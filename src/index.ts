/**
 * deployfile: typed, Deployer-style zero-downtime deploys over SSH.
 *
 * A deployfile.ts imports these functions, declares tasks, hooks, hosts and
 * settings, and `dep <task>` runs them.
 * @packageDocumentation
 */
export { task, desc, before, after, fail, set, setDefault, add, secret, declareSetting, secretsFrom, host, localhost, use, TaskBuilder, HostList } from './api/dsl.js'
export type { SettingValue, Recipe } from './api/dsl.js'
export { onRunEvent } from './api/run-listeners.js'
export type { RunListener, RunListenerContext } from './model/run-listener.js'
export {
  run,
  runLocally,
  queue,
  test,
  cd,
  within,
  invoke,
  on,
  info,
  warning,
  upload,
  download,
  parse,
  get,
  has,
  currentHost,
  context,
} from './api/runtime.js'
export { sh, raw, quote, Command } from './shell/index.js'
export type { ShellValue } from './shell/index.js'
export { TaskContext } from './executor/context.js'
export type { RunOptions, QueueOptions, FailureMeaning, UploadOptions, FailureInfo } from './executor/context.js'
export type { DeployConfig, ConfigKey } from './model/config-types.js'
export type { LazyValue } from './model/config.js'
export type { SettingSpec, SettingType } from './model/settings.js'
export type { SecretSource, SecretSourceConfig } from './model/registry.js'
export { Host } from './model/host.js'
export type { HostOptions, StrictHostKeyChecking } from './model/host.js'
export type { Phase, TaskOptions, TaskBody } from './model/task.js'
export { ExitCode, DeployError, ConfigError, ConnectionError, LockHeldError, CommandError, InterruptedError } from './model/errors.js'
export type * from './model/events.js'
