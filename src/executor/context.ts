import type { ConfigKey, DeployConfig } from '../model/config-types.js'
import { CommandError, DeployError, InterruptedError, type ExitCodeValue } from '../model/errors.js'
import type { ErrorInfo } from '../model/events.js'
import type { Host } from '../model/host.js'
import type { Phase } from '../model/task.js'
import { Command, displayOf, sh, type ShellValue } from '../shell/command.js'
import { quote } from '../shell/quote.js'
import { Transform, type Readable } from 'node:stream'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { Transport } from '../transport/types.js'
import { compileSelector } from '../plan/selector.js'
import { taskContextStorage } from './current.js'
import { wrapScript } from '../shell/wrap.js'
import { LineSplitter } from './output.js'
import type { SecretRegistry } from '../shell/redact.js'
import type { QueuedCommand, QueuedOwner, RunState } from './run-state.js'
import { declareExitCode, exitCodeOf } from './errors.js'
import { abortHandling, type AbortHandler } from './abort.js'

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
/** Of stderr, what the result keeps (its last 1 MiB): the end of it explains a failure. */
const MAX_STDERR = 1024 * 1024
/** Of stdout and stderr, what a CommandError carries (the last 64 KiB of each). */
const ERROR_OUTPUT_TAIL = 64 * 1024

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

type Template = TemplateStringsArray

function isTemplate(value: unknown): value is Template {
  return Array.isArray(value) && Object.prototype.hasOwnProperty.call(value, 'raw')
}

/**
 * Everything a task can do on the host it runs on. The same functions are
 * exported at top level (`run`, `get`, …) and find this context by themselves.
 */
export class TaskContext {
  private workingDirectory?: string

  constructor(
    /** The host this task runs on. */
    readonly host: Host,
    /** The task's name. */
    readonly taskName: string,
    private readonly state: RunState,
    /** Set while a `fail` hook or rollback runs: what failed. */
    readonly failure?: FailureInfo,
    private readonly phase?: Phase,
    /** The step this context runs for: told about each command it queues, and how each ended. */
    private readonly owner?: QueuedOwner,
  ) {}

  /** Every host selected for this run. */
  get hosts(): Host[] {
    return this.state.hosts
  }

  /** The run's id (shared by all hosts; written into locks and the ledger). */
  get runId(): string {
    return this.state.runId
  }

  /** True during `--dry-run`: commands are recorded, not run. */
  get dryRun(): boolean {
    return this.state.dryRun
  }

  /** Reads a setting for this host, templated; a missing key without fallback is an error naming it. */
  get<K extends ConfigKey>(key: K, fallback?: DeployConfig[K]): Promise<DeployConfig[K]>
  get<T = unknown>(key: string, fallback?: T): Promise<T>
  get(key: string, fallback?: unknown): Promise<unknown> {
    return this.state.configFor(this.host).get(key, fallback)
  }

  /**
   * Sets a setting for this host for the rest of the run. As at load time, the
   * key must be declared and a literal value of its type (a ConfigError
   * otherwise); a lazy or templated value is checked when it resolves.
   */
  set<K extends ConfigKey>(key: K, value: DeployConfig[K]): void
  set(key: string, value: unknown): void
  set(key: string, value: unknown): void {
    this.state.registry.settings.checkKnown(key, value, `set('${key}', …) on ${this.host.alias}`, {
      secret: this.state.registry.secretKeys.has(key),
    })
    this.state.configFor(this.host).set(key, value)
  }

  /** True when the setting exists for this host. */
  has(key: string): boolean {
    return this.state.configFor(this.host).has(key)
  }

  /** Appends to an array setting (or merges into an object setting) for this host. */
  async add(key: string, values: unknown[] | Record<string, unknown>): Promise<void> {
    const config = this.state.configFor(this.host)
    const current = config.has(key) ? await config.get(key) : Array.isArray(values) ? [] : {}
    this.set(key, mergeValues(key, current, values))
  }

  /** A value every host of this run sees (e.g. the release name); computed by the first host that asks. */
  shared<T>(key: string, compute: () => Promise<T>): Promise<T> {
    let pending = this.state.shared.get(key) as Promise<T> | undefined
    if (!pending) {
      pending = compute()
      this.state.shared.set(key, pending)
      pending.catch(() => this.state.shared.delete(key))
    }
    return pending
  }

  /**
   * Expands `{{key}}` in a string. `given` supplies values for this expansion
   * only, e.g. `parse('{{release_path}}', { release_name: 'x' })`.
   */
  async parse(text: string, given?: Record<string, unknown>): Promise<string> {
    return this.state.configFor(this.host).expand(text, [], undefined, given)
  }

  /**
   * Runs a command on the host and returns its stdout (trailing newline
   * removed). As a tagged template every `${value}` is POSIX single-quoted; as
   * a string, `{{key}}` settings are expanded (quoted as well).
   *
   * @example await run`mkdir -p ${dir}`
   * @example await run('cd {{release_path}} && ls', { timeout: 60 })
   */
  run(strings: Template, ...values: ShellValue[]): Promise<string>
  run(command: string | Command, options?: RunOptions): Promise<string>
  run(first: Template | string | Command, ...rest: unknown[]): Promise<string> {
    return this.runOn(this.transport(), first, rest, false)
  }

  /** Like `run()`, but on this machine (e.g. a build step before uploading). */
  runLocally(strings: Template, ...values: ShellValue[]): Promise<string>
  runLocally(command: string | Command, options?: RunOptions): Promise<string>
  runLocally(first: Template | string | Command, ...rest: unknown[]): Promise<string> {
    return this.runOn(this.state.localTransportFor(this.host), first, rest, true)
  }

  /**
   * Queues a command whose output you do not need: it is sent, in order, with
   * the next command this host runs, or when the deploy phase ends, so several
   * steps cost one SSH round trip. A failure is reported for the task that
   * queued it. The step that queued it ends (its ✔ or ✖) only once the
   * command ran: failed when it failed or never ran.
   */
  queue(strings: Template, ...values: ShellValue[]): Promise<void>
  queue(command: string | Command, options?: QueueOptions): Promise<void>
  async queue(first: Template | string | Command, ...rest: unknown[]): Promise<void> {
    const { command, options } = await this.toCommand(first, rest)
    this.state.secrets.add(...command.secrets, ...(options.secrets ?? []))
    const cwd = options.cwd !== undefined ? await this.parse(options.cwd) : this.workingDirectory
    const queue = this.state.batches.get(this.host.alias) ?? []
    this.owner?.add()
    queue.push({ task: this.taskName, script: command.text, cwd, env: options.env, owner: this.owner, failure: options.failure })
    this.state.batches.set(this.host.alias, queue)
  }

  /** Sends the commands queued for this host now (one round trip), if there are any. */
  async flush(): Promise<void> {
    if (!(this.state.batches.get(this.host.alias)?.length)) return
    await this.execute(this.transport(), new Command(':'), { quiet: true }, false)
  }

  /** Runs a command and returns whether it exited 0 (never throws for a non-zero exit). */
  test(strings: Template, ...values: ShellValue[]): Promise<boolean>
  test(command: string | Command, options?: RunOptions): Promise<boolean>
  async test(first: Template | string | Command, ...rest: unknown[]): Promise<boolean> {
    const { command, options } = await this.toCommand(first, rest)
    const result = await this.execute(this.transport(), command, { ...options, nothrow: true, quiet: true }, false)
    return result.code === 0
  }

  /** Sets the directory later commands of this task run in (templated). */
  async cd(path: string): Promise<void> {
    this.workingDirectory = await this.parse(path)
  }

  /** Runs `fn` with commands in `path`, then restores the previous directory. */
  async within<T>(path: string, fn: () => Promise<T> | T): Promise<T> {
    const previous = this.workingDirectory
    this.workingDirectory = await this.parse(path)
    try {
      return await fn()
    } finally {
      this.workingDirectory = previous
    }
  }

  /** Runs another task now, on this host. */
  async invoke(taskName: string): Promise<void> {
    const task = this.state.registry.getTask(taskName)
    const names = task.group ? [...task.group] : [taskName]
    for (const name of names) {
      const member = this.state.registry.getTask(name)
      if (member.group) {
        await this.invoke(name)
        continue
      }
      const ctx = new TaskContext(this.host, name, this.state, this.failure, this.phase, this.owner)
      await taskContextStorage.run(ctx, () => member.body?.(ctx))
    }
  }

  /** Runs `fn` on other hosts (a host, a list, or a selector), in parallel, each with its own context. */
  async on<T>(target: Host | Host[] | string, fn: (ctx: TaskContext) => Promise<T> | T): Promise<T[]> {
    const hosts =
      typeof target === 'string'
        ? this.state.hosts.filter((h) => compileSelector(target)(h.labels))
        : Array.isArray(target)
          ? target
          : [target]
    return Promise.all(
      hosts.map((host) => {
        const ctx = new TaskContext(host, this.taskName, this.state, this.failure, this.phase, this.owner)
        return taskContextStorage.run(ctx, () => fn(ctx))
      }),
    )
  }

  /** Prints a message for this host. */
  info(message: string): void {
    this.state.emit({ type: 'log', level: 'info', host: this.host.alias, task: this.taskName, message })
  }

  /** Prints a warning for this host. */
  warning(message: string): void {
    this.state.emit({ type: 'log', level: 'warning', host: this.host.alias, task: this.taskName, message })
  }

  /** Emits a lock event (used by recipes so reporters and `--json` can show lock changes). */
  lockEvent(type: 'lock:taken' | 'lock:released' | 'lock:held', owner?: string): void {
    this.state.emit({ type, host: this.host.alias, owner })
  }

  /** Emits a release event: the release this host moves to, for reporters, `--json` and run listeners. */
  releaseEvent(release: { release: string; revision?: string; previous?: string }): void {
    this.state.emit({ type: 'release', host: this.host.alias, task: this.taskName, ...release })
  }

  /**
   * Registers, for this host, something to do when the user aborts at once (a
   * second Ctrl-C, SIGTERM or SIGHUP): say what is left behind on the host and
   * how to recover, e.g. "lock held, release 12 live: run dep deploy:unlock
   * --force web1". Every handler of the run runs at once, bounded by about
   * 5 s in total; commands it runs (`ctx.run`, `run`) are not stopped by the
   * abort. The returned line is printed as a warning for this host; return
   * nothing to print nothing. Returns a function that removes the handler
   * (once the step that needed it cleaned up after itself).
   */
  onAbort(handler: AbortHandler): () => void {
    const entry = { host: this.host, task: this.taskName, ctx: this, handler }
    this.state.abortHandlers.push(entry)
    return () => {
      const index = this.state.abortHandlers.indexOf(entry)
      if (index >= 0) this.state.abortHandlers.splice(index, 1)
    }
  }

  /** Registers values to mask as `***` everywhere for the rest of the run. */
  addSecrets(...values: string[]): void {
    this.state.secrets.add(...values)
  }

  /**
   * Copies a local file or directory (or a Buffer of content) to the host.
   * The destination is templated.
   */
  async upload(source: string | Buffer, destination: string, options: UploadOptions = {}): Promise<void> {
    const target = await this.parse(destination)
    const path = typeof source === 'string' ? await this.parse(source) : '(content)'
    if (typeof source === 'string' && options.mode === undefined && (await isDirectory(path))) {
      return this.uploadDirectory(path, target, options)
    }
    // SFTP writes must not overtake queued commands (say, the mkdir of the target's directory).
    if (options.afterQueued !== false) await this.flush()
    this.state.emit({ type: 'command:start', host: this.host.alias, task: this.taskName, command: `upload ${path} → ${target}` })
    const started = Date.now()
    const end = (exitCode: number | null) =>
      this.state.emit({ type: 'command:end', host: this.host.alias, task: this.taskName, exitCode, durationMs: Date.now() - started })
    await this.transport().put(typeof source === 'string' ? path : source, target, {
      mode: options.mode,
      onProgress: (bytes, total) =>
        this.state.emit({
          type: 'transfer',
          host: this.host.alias,
          task: this.taskName,
          direction: 'upload',
          path: target,
          bytes,
          totalBytes: total,
          done: bytes >= total,
        }),
    }).catch((error: unknown) => {
      end(null)
      throw error
    })
    end(0)
  }

  /** A directory goes as one tar stream into `tar -x` on the host: one round trip for the whole tree. */
  private async uploadDirectory(path: string, target: string, options: UploadOptions): Promise<void> {
    const archive = await this.state.archiveOf(path, options.exclude)
    const { size } = await stat(archive)
    const extract = sh`mkdir -p ${target} && tar -x -f - -C ${target} --no-same-owner`
    // Progress: bytes of the archive sent so far (at most ~10 events a second).
    let bytes = 0
    let reported = 0
    const progress = (done: boolean) =>
      this.state.emit({ type: 'transfer', host: this.host.alias, task: this.taskName, direction: 'upload', path: target, bytes, totalBytes: size, done })
    const counted = createReadStream(archive).pipe(
      new Transform({
        transform: (chunk: Buffer, _encoding, callback) => {
          bytes += chunk.length
          if (Date.now() - reported >= 100 && bytes < size) {
            reported = Date.now()
            progress(false)
          }
          callback(null, chunk)
        },
      }),
    )
    const result = await this.execute(this.transport(), extract, { stdin: counted, quiet: true }, false)
    if (result.code === 0) bytes = size
    progress(result.code === 0)
  }

  /** Copies a remote file or directory to this machine. The source is templated. */
  async download(source: string, destination: string): Promise<void> {
    const remote = await this.parse(source)
    this.state.emit({ type: 'command:start', host: this.host.alias, task: this.taskName, command: `download ${remote} → ${destination}` })
    const started = Date.now()
    const end = (exitCode: number | null) =>
      this.state.emit({ type: 'command:end', host: this.host.alias, task: this.taskName, exitCode, durationMs: Date.now() - started })
    await this.transport().get(remote, destination).catch((error: unknown) => {
      end(null)
      throw error
    })
    end(0)
  }

  private transport(): Transport {
    return this.state.transportFor(this.host)
  }

  private async toCommand(first: Template | string | Command, rest: unknown[]): Promise<{ command: Command; options: RunOptions }> {
    const config = this.state.configFor(this.host)
    if (isTemplate(first)) {
      // Settings in the literal parts are expanded; interpolated values are only quoted.
      const literals = await Promise.all(first.map((part) => config.expand(part, [], quote)))
      const strings = Object.assign([...literals], { raw: literals }) as unknown as TemplateStringsArray
      return { command: sh(strings, ...(rest as ShellValue[])), options: {} }
    }
    const options = (rest[0] as RunOptions | undefined) ?? {}
    if (first instanceof Command) return { command: first, options }
    return { command: new Command(await config.expand(first, [], quote)), options }
  }

  private async runOn(transport: Transport, first: Template | string | Command, rest: unknown[], local: boolean): Promise<string> {
    const { command, options } = await this.toCommand(first, rest)
    const result = await this.execute(transport, command, options, local)
    return result.stdout.replace(/\r?\n$/, '')
  }

  /** Recovery steps (fail hooks, rollback) and abort handlers must run even after Ctrl-C: they get no abort signal. */
  private get signal(): AbortSignal | undefined {
    return this.failure || abortHandling.getStore() ? undefined : this.state.signal
  }

  private async execute(transport: Transport, command: Command, options: RunOptions, local: boolean) {
    const state = this.state
    state.secrets.add(...command.secrets, ...(options.secrets ?? []))
    if (this.signal?.aborted) throw new InterruptedError()
    const host = this.host.alias
    const task = this.taskName
    let cwd = options.cwd !== undefined ? await this.parse(options.cwd) : this.workingDirectory
    let env = options.env
    let script = command.text
    // A dry run reads the host for real; what was queued stays with the recorder.
    const reader = options.readOnly && !local ? state.readTransportFor(this.host) : undefined
    if (reader) transport = reader
    const batch = local || reader ? [] : (state.batches.get(host) ?? [])
    // `:` only carries queued commands (flush): it gets no events of its own.
    const shownOwn = command.text !== ':' || batch.length === 0
    const shownCommand = displayOf(command)
    if (batch.length > 0) {
      state.batches.delete(host)
      for (const queued of batch) {
        state.emit({ type: 'command:start', host, task: queued.task, command: queued.script })
      }
      script = `${renderBatch(batch)}\n${wrapScript(script, { cwd, env })}`
      cwd = undefined
      env = undefined
    }
    if (shownOwn) state.emit({ type: 'command:start', host, task, command: shownCommand, local: local || undefined })
    const started = Date.now()
    const splitter = (stream: 'stdout' | 'stderr') =>
      new LineSplitter(
        (text, partial) => state.emit({ type: 'command:output', host, task, stream, text, ...(partial ? { partial: true } : {}) }),
        state.secrets,
      )
    const maxStdout = options.maxOutput ?? (options.quiet ? undefined : DEFAULT_MAX_OUTPUT)
    const out = splitter('stdout')
    const err = splitter('stderr')
    const ended = (commandTask: string, exitCode: number | null) =>
      state.emit({ type: 'command:end', host, task: commandTask, exitCode, durationMs: Date.now() - started })
    let result: Awaited<ReturnType<Transport['exec']>>
    try {
      result = await transport.exec(script, {
        cwd,
        env,
        stdin: options.stdin,
        timeoutMs: options.timeout ? options.timeout * 1000 : undefined,
        signal: this.signal,
        onStdout: options.quiet ? undefined : (chunk) => out.push(chunk),
        onStderr: options.quiet ? undefined : (chunk) => err.push(chunk),
        maxStdout,
        maxStderr: MAX_STDERR,
      })
    } catch (error) {
      // The connection failed (or could not be made): none of these commands is known to have run.
      out.flush()
      err.flush()
      for (const queued of batch) ended(queued.task, null)
      if (shownOwn) ended(task, null)
      for (const queued of batch) queued.owner?.settle(this.notRun(queued.task, queued.script, error, queued.failure))
      throw options.failure && shownOwn ? this.notRun(undefined, shownCommand, error, options.failure) : error
    }
    out.flush()
    err.flush()
    if (result.stdoutDropped && options.maxOutput === undefined) {
      state.emit({
        type: 'log',
        level: 'warning',
        host,
        task,
        message: `The command printed more than ${maxStdout! / 1024 / 1024} MiB: run() returned only its last ${maxStdout! / 1024 / 1024} MiB (the rest was streamed). Pass { maxOutput } to keep more.`,
      })
    }
    // How each queued command ended: the marker names the one that failed; those after it never ran.
    const failedIndex = batch.length > 0 && result.code !== 0 ? findFailedBatch(result.stderr) : -1
    // Killed (timeout, Ctrl-C) with no marker: whether the queued commands finished is not known.
    const unknown = failedIndex === -1 && (result.aborted || result.code === null)
    let failedQueued: CommandError | undefined
    const queuedErrors = batch.map((queued, index) => {
      if (failedIndex === index) {
        // A queued command failed: reported for the task that queued it, whatever `nothrow` says here.
        const shown = state.secrets.redact(queued.script)
        failedQueued = new CommandError(
          `Command on ${host} (queued by ${queued.task}) exited with code ${result.code}: ${firstLine(shown)}`,
          {
            host,
            command: shown,
            exitCode: result.code,
            signal: result.signal,
            stdout: errorOutput(result.stdout, result.stdoutDropped, state.secrets),
            stderr: errorOutput(result.stderr.replace(BATCH_MARKER_LINE, ''), result.stderrDropped, state.secrets),
            timedOut: result.timedOut,
            queuedBy: queued.task,
          },
          queued.failure,
        )
        declareExitCode(failedQueued, queued.failure)
        return failedQueued as unknown
      }
      if ((failedIndex !== -1 && index > failedIndex) || unknown) {
        const reason = unknown
          ? new InterruptedError(result.aborted ? 'the run was interrupted' : `the command it was sent with was killed by ${result.signal ?? 'a signal'}`)
          : new DeployError(`an earlier queued command failed (queued by ${batch[failedIndex].task})`)
        return this.notRun(queued.task, queued.script, reason, queued.failure)
      }
      return undefined
    })
    batch.forEach((queued, index) => ended(queued.task, failedIndex === index ? result.code : queuedErrors[index] ? null : 0))
    if (shownOwn) ended(task, failedIndex === -1 ? result.code : null)
    batch.forEach((queued, index) => queued.owner?.settle(queuedErrors[index]))
    if (result.aborted) throw new InterruptedError(`Interrupted while running a command on ${host}.`)
    if (failedQueued) {
      throw options.failure && shownOwn ? this.notRun(undefined, shownCommand, failedQueued, options.failure) : failedQueued
    }
    if (result.code !== 0 && !options.nothrow) {
      const shown = state.secrets.redact(shownCommand)
      const reason = result.timedOut
        ? `timed out after ${options.timeout}s`
        : result.code === null
          ? `was killed by ${result.signal ?? 'a signal'}`
          : `exited with code ${result.code}`
      const error = new CommandError(
        `Command on ${host} ${reason}: ${firstLine(shown)}`,
        {
          host,
          command: shown,
          exitCode: result.code,
          signal: result.signal,
          stdout: errorOutput(result.stdout, result.stdoutDropped, state.secrets),
          stderr: errorOutput(result.stderr, result.stderrDropped, state.secrets),
          timedOut: result.timedOut,
        },
        options.failure,
      )
      throw declareExitCode(error, options.failure)
    }
    return result
  }

  /** The error of a command that never ran: see notRunError. */
  private notRun(queuedBy: string | undefined, script: string, reason: unknown, meaning: FailureMeaning | undefined): DeployError {
    return notRunError(this.state, this.host.alias, queuedBy, script, reason, meaning)
  }
}

/**
 * The error of a command that never ran (`queuedBy` for a queued one): it names the host, the
 * command and why, and carries the command's own failure meaning (else the reason's exit code).
 */
export function notRunError(
  state: RunState,
  host: string,
  queuedBy: string | undefined,
  script: string,
  reason: unknown,
  meaning: FailureMeaning | undefined,
): DeployError {
  const shown = state.secrets.redact(script)
  const why = state.secrets.redact(reason instanceof Error ? reason.message : String(reason))
  const error = new DeployError(`Command on ${host}${queuedBy ? ` (queued by ${queuedBy})` : ''} did not run: ${firstLine(shown)} (${why.replace(/\.$/, '')})`, {
    exitCode: meaning?.exitCode ?? exitCodeOf(reason),
    hint: meaning?.hint ?? (reason instanceof DeployError ? reason.hint : undefined),
    cause: reason,
  })
  return declareExitCode(error, meaning)
}

const BATCH_MARKER = '@@deployfile-queued-failed'
const BATCH_MARKER_LINE = new RegExp(`\\n?${BATCH_MARKER} \\d+\\n?`, 'g')

/**
 * Each queued command runs in its own subshell (its cwd and env stay its own,
 * stdin is not shared); the first failure prints a marker naming it and stops
 * the script with its exit code.
 */
function renderBatch(batch: QueuedCommand[]): string {
  return batch
    .map(
      (queued, index) =>
        // Not `( … ) || …`: the shell ignores `set -e` inside the left side of `||`.
        `(\n${wrapScript(queued.script, { cwd: queued.cwd, env: queued.env })}\n) </dev/null\nrc=$?; if [ $rc -ne 0 ]; then printf '\\n%s %s\\n' '${BATCH_MARKER}' ${index} >&2; exit $rc; fi`,
    )
    .join('\n')
}

/** Index of the queued command whose failure the marker reports, or -1. */
function findFailedBatch(stderr: string): number {
  const match = new RegExp(`${BATCH_MARKER} (\\d+)`).exec(stderr)
  return match ? Number(match[1]) : -1
}

/**
 * A command's output as a CommandError carries it: masked, then its last ERROR_OUTPUT_TAIL
 * characters (from a line start when there is one). Output the transport already cut (`dropped`)
 * may begin inside a secret, which masking would not recognise: its first, partial line goes (or,
 * in one endless line, as much as the longest secret).
 */
function errorOutput(text: string, dropped: number | undefined, secrets: SecretRegistry): string {
  if (dropped) {
    const newline = text.indexOf('\n')
    text = newline >= 0 ? text.slice(newline + 1) : text.slice(Math.min(text.length, secrets.maxLength))
  }
  const masked = secrets.redact(text)
  if (masked.length <= ERROR_OUTPUT_TAIL) return masked
  const tail = masked.slice(masked.length - ERROR_OUTPUT_TAIL)
  const newline = tail.indexOf('\n')
  return newline >= 0 && newline < tail.length - 1 ? tail.slice(newline + 1) : tail
}

function firstLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() && l.trim() !== 'set -e')
  return lines.length > 1 ? `${lines[0]} … (${lines.length} lines)` : (lines[0] ?? text)
}

/** Appends to an array value or merges into an object value; anything else is an error naming the key. */
export function mergeValues(key: string, current: unknown, values: unknown[] | Record<string, unknown>): unknown {
  if (Array.isArray(values)) {
    if (!Array.isArray(current)) throw new DeployError(`add('${key}', […]): the current value is not an array.`)
    return [...current, ...values.filter((v) => !current.includes(v))]
  }
  if (!current || typeof current !== 'object' || Array.isArray(current)) {
    throw new DeployError(`add('${key}', {…}): the current value is not an object.`)
  }
  return { ...(current as object), ...values }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory()
  } catch {
    return false
  }
}
