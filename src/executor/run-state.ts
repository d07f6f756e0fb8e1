import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ConfigKey } from '../model/config-types.js'
import type { ExitCodeValue } from '../model/errors.js'
import { createTarArchive } from '../transport/local/tar.js'
import type { HostConfig } from '../model/config.js'
import type { EventInput, EventSink, LeftOutHost, RunEvent, RunSummary } from '../model/events.js'
import type { Host } from '../model/host.js'
import type { Registry } from '../model/registry.js'
import type { Command } from '../shell/command.js'
import { SecretRegistry } from '../shell/redact.js'
import type { AbortHandler, TaskContext } from '../dsl/context.js'
import { taskContextStorage } from '../dsl/ambient.js'
import type { Transport, TransportFactory } from '../transport/types.js'

/** A command queued with `ctx.queue()`, waiting for the host's next round trip. */
export interface QueuedCommand {
  task: string
  /** The command, with the cwd and env it runs with. */
  command: Command
  /** The step that queued it: told once it ran (or failed, or never will). */
  owner?: QueuedOwner
  /** What its failure means (`queue()`'s `failure` option). */
  failure?: { exitCode?: ExitCodeValue; hint?: string }
}

/** A step that queued commands: its step:end waits until each of them is settled. */
export interface QueuedOwner {
  /** One more command queued by the step. */
  add(): void
  /**
   * One of its commands ran (no error), failed, or will never run (the error says why); `sentBy`
   * is the step whose round trip carried it (absent when it never went).
   */
  settle(error?: unknown, sentBy?: string): void
}

/** A handler `ctx.onAbort()` registered, with the host and task it speaks for (see abort.ts). */
export interface AbortHandlerEntry {
  host: Host
  task: string
  ctx: TaskContext
  handler: AbortHandler
}

/** What every host of one run shares: settings, connections, secrets and the event stream. */
export class RunState {
  private readonly hostConfigs = new Map<string, HostConfig>()
  private readonly transports = new Map<string, Transport>()
  private readonly localTransports = new Map<string, Transport>()
  private readonly readTransports = new Map<string, Transport>()
  /** Values shared by every host of the run (`ctx.shared`). */
  readonly shared = new Map<string, unknown>()
  /** Commands queued per host, sent with the host's next command or at the end of the phase. */
  readonly batches = new Map<string, QueuedCommand[]>()
  /** What `ctx.onAbort()` registered, run on a second Ctrl-C. */
  readonly abortHandlers: AbortHandlerEntry[] = []
  /** Set once the run was ended from outside (a second Ctrl-C): later events are dropped. */
  private silenced = false
  /** Tar archives of uploaded directories, made once per run and shared by every host. */
  private readonly archives = new Map<string, Promise<string>>()
  private readonly archiveBytes = new Map<string, Promise<Buffer>>()
  private archiveDir?: Promise<string>

  constructor(
    readonly registry: Registry,
    /** Every host the run selected. */
    readonly hosts: Host[],
    private readonly options: {
      runId: string
      overrides: Map<string, unknown>
      transportFor: TransportFactory
      /** In a dry run: the real transport that read-only commands run on (none: offline). */
      readTransportFor?: TransportFactory
      localTransportFor: TransportFactory
      sink: EventSink
      secrets?: SecretRegistry
      signal?: AbortSignal
      dryRun?: boolean
    },
  ) {
    this.secrets = options.secrets ?? new SecretRegistry()
    for (const value of registry.secretValues) this.secrets.add(value)
  }

  readonly secrets: SecretRegistry

  get runId(): string {
    return this.options.runId
  }

  get signal(): AbortSignal | undefined {
    return this.options.signal
  }

  get dryRun(): boolean {
    return this.options.dryRun ?? false
  }

  /** Emits an event with secrets masked in every string field (`force`: even once silenced). */
  emit(event: EventInput, force = false): void {
    if (this.silenced && !force) return
    // maskDeep returns a fresh object: stamp it in place (a command printing a million lines emits
    // a million events; every copy counts).
    const masked = maskDeep(event, this.mask) as RunEvent
    masked.time = Date.now()
    masked.runId = this.runId
    for (const tap of this.taps) tap(masked)
    this.options.sink(masked)
  }

  private readonly taps = new Set<(event: RunEvent) => void>()

  /** Sees every event emitted from now on (as sent: masked), until the returned function is called. */
  tap(listener: (event: RunEvent) => void): () => void {
    this.taps.add(listener)
    return () => this.taps.delete(listener)
  }

  private readonly mask = (text: string): string => this.secrets.redact(text)

  /** Drops every later event except forced ones: the run is being ended from outside (stopped at once). */
  silence(): void {
    this.silenced = true
  }

  configFor(host: Host): HostConfig {
    let config = this.hostConfigs.get(host.alias)
    if (!config) {
      // A lazy value receives the context of the task of this host that reads it first.
      const lazyContext = () => {
        const running = taskContextStorage.getStore()
        return running?.host.alias === host.alias ? running : undefined
      }
      config = this.registry.hostConfig(host, this.options.overrides, (value) => this.secrets.add(value), { lazyContext })
      this.hostConfigs.set(host.alias, config)
    }
    return config
  }

  transportFor(host: Host): Transport {
    let transport = this.transports.get(host.alias)
    if (!transport) {
      transport = this.options.transportFor(host)
      this.transports.set(host.alias, transport)
    }
    return transport
  }

  /** In a dry run, the real transport for `host`'s read-only commands; undefined offline or in a real run. */
  readTransportFor(host: Host): Transport | undefined {
    if (!this.options.readTransportFor) return undefined
    let transport = this.readTransports.get(host.alias)
    if (!transport) {
      transport = this.options.readTransportFor(host)
      this.readTransports.set(host.alias, transport)
    }
    return transport
  }

  /** A transport that runs on this machine, on behalf of `host` (runLocally). */
  localTransportFor(host: Host): Transport {
    let transport = this.localTransports.get(host.alias)
    if (!transport) {
      transport = this.options.localTransportFor(host)
      this.localTransports.set(host.alias, transport)
    }
    return transport
  }

  /**
   * Drops every queued command that was not sent (the run failed or ended before it went): the
   * step that queued each one is told it never ran, with `reason`.
   */
  dropQueued(reason: (queued: QueuedCommand, host: string) => unknown, only?: string): void {
    const batches = [...this.batches.entries()].filter(([host]) => only === undefined || host === only)
    for (const [host] of batches) this.batches.delete(host)
    for (const [host, batch] of batches) for (const queued of batch) queued.owner?.settle(reason(queued, host))
  }

  /** The failure handler of this run, once it began (see RunSummary.recovery). */
  recovery: RunSummary['recovery']

  /** Hosts that failed and were left out of the run (`--max-fail`), in the order they failed. */
  readonly leftOut: LeftOutHost[] = []

  /** What `run:end` tells about the run of `task` (how it ended is on the event itself). */
  summary(task: string): RunSummary {
    const leftOut = this.leftOut.length > 0 ? [...this.leftOut] : undefined
    return { task, hosts: this.hosts.map((host) => host.alias), dryRun: this.dryRun, recovery: this.recovery, leftOut }
  }

  /** Round trips so far, per host alias. */
  roundTrips(): Record<string, number> {
    const counts: Record<string, number> = {}
    for (const host of this.hosts) counts[host.alias] = this.transports.get(host.alias)?.roundTrips ?? 0
    return counts
  }

  roundTripsOf(host: Host): number {
    return this.transports.get(host.alias)?.roundTrips ?? 0
  }

  /** A tar archive of `directory` (made on first use, then reused by every host of the run). */
  archiveOf(directory: string, exclude: string[] = []): Promise<string> {
    const key = JSON.stringify([directory, exclude])
    let archive = this.archives.get(key)
    if (!archive) {
      this.archiveDir ??= mkdtemp(join(tmpdir(), 'deployfile-upload-'))
      archive = this.archiveDir.then(async (dir) => {
        const file = join(dir, `${this.archives.size}.tar`)
        await createTarArchive(directory, file, { exclude })
        return file
      })
      this.archives.set(key, archive)
    }
    return archive
  }

  /** The bytes of an archive of archiveOf(), read once for every host that sends it as bytes. */
  bytesOf(archive: string): Promise<Buffer> {
    let bytes = this.archiveBytes.get(archive)
    if (!bytes) {
      bytes = readFile(archive)
      this.archiveBytes.set(archive, bytes)
    }
    return bytes
  }

  /** Closes every connection the run opened, and removes its temporary archives. */
  async close(): Promise<void> {
    const all = [...this.transports.values(), ...this.localTransports.values(), ...this.readTransports.values()]
    this.readTransports.clear()
    this.transports.clear()
    this.localTransports.clear()
    await Promise.allSettled(all.map((t) => t.close()))
    this.archiveBytes.clear()
    if (this.archiveDir) await rm(await this.archiveDir, { recursive: true, force: true })
  }

  /** Typed read of a global (not host-level) value known to the run. */
  globalValue<K extends ConfigKey>(key: K): unknown {
    return this.options.overrides.get(key) ?? this.registry.config.get(key)
  }
}

function maskDeep(value: unknown, mask: (text: string) => string): unknown {
  if (typeof value === 'string') return mask(value)
  if (Array.isArray(value)) return value.map((item) => maskDeep(item, mask))
  if (value && typeof value === 'object') {
    const copy: Record<string, unknown> = {}
    for (const key of Object.keys(value)) copy[key] = maskDeep((value as Record<string, unknown>)[key], mask)
    return copy
  }
  return value
}
