import type { Readable } from 'node:stream'
import type { ConfigKey, DeployConfig } from '../model/config-types.js'
import type { ExitCodeValue } from '../model/errors.js'
import type { ErrorInfo } from '../model/events.js'
import type { Host } from '../model/host.js'
import type { Phase } from '../model/task.js'
import type { Command, ShellValue } from '../shell/command.js'

/*
 * The contract between a deployfile and the engine: what a task body, a hook,
 * an `on()` callback and a lazy setting receive. The executor implements it;
 * users only ever see this interface.
 */

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
   * 4 MiB for a command whose output is streamed (it is on screen and in the log already), no
   * limit for a `quiet` one (its output is what the caller asked for). `0` keeps nothing
   * (`run()` returns '').
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

/** Options of `upload()`. */
export interface UploadOptions {
  /** Mode of the written file(s), e.g. `0o600` for secrets. */
  mode?: number
  /** For a directory: tar patterns to leave out, e.g. `['node_modules', '.git']`. */
  exclude?: string[]
  /**
   * For a file: send the host's queued commands first, so the upload lands
   * after them (default true). False saves that round trip when the upload
   * does not depend on them. Content (a Buffer) always goes in the same round
   * trip as the queued commands, after them: this option does not apply.
   */
  afterQueued?: boolean
}

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
  /**
   * True when only this host is being undone: it failed in a rolling deploy with `--max-fail`
   * and is left out of the run, on what it served, while the other hosts carry on.
   */
  leftOut?: boolean
  /** The error, as reporters show it (message, hint, command, exit code, output tail). */
  error: ErrorInfo
}

/**
 * What `ctx.onAbort()` registers: run when the user aborts at once (a second
 * Ctrl-C). The line it returns is printed as a warning for its host.
 */
export type AbortHandler = () => Promise<string | undefined> | string | undefined

type Template = TemplateStringsArray

/**
 * Everything a task can do on the host it runs on: what a task body, a hook,
 * an `on()` callback and a lazy setting receive. The same functions are
 * exported at top level (`run`, `get`, …) and find this context by themselves.
 */
export interface TaskContext {
  /** The host this task runs on. */
  readonly host: Host
  /** The task's name. */
  readonly taskName: string
  /** Set while a `fail` hook or rollback runs: what failed. */
  readonly failure?: FailureInfo
  /** Every host selected for this run. */
  readonly hosts: Host[]
  /** The run's id (shared by all hosts; written into locks and the ledger). */
  readonly runId: string
  /** True during `--dry-run`: commands are recorded, not run. */
  readonly dryRun: boolean

  /**
   * Reads a setting for this host, templated (`-o` beats values set during the
   * run, host values, global ones and recipe defaults; a lazy value is computed
   * once). A missing key without `fallback` is an error naming it.
   */
  get<K extends ConfigKey>(key: K, fallback?: DeployConfig[K]): Promise<DeployConfig[K]>
  /** Reads a setting of your own that is not typed in {@link DeployConfig}. */
  get<T = unknown>(key: string, fallback?: T): Promise<T>
  /**
   * Sets a setting for this host for the rest of the run. As at load time, the
   * key must be declared and a literal value of its type (a ConfigError
   * otherwise); a lazy or templated value is checked when it resolves.
   */
  set<K extends ConfigKey>(key: K, value: DeployConfig[K]): void
  /** Sets a setting of your own that is not typed in {@link DeployConfig}. */
  set(key: string, value: unknown): void
  /** True when the setting exists for this host. */
  has(key: string): boolean
  /** Appends to an array setting (or merges into an object setting) for this host. */
  add(key: string, values: unknown[] | Record<string, unknown>): Promise<void>
  /** A value every host of this run sees (e.g. the release name); computed by the first host that asks. */
  shared<T>(key: string, compute: () => Promise<T>): Promise<T>
  /**
   * Expands `{{key}}` in a string. `given` supplies values for this expansion
   * only, e.g. `parse('{{release_path}}', { release_name: 'x' })`.
   */
  parse(text: string, given?: Record<string, unknown>): Promise<string>

  /**
   * Runs a command on the host and returns its stdout (trailing newline
   * removed). As a tagged template every `${value}` is POSIX single-quoted; as
   * a string, `{{key}}` settings are expanded (quoted as well). A failure
   * throws a `CommandError`.
   *
   * @example await run`mkdir -p ${dir}`
   * @example await run('cd {{release_path}} && ls', { timeout: 60 })
   */
  run(strings: Template, ...values: ShellValue[]): Promise<string>
  /** Runs a command given as a string (settings expanded) or built with `sh`. */
  run(command: string | Command, options?: RunOptions): Promise<string>
  /** Like `run()`, but on this machine (e.g. a build step before uploading). */
  runLocally(strings: Template, ...values: ShellValue[]): Promise<string>
  /** Like `run()`, but on this machine. */
  runLocally(command: string | Command, options?: RunOptions): Promise<string>
  /**
   * Queues a command whose output you do not need: it is sent, in order, with
   * the next command this host runs, or when the deploy phase ends, so several
   * steps cost one SSH round trip. A failure is reported for the task that
   * queued it. The step that queued it ends (its ✔ or ✖) only once the
   * command ran: failed when it failed or never ran.
   */
  queue(strings: Template, ...values: ShellValue[]): Promise<void>
  /** Queues a command given as a string (settings expanded) or built with `sh`. */
  queue(command: string | Command, options?: QueueOptions): Promise<void>
  /** Sends the commands queued for this host now (one round trip), if there are any. */
  flush(): Promise<void>
  /** Runs a command and returns whether it exited 0 (never throws for a non-zero exit). */
  test(strings: Template, ...values: ShellValue[]): Promise<boolean>
  /** Tests a command given as a string (settings expanded) or built with `sh`. */
  test(command: string | Command, options?: RunOptions): Promise<boolean>
  /** Sets the directory later commands of this task run in (templated). */
  cd(path: string): Promise<void>
  /** Runs `fn` with commands in `path`, then restores the previous directory. */
  within<T>(path: string, fn: () => Promise<T> | T): Promise<T>

  /** Runs another task now, on this host. */
  invoke(taskName: string): Promise<void>
  /** Runs `fn` on other hosts (a host, a list, or a label selector), in parallel, each with its own context. */
  on<T>(target: Host | Host[] | string, fn: (ctx: TaskContext) => Promise<T> | T): Promise<T[]>

  /**
   * Announces the release this host moves to (with its revision and what it served before): a
   * `release` event for reporters, `--json` and run listeners (notifications). The common recipe
   * calls it once per host in `deploy:update_code` and `rollback:switch`.
   */
  releaseEvent(release: { release: string; revision?: string; previous?: string }): void

  /** Prints a message for this host. */
  info(message: string): void
  /** Prints a warning for this host. */
  warning(message: string): void
  /** Emits a lock event, so reporters and `--json` show lock changes (for recipes that take a lock). */
  lockEvent(type: 'lock:taken' | 'lock:released' | 'lock:held', owner?: string): void
  /**
   * Registers, for this host, something to do when the user aborts at once (a
   * second Ctrl-C, SIGTERM or SIGHUP): say what is left behind on the host and
   * how to recover, e.g. "lock held, release 12 live: run dep deploy:unlock
   * --force web1". Every handler of the run runs at once, bounded by about
   * 5 s in total; commands it runs are not stopped by the abort. The returned
   * line is printed as a warning for this host; return nothing to print
   * nothing. Returns a function that removes the handler (once the step that
   * needed it cleaned up after itself).
   */
  onAbort(handler: AbortHandler): () => void
  /** Registers values to mask as `***` everywhere for the rest of the run. */
  addSecrets(...values: string[]): void

  /**
   * Copies a local file or directory (or a Buffer of content) to the host; a
   * directory travels as one tar stream, a file over SFTP, content as the
   * stdin of `cat` (never on a command line; created 0600 unless `mode` says
   * otherwise, then renamed over the destination). Both paths are templated.
   */
  upload(source: string | Buffer, destination: string, options?: UploadOptions): Promise<void>
  /**
   * Starts making the tar archive of a local directory that a later
   * `upload()` of the same directory (and `exclude`) sends: called without
   * `await`, the archive is made while the hosts connect and lock, not in the
   * critical path of every host. Made once per run for every host. The
   * promise resolves when the archive is ready and never rejects: a failure
   * shows at that `upload()`. Optional: `upload()` makes the archive when it
   * was not prepared. Does nothing for a file or a missing path.
   *
   * @example void ctx.prepareUpload('build/', { exclude: ['node_modules'] })
   */
  prepareUpload(source: string, options?: Pick<UploadOptions, 'exclude'>): Promise<void>
  /** Copies a remote file or directory to this machine. The source is templated. */
  download(source: string, destination: string): Promise<void>
}
