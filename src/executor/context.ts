import type { ConfigKey, DeployConfig } from '../model/config-types.js'
import { CommandError, DeployError, InterruptedError } from '../model/errors.js'
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
import type { QueuedCommand, RunState } from './run-state.js'

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

  /** Sets a setting for this host for the rest of the run. */
  set<K extends ConfigKey>(key: K, value: DeployConfig[K]): void
  set(key: string, value: unknown): void
  set(key: string, value: unknown): void {
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
    config.set(key, mergeValues(key, current, values))
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

  /** Expands `{{key}}` in a string. */
  async parse(text: string): Promise<string> {
    return this.state.configFor(this.host).expand(text)
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
   * queued it.
   */
  queue(strings: Template, ...values: ShellValue[]): Promise<void>
  queue(command: string | Command, options?: Pick<RunOptions, 'cwd' | 'env' | 'secrets'>): Promise<void>
  async queue(first: Template | string | Command, ...rest: unknown[]): Promise<void> {
    const { command, options } = await this.toCommand(first, rest)
    this.state.secrets.add(...command.secrets, ...(options.secrets ?? []))
    const cwd = options.cwd !== undefined ? await this.parse(options.cwd) : this.workingDirectory
    const queue = this.state.batches.get(this.host.alias) ?? []
    queue.push({ task: this.taskName, script: command.text, cwd, env: options.env })
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
      const ctx = new TaskContext(this.host, name, this.state, this.failure, this.phase)
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
        const ctx = new TaskContext(host, this.taskName, this.state, this.failure, this.phase)
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

  /** Recovery steps (fail hooks, rollback) must run even after Ctrl-C: they get no abort signal. */
  private get signal(): AbortSignal | undefined {
    return this.failure ? undefined : this.state.signal
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
    const batch = local ? [] : (state.batches.get(host) ?? [])
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
    // A lone ':' only carries queued commands: it is not shown, so it gets no command:end either.
    const ownStarted = command.text !== ':' || batch.length === 0
    if (ownStarted) state.emit({ type: 'command:start', host, task, command: shownCommand, local: local || undefined })
    const started = Date.now()
    /**
     * Every command:start gets its command:end, queued ones included. `ranTo`: how many queued commands
     * exited 0 (the one at `ranTo` exited `code` when it is a queued one, the rest never ran: null).
     */
    const endAll = (ranTo: number, code: number | null) => {
      const durationMs = Date.now() - started
      batch.forEach((queued, index) => {
        const exitCode = index < ranTo ? 0 : index === ranTo ? code : null
        state.emit({ type: 'command:end', host, task: queued.task, exitCode, durationMs })
      })
      if (ownStarted) state.emit({ type: 'command:end', host, task, exitCode: ranTo === batch.length ? code : null, durationMs })
    }
    const splitter = (stream: 'stdout' | 'stderr') =>
      new LineSplitter((text) => state.emit({ type: 'command:output', host, task, stream, text }))
    const out = splitter('stdout')
    const err = splitter('stderr')
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
      })
    } catch (error) {
      // The connection failed: nothing is known to have run.
      endAll(0, null)
      throw error
    }
    out.flush()
    err.flush()
    const failedIndex = batch.length > 0 && result.code !== 0 ? findFailedIndex(result.stderr) : -1
    if (result.aborted) endAll(0, null)
    else endAll(failedIndex >= 0 ? failedIndex : batch.length, result.code)
    if (result.aborted) throw new InterruptedError(`Interrupted while running a command on ${host}.`)
    const failedQueued = failedIndex >= 0 ? batch[failedIndex] : undefined
    if (failedQueued && result.code !== 0) {
      // A queued command failed: report it for the task that queued it, whatever `nothrow` says here.
      const shown = state.secrets.redact(failedQueued.script)
      throw new CommandError(`Command on ${host} (queued by ${failedQueued.task}) exited with code ${result.code}: ${firstLine(shown)}`, {
        host,
        command: shown,
        exitCode: result.code,
        signal: result.signal,
        stdout: state.secrets.redact(result.stdout),
        stderr: state.secrets.redact(result.stderr.replace(BATCH_MARKER_LINE, '')),
        timedOut: result.timedOut,
        queuedBy: failedQueued.task,
      })
    }
    if (result.code !== 0 && !options.nothrow) {
      const shown = state.secrets.redact(shownCommand)
      const reason = result.timedOut
        ? `timed out after ${options.timeout}s`
        : result.code === null
          ? `was killed by ${result.signal ?? 'a signal'}`
          : `exited with code ${result.code}`
      throw new CommandError(`Command on ${host} ${reason}: ${firstLine(shown)}`, {
        host,
        command: shown,
        exitCode: result.code,
        signal: result.signal,
        stdout: state.secrets.redact(result.stdout),
        stderr: state.secrets.redact(result.stderr),
        timedOut: result.timedOut,
      })
    }
    return result
  }
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

/** The index of the queued command that failed (its marker on stderr), or -1. */
function findFailedIndex(stderr: string): number {
  const match = new RegExp(`${BATCH_MARKER} (\\d+)`).exec(stderr)
  return match ? Number(match[1]) : -1
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
