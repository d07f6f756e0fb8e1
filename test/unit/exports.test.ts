/**
 * Pins the public API: adding or removing an export must be a deliberate change of this list and
 * of the "Public API" section of docs/architecture.md, which says why each name exists.
 */
import { describe, expect, expectTypeOf, it } from 'vitest'
import * as api from 'deployfile'
import type {
  AbortHandler,
  Command,
  ConfigKey,
  DeployConfig,
  ExitCodeValue,
  FailureInfo,
  FailureMeaning,
  Host,
  HostOptions,
  LazyValue,
  Phase,
  QueueOptions,
  Recipe,
  RunEvent,
  RunOptions,
  SecretSource,
  SecretSourceConfig,
  SettingSpec,
  SettingType,
  SettingValue,
  ShellValue,
  StrictHostKeyChecking,
  TaskBody,
  TaskContext,
  TaskOptions,
  UploadOptions,
} from 'deployfile'

describe('the public API of deployfile', () => {
  it('exports exactly these names', () => {
    expect(Object.keys(api).sort()).toEqual([
      'CommandError',
      'ConfigError',
      'ConnectionError',
      'DeployError',
      'ExitCode',
      'InterruptedError',
      'LockHeldError',
      'ScriptExit',
      'add',
      'after',
      'before',
      'cd',
      'currentHost',
      'declareSetting',
      'download',
      'fail',
      'get',
      'has',
      'host',
      'info',
      'invoke',
      'localhost',
      'on',
      'onRunEvent',
      'parse',
      'parseMarkers',
      'queue',
      'raw',
      'run',
      'runLocally',
      'secret',
      'secretsFrom',
      'set',
      'setDefault',
      'sh',
      'task',
      'test',
      'upload',
      'use',
      'warning',
      'within',
    ])
  })

  it('the top-level task functions have exactly the types of the TaskContext methods', () => {
    expectTypeOf(api.run).toEqualTypeOf<TaskContext['run']>()
    expectTypeOf(api.runLocally).toEqualTypeOf<TaskContext['runLocally']>()
    expectTypeOf(api.queue).toEqualTypeOf<TaskContext['queue']>()
    expectTypeOf(api.test).toEqualTypeOf<TaskContext['test']>()
    expectTypeOf(api.cd).toEqualTypeOf<TaskContext['cd']>()
    expectTypeOf(api.within).toEqualTypeOf<TaskContext['within']>()
    expectTypeOf(api.invoke).toEqualTypeOf<TaskContext['invoke']>()
    expectTypeOf(api.on).toEqualTypeOf<TaskContext['on']>()
    expectTypeOf(api.info).toEqualTypeOf<TaskContext['info']>()
    expectTypeOf(api.warning).toEqualTypeOf<TaskContext['warning']>()
    expectTypeOf(api.upload).toEqualTypeOf<TaskContext['upload']>()
    expectTypeOf(api.download).toEqualTypeOf<TaskContext['download']>()
    expectTypeOf(api.parse).toEqualTypeOf<TaskContext['parse']>()
  })

  it('exports these types (a missing one fails the type check)', () => {
    // Each type is named once here, so tsc fails when one is no longer exported.
    type Exported = [
      AbortHandler,
      Command,
      ConfigKey,
      DeployConfig,
      ExitCodeValue,
      FailureInfo,
      FailureMeaning,
      Host,
      HostOptions,
      LazyValue<string>,
      Phase,
      QueueOptions,
      Recipe,
      RunEvent,
      RunOptions,
      SecretSource,
      SecretSourceConfig,
      SettingSpec,
      SettingType,
      SettingValue<string>,
      ShellValue,
      StrictHostKeyChecking,
      TaskBody,
      TaskContext,
      TaskOptions,
      UploadOptions,
    ]
    expectTypeOf<Exported>().toBeArray()
    // A lazy setting receives the task's context.
    expectTypeOf<Parameters<LazyValue<string>>[0]>().toEqualTypeOf<TaskContext>()
  })

  it('exit codes are the documented ones', () => {
    expect(api.ExitCode).toEqual({ Success: 0, TaskFailed: 1, ConfigError: 2, HostUnreachable: 3, LockHeld: 4, RollbackFailed: 5, LockNotReleased: 6, PartialDeploy: 7, Interrupted: 130 })
  })

  it('errors carry their exit codes and are recognised by class name across copies', () => {
    expect(new api.ConfigError('x').exitCode).toBe(2)
    expect(new api.ConnectionError('x').exitCode).toBe(3)
    expect(new api.LockHeldError('x').exitCode).toBe(4)
    expect(new api.InterruptedError().exitCode).toBe(130)
    expect(new api.DeployError('x').exitCode).toBe(1)
    const error = new api.ConfigError('m', 'the hint')
    expect(error).toBeInstanceOf(api.DeployError)
    expect(error).toBeInstanceOf(Error)
    expect(error.name).toBe('ConfigError')
    expect(error.hint).toBe('the hint')
    expect(new api.LockHeldError('x')).not.toBeInstanceOf(api.ConfigError)
    // An object branded by another copy of the package (a deployfile's own import) is still recognised.
    const foreign = Object.defineProperty({}, Symbol.for('deployfile.kinds'), { value: ['ConfigError', 'DeployError', 'Error'] })
    expect(foreign).toBeInstanceOf(api.ConfigError)
    expect(foreign).toBeInstanceOf(api.DeployError)
    expect(foreign).not.toBeInstanceOf(api.LockHeldError)
  })
})
