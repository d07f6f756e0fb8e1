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

/** Where this package lives (the folder holding dist/ or src/): its frames are not the user's code. */
const packageRoot = (() => {
  const here = decodeURIComponent(new URL(import.meta.url).pathname)
  const marker = Math.max(here.lastIndexOf('/dist/'), here.lastIndexOf('/src/'))
  return marker > 0 ? here.slice(0, marker + 1) : undefined
})()

function isOwnCode(file: string): boolean {
  if (file.includes('/node_modules/')) return true
  return packageRoot !== undefined && ['dist/', 'src/', 'recipes/'].some((dir) => file.startsWith(packageRoot + dir))
}

/** `file:line:column` of the first stack frame in the user's code (a deployfile, a recipe of theirs), if any. */
export function userLocation(error: Error): string | undefined {
  for (const line of (error.stack ?? '').split('\n').slice(1)) {
    const match = /^at (?:.+ \()?((?:file:\/\/)?\/.+?):(\d+):(\d+)\)?$/.exec(line.trim())
    if (!match) continue
    const file = match[1].startsWith('file://') ? decodeURIComponent(match[1].slice('file://'.length)) : match[1]
    if (isOwnCode(file)) continue
    return `${file}:${match[2]}:${match[3]}`
  }
  return undefined
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
