import { CommandError, DeployError, ExitCode, type ExitCodeValue } from '../model/errors.js'
import type { ErrorInfo } from '../model/events.js'

/** Plain, JSON-safe description of an error for events and reporters. */
export function describeError(error: unknown, where: { host?: string; task?: string } = {}): ErrorInfo {
  if (error instanceof CommandError) {
    return {
      name: error.name,
      message: error.message,
      host: error.details.host,
      task: error.details.queuedBy ?? where.task,
      command: error.details.command,
      exitCode: error.details.exitCode,
      stderr: tail(error.details.stderr || error.details.stdout, 20),
    }
  }
  if (error instanceof DeployError) {
    return { name: error.name, message: error.message, hint: error.hint, host: where.host, task: where.task }
  }
  const e = error instanceof Error ? error : new Error(String(error))
  return { name: e.name, message: e.message, host: where.host, task: where.task }
}

/** The exit code an error stands for. */
export function exitCodeOf(error: unknown): ExitCodeValue {
  return error instanceof DeployError ? error.exitCode : ExitCode.TaskFailed
}

function tail(text: string, lines: number): string {
  return text.split('\n').filter(Boolean).slice(-lines).join('\n')
}
