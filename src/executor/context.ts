import type { ConfigKey, DeployConfig } from '../model/config-types.js'
import type { Host } from '../model/host.js'
import type { Phase } from '../model/task.js'
import { Command, sh, shownAs, type ShellValue } from '../shell/command.js'
import { quote } from '../shell/quote.js'
import { Transform } from 'node:stream'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { STDIN_BYTES_MAX, type Transport } from '../transport/types.js'
import { compileSelector } from '../plan/selector.js'
import { mergeValues } from '../model/config.js'
import { taskContextStorage } from '../dsl/ambient.js'
import type { AbortHandler, FailureInfo, QueueOptions, RunOptions, TaskContext as TaskContextContract, UploadOptions } from '../dsl/context.js'
import type { QueuedOwner, RunState } from './run-state.js'
import { abortHandling } from './abort.js'
import { enqueue, send, type Sender } from './send.js'

export { DEFAULT_MAX_OUTPUT } from './send.js'

type Template = TemplateStringsArray

function isTemplate(value: unknown): value is Template {
  return Array.isArray(value) && Object.hasOwn(value, 'raw')
}

/**
 * The executor's implementation of the DSL's {@link TaskContextContract}: one
 * per host and step. Users only see the interface (docs are on it).
 */
export class TaskContext implements TaskContextContract {
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
    enqueue(this.sender, await this.settled(command, options), options, this.owner)
  }

  /** Sends the commands queued for this host now (one round trip), if there are any. */
  async flush(): Promise<void> {
    if (!(this.state.batches.get(this.host.alias)?.length)) return
    await send(this.sender, this.transport(), new Command(':'), { quiet: true }, false)
  }

  /** Runs a command and returns whether it exited 0 (never throws for a non-zero exit). */
  test(strings: Template, ...values: ShellValue[]): Promise<boolean>
  test(command: string | Command, options?: RunOptions): Promise<boolean>
  async test(first: Template | string | Command, ...rest: unknown[]): Promise<boolean> {
    const { command, options } = await this.toCommand(first, rest)
    const result = await send(this.sender, this.transport(), await this.settled(command, options), { ...options, nothrow: true, quiet: true }, false)
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
  async on<T>(target: Host | Host[] | string, fn: (ctx: TaskContextContract) => Promise<T> | T): Promise<T[]> {
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
    if (Buffer.isBuffer(source)) return this.uploadContent(source, target, options)
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

  /**
   * Content goes as the stdin of `cat` into a new file (umask 077, then its mode), renamed over the
   * target: no SFTP session, and one round trip that also carries the host's queued commands (they
   * run first). The content is never on a command line; what `ps` shows is `cat`, `chmod` and `mv`.
   * Relative targets are relative to the login directory, as over SFTP.
   */
  private async uploadContent(content: Buffer, target: string, options: UploadOptions): Promise<void> {
    const temp = `${target}.deployfile-upload`
    const mode = (options.mode ?? 0o600).toString(8)
    // A failed write (a full disk, say) leaves no partial copy behind, and keeps its exit status.
    const write = shownAs(
      sh`rm -f ${temp} && { (umask 077 && cat > ${temp}) && chmod ${mode} ${temp} && mv -f ${temp} ${target} || { __df_rc=$?; rm -f ${temp}; (exit $__df_rc); }; }`,
      `upload (content) → ${target}`,
    )
    await send(this.sender, this.transport(), write.with({ stdin: content }), { quiet: true }, false)
    const size = content.length
    this.state.emit({ type: 'transfer', host: this.host.alias, task: this.taskName, direction: 'upload', path: target, bytes: size, totalBytes: size, done: true })
  }

  async prepareUpload(source: string, options: Pick<UploadOptions, 'exclude'> = {}): Promise<void> {
    try {
      const path = await this.parse(source)
      if (await isDirectory(path)) await this.state.archiveOf(path, options.exclude)
    } catch {
      // Never rejects (callers need not await it): the upload() that needs the archive awaits the
      // same cached promise and reports the failure there.
    }
  }

  /** A directory goes as one tar stream into `tar -x` on the host: one round trip for the whole tree. */
  private async uploadDirectory(path: string, target: string, options: UploadOptions): Promise<void> {
    const archive = await this.state.archiveOf(path, options.exclude)
    const { size } = await stat(archive)
    const extract = sh`mkdir -p ${target} && tar -x -f - -C ${target} --no-same-owner`
    if (size <= STDIN_BYTES_MAX) {
      // As bytes, read once for every host: over SSH it goes with the command on the command
      // channel, so the upload costs the host no session of its own. Progress: the end only.
      const bytes = await this.state.bytesOf(archive)
      await send(this.sender, this.transport(), await this.settled(extract, { stdin: bytes }), { quiet: true }, false)
      this.state.emit({ type: 'transfer', host: this.host.alias, task: this.taskName, direction: 'upload', path: target, bytes: size, totalBytes: size, done: true })
      return
    }
    // A large archive is streamed. Progress: bytes sent so far (at most ~10 events a second).
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
    const result = await send(this.sender, this.transport(), await this.settled(extract, { stdin: counted }), { quiet: true }, false)
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
    const result = await send(this.sender, transport, await this.settled(command, options), options, local)
    return result.stdout.replace(/\r?\n$/, '')
  }

  /** `command` with where it runs: the options' cwd (templated) or the task's directory, env and stdin. */
  private async settled(command: Command, options: RunOptions): Promise<Command> {
    const cwd = options.cwd !== undefined ? await this.parse(options.cwd) : this.workingDirectory
    return command.with({ cwd, env: options.env, stdin: options.stdin })
  }

  /** Who sends this context's commands. Recovery steps (fail hooks, rollback) and abort handlers must run even after Ctrl-C: they get no abort signal. */
  private get sender(): Sender {
    const signal = this.failure || abortHandling.getStore() ? undefined : this.state.signal
    return { state: this.state, host: this.host, task: this.taskName, signal }
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory()
  } catch {
    return false
  }
}
