import { CommandError, DeployError, ExitCode, type ExitCodeValue } from '../model/errors.js'
import type { ErrorInfo } from '../model/events.js'
import { userLocation } from '../model/user-location.js'

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
      stderr: tail(error.details.stderr, 20) || undefined,
      stdout: tail(error.details.stdout, 10) || undefined,
      hint: error.hint,
    }
  }
  if (error instanceof DeployError) {
    return { name: error.name, message: error.message, hint: error.hint, host: where.host, task: where.task }
  }
  const e = error instanceof Error ? error : new Error(String(error))
  const location = userLocation(e)
  return {
    name: e.name,
    message: e.message,
    host: where.host,
    task: where.task,
    location,
    hint: location ? `An exception in the task's own code (not a failed command): fix the code at ${location}.` : undefined,
  }
}

const DECLARED = Symbol.for('deployfile.declaredExitCode')

/**
 * Marks an error as carrying the exit code a command's `failure` option gave it (when it gave one):
 * in a best-effort finish phase, only such codes change the run's exit code.
 */
export function declareExitCode<E extends Error>(error: E, meaning: { exitCode?: ExitCodeValue } | undefined): E {
  if (meaning?.exitCode !== undefined) Object.defineProperty(error, DECLARED, { value: meaning.exitCode, enumerable: false })
  return error
}

/** The exit code a command's `failure` option gave this error, if any. */
export function declaredExitCode(error: unknown): ExitCodeValue | undefined {
  return error && typeof error === 'object' ? ((error as Record<symbol, ExitCodeValue | undefined>)[DECLARED] ?? undefined) : undefined
}

/** The exit code an error stands for. */
export function exitCodeOf(error: unknown): ExitCodeValue {
  return error instanceof DeployError ? error.exitCode : ExitCode.TaskFailed
}

function tail(text: string, lines: number): string {
  return text.split('\n').filter(Boolean).slice(-lines).join('\n')
}
