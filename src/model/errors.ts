import { brand, isBranded } from '../shell/brand.js'
/**
 * Exit codes of `dep`. Each failure class has its own code so CI can tell a
 * held lock from a failed deploy from a typo in the deployfile.
 */
export const ExitCode = {
  /** Everything ran. */
  Success: 0,
  /** A task failed; the failure was handled (nothing switched, or every host was rolled back). */
  TaskFailed: 1,
  /** Bad input: a broken deployfile, an unknown task or host, a missing setting, a bad option. */
  ConfigError: 2,
  /** A host could not be reached, refused authentication, or showed an unknown or changed host key. */
  HostUnreachable: 3,
  /** Another run holds the deploy lock; nothing was changed. */
  LockHeld: 4,
  /** A failure happened and undoing it failed too: hosts may need a look. */
  RollbackFailed: 5,
  /**
   * The deploy went live, but a deploy lock could not be released: the summary
   * names the host and the unlock command.
   */
  LockNotReleased: 6,
  /**
   * A rolling deploy with `--max-fail` went live on every host but the ones that failed: each of
   * those was undone on its own and stays on the release it served (drifted by choice; the
   * summary names them, and the next deploy converges them).
   */
  PartialDeploy: 7,
  /** Stopped by Ctrl-C or SIGTERM (after reverting what could be reverted). */
  Interrupted: 130,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

/** Base class of every error deployfile reports itself: a message, a hint on what to fix, and an exit code. */
export class DeployError extends Error {
  static [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class `instanceof` asks about (ConfigError, say), not always DeployError
    return isBranded(value, this.name)
  }
  readonly exitCode: ExitCodeValue
  readonly hint?: string
  constructor(message: string, options: { exitCode?: ExitCodeValue; hint?: string; cause?: unknown } = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined)
    this.name = new.target.name
    brand(this)
    this.exitCode = options.exitCode ?? ExitCode.TaskFailed
    this.hint = options.hint
  }
}

/** A deployfile, setting or command-line mistake. */
export class ConfigError extends DeployError {
  constructor(message: string, hint?: string, cause?: unknown) {
    super(message, { exitCode: ExitCode.ConfigError, hint, cause })
  }
}

/** A host that could not be reached or authenticated, or whose connection was lost. */
export class ConnectionError extends DeployError {
  /**
   * True when connecting failed: the command that needed the connection was
   * never sent, so it did not run. False when an open connection was lost,
   * possibly after the command ran.
   */
  connecting = false

  constructor(message: string, hint?: string, cause?: unknown) {
    super(message, { exitCode: ExitCode.HostUnreachable, hint, cause })
  }
}

/** The deploy lock is held by another run. */
export class LockHeldError extends DeployError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.LockHeld, hint })
  }
}

/** A remote or local command exited non-zero (or timed out). */
export class CommandError extends DeployError {
  constructor(
    message: string,
    readonly details: {
      host: string
      command: string
      exitCode: number | null
      signal?: string | null
      stdout: string
      stderr: string
      timedOut?: boolean
      /** The task that queued the command, when it was sent with another task's round trip. */
      queuedBy?: string
    },
    /** What the failure means (the command's `failure` option): exit code and hint. */
    meaning: { exitCode?: ExitCodeValue; hint?: string } = {},
  ) {
    super(message, { exitCode: meaning.exitCode ?? ExitCode.TaskFailed, hint: meaning.hint })
  }
}

/** The run was interrupted by a signal. */
export class InterruptedError extends DeployError {
  constructor(message = 'Interrupted') {
    super(message, { exitCode: ExitCode.Interrupted })
  }
}
