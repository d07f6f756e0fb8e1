/** Pins the public API: adding or removing an export must be a deliberate change of this list. */
import { describe, expect, it } from 'vitest'
import * as api from 'deployfile'

describe('the public API of deployfile', () => {
  it('exports exactly these names', () => {
    expect(Object.keys(api).sort()).toEqual([
      'Command',
      'CommandError',
      'ConfigError',
      'ConnectionError',
      'DeployError',
      'ExitCode',
      'Host',
      'HostList',
      'InterruptedError',
      'LockHeldError',
      'TaskBuilder',
      'TaskContext',
      'add',
      'after',
      'before',
      'cd',
      'context',
      'currentHost',
      'declareSetting',
      'desc',
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
      'queue',
      'quote',
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

  it('exit codes are the documented ones', () => {
    expect(api.ExitCode).toEqual({ Success: 0, TaskFailed: 1, ConfigError: 2, HostUnreachable: 3, LockHeld: 4, RollbackFailed: 5, LockNotReleased: 6, Interrupted: 130 })
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
