import type { Readable } from 'node:stream'
import type { ExitCodeValue } from '../model/errors.js'
import type { ErrorInfo } from '../model/events.js'
import type { Phase } from '../model/task.js'

/* The options of the task context's commands and transfers, and what a recovery step is told. */

/**
 * What the failure of a command means for the run (`failure` of `run()` and
 * `queue()`): the exit code and hint its error carries when the command fails,
 * or never runs because the commands sent before it failed or the connection
 * died.
 */
export interface FailureMeaning {
  /**
   * Exit code of the run when this command fails, e.g. `ExitCode.LockNotReleased`.
   * In a best-effort finish phase the failure stays a warning, but the run
   * exits with the highest such code.
   */
  exitCode?: ExitCodeValue
  /** What to do about it, shown under the error (e.g. the command that releases the lock by hand). */
  hint?: string
}

/** Options of `run()`, `runLocally()` and `test()`. */
export interface RunOptions {
  /** Directory to run in (templated). Default: the directory set by `cd()`, else the login directory. */
  cwd?: string
  /** Extra environment variables. */
  env?: Record<string, string>
  /** Seconds before the command (and its process group) is killed. Default: no limit. */
  timeout?: number
  /** Return instead of throwing when the command fails. */
  nothrow?: boolean
  /** Values to mask as `***` in output, logs, events and errors. */
  secrets?: string[]
  /** Data for the command's standard input (never shown). */
  stdin?: string | Buffer | Readable
  /** Do not stream the command's output to reporters (it is still returned). */
  quiet?: boolean
  /** What a failure of this command means: the exit code and hint its error carries. */
  failure?: FailureMeaning
  /**
   * Most bytes of stdout `run()` returns: the last ones, with a warning when more came. Default
   * {@link DEFAULT_MAX_OUTPUT} for a command whose output is streamed (it is on screen and in the
   * log already), no limit for a `quiet` one (its output is what the caller asked for). `0` keeps
   * nothing (`run()` returns '').
   */
  maxOutput?: number
  /**
   * The command only reads (it changes nothing on the host): `--dry-run` runs
   * it for real, so what the run decides from its output (release names,
   * paths) is true. Every other command a dry run only prints.
   */
  readOnly?: boolean
}

/** Options of `queue()`. */
export type QueueOptions = Pick<RunOptions, 'cwd' | 'env' | 'secrets' | 'failure'>

/** What `run()` returns at most of a streamed command's stdout (its last 4 MiB), unless `maxOutput` says otherwise. */
export const DEFAULT_MAX_OUTPUT = 4 * 1024 * 1024

/** What went wrong, given to `fail` hooks and rollback steps. */
export interface FailureInfo {
  /** The task that failed. */
  task: string
  /** The host it failed on. */
  host: string
  /** The phase the failure happened in. */
  phase?: Phase
  /** True when the run was interrupted (Ctrl-C, SIGTERM). */
  interrupted: boolean
  error: ErrorInfo
}

/** Options of `upload()`. */
export interface UploadOptions {
  /** Mode of the written file(s), e.g. `0o600` for secrets. */
  mode?: number
  /** For a directory: tar patterns to leave out, e.g. `['node_modules', '.git']`. */
  exclude?: string[]
  /**
   * Send the host's queued commands first, so the upload lands after them
   * (default true). False saves that round trip when the upload does not
   * depend on them.
   */
  afterQueued?: boolean
}
