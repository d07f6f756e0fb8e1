import type { Phase } from './task.js'

/** Fields every run event carries. */
export interface EventBase {
  /** Milliseconds since the Unix epoch. */
  time: number
  /** The run's id (also written into the deploy lock). */
  runId: string
}

/** One step of the plan as `run:start` announces it. */
export interface PlannedStep {
  task: string
  /** Hosts the step runs on (empty: the step is skipped). */
  hosts: string[]
  phase?: Phase
  /** The task is hidden (recipe internals, anonymous hooks): reporters keep it out of the default view. */
  hidden?: boolean
  /** The task runs on one host only. */
  once?: boolean
}

/** The run began. */
export interface RunStartEvent extends EventBase {
  type: 'run:start'
  task: string
  hosts: string[]
  /** The steps in order; `step:*` events point into this list with `index`. */
  steps: PlannedStep[]
  /** Steps of the top-level task's `fail` hook, run only when something fails (`index` of recovery steps points here). */
  recoverySteps?: PlannedStep[]
  dryRun: boolean
  /**
   * Set for `--strategy rolling`: the hosts of each batch, in order. The 'switch' and
   * 'post-switch' steps run batch by batch (`batch:start`/`batch:end`, `batch` on step events).
   */
  batches?: string[][]
  /** With `batches`: the first batch is a canary (`--canary`). */
  canary?: boolean
  /** With `batches`: most hosts that may fail and be left out while the others carry on (`--max-fail`). */
  maxFail?: number
}

/** A host that failed and was left out of the run (`--max-fail`): undone on its own, it stays on what it served. */
export interface LeftOutHost {
  host: string
  /** The task that failed there. */
  task: string
  /** Why, in one line (masked). */
  message: string
  /** What its recovery said on it (the fail hook's warnings: e.g. the release it stays on). */
  notes?: string[]
}

/**
 * What a run was and how its recovery went, carried by `run:end` so that no reporter has to
 * track it from earlier events (the closing status line needs all of it).
 */
export interface RunSummary {
  /** The task run (as `run:start` named it). */
  task: string
  /** Every host the run selected, in order. */
  hosts: string[]
  dryRun: boolean
  /**
   * Set when the failure handler (fail hooks, rollback) began: the phase of the failure that
   * started it, and whether it ended with every step done (false while it never finished).
   */
  recovery?: { phase?: Phase; ok: boolean }
  /**
   * Hosts that failed and were left out of the run by `--max-fail`, each undone on its own
   * while the others carried on (status `partial`, unless something worse happened).
   */
  leftOut?: LeftOutHost[]
}

/** The run ended; `status` says how. */
export interface RunEndEvent extends EventBase {
  type: 'run:end'
  /** `partial`: every host but those `summary.leftOut` names went live (`--max-fail`). */
  status: 'success' | 'partial' | 'failed' | 'rollback-failed' | 'interrupted'
  exitCode: number
  durationMs: number
  /** Round trips per host over the whole run. */
  roundTrips: Record<string, number>
  /** What ran, on which hosts, and how the recovery went. */
  summary: RunSummary
  /** The first failure (masked). */
  error?: ErrorInfo
  /**
   * Every failure, `error` first, when several hosts failed before any step ran
   * (hosts that could not be reached): one per host, each naming only its host.
   */
  errors?: ErrorInfo[]
  /** Failures of the recovery itself (fail hooks, rollback): with them, status is `rollback-failed`. */
  recoveryErrors?: ErrorInfo[]
  /** Failures of best-effort `finish` steps: the deploy stays live. */
  warnings?: ErrorInfo[]
}

/** A step began on one host. */
export interface StepStartEvent extends EventBase {
  type: 'step:start'
  task: string
  host: string
  phase?: Phase
  /** True for steps of a failure handler (fail hooks, rollback). */
  recovery?: boolean
  /** The task is hidden (recipe internals, anonymous hooks). */
  hidden?: boolean
  /** Position of the step in `run:start` `steps` (or `recoverySteps` when `recovery`). */
  index?: number
  /** For a rolling deploy's 'switch' and 'post-switch' steps: the batch (position in `run:start` `batches`). */
  batch?: number
}

/** A step ended on one host. */
export interface StepEndEvent extends EventBase {
  type: 'step:end'
  task: string
  host: string
  phase?: Phase
  recovery?: boolean
  hidden?: boolean
  index?: number
  batch?: number
  status: 'ok' | 'failed' | 'skipped' | 'warning'
  durationMs: number
  /** Round trips this step made on the host. */
  roundTrips: number
  /**
   * Commands the step queued (`ctx.queue()`): they ran, and took their time, in the round trip of
   * the step named by `sentBy`, so `durationMs` is only the step's own body.
   */
  queued?: number
  /** The step whose round trip carried the queued commands (the last one, when several did). */
  sentBy?: string
  error?: ErrorInfo
}

/** A command is about to run on a host (`text` has secrets masked). */
export interface CommandStartEvent extends EventBase {
  type: 'command:start'
  host: string
  task?: string
  command: string
  local?: boolean
}

/** A chunk of command output (masked). */
export interface CommandOutputEvent extends EventBase {
  type: 'command:output'
  host: string
  task?: string
  stream: 'stdout' | 'stderr'
  /** One line of output, without its newline (masked). */
  text: string
  /**
   * True when `text` is a piece of a line too long to pass on whole (over 64 KiB): the line goes
   * on in the next output event of the same stream.
   */
  partial?: boolean
}

/** A command finished. */
export interface CommandEndEvent extends EventBase {
  type: 'command:end'
  host: string
  task?: string
  exitCode: number | null
  durationMs: number
}

/** A message from a task (`info()`, `warning()`) or the engine. */
export interface LogEvent extends EventBase {
  type: 'log'
  level: 'info' | 'warning' | 'error' | 'debug'
  host?: string
  task?: string
  message: string
}

/** Bytes moved by an upload or download. */
export interface TransferEvent extends EventBase {
  type: 'transfer'
  host: string
  task?: string
  direction: 'upload' | 'download'
  path: string
  bytes: number
  totalBytes?: number
  done: boolean
}

/** A failure handler began or ended: fail hooks, fleet-wide discard or rollback. */
export interface RecoveryEvent extends EventBase {
  type: 'recovery:start' | 'recovery:end'
  /** What failed and in which phase. */
  phase?: Phase
  failedTask: string
  failedHost: string
  /** The run was interrupted (Ctrl-C, SIGTERM): no task failed. */
  interrupted?: boolean
  ok?: boolean
  /**
   * Set when the recovery ran on this host alone: it failed and is left out of the run
   * (`--max-fail`) while the other hosts carry on.
   */
  host?: string
}

/** A batch of a rolling deploy began or ended its 'switch' and 'post-switch' steps. */
export interface BatchEvent extends EventBase {
  type: 'batch:start' | 'batch:end'
  /** Position in `run:start` `batches` (0: the first, the canary with `--canary`). */
  index: number
  /** How many batches there are. */
  of: number
  hosts: string[]
  /** The canary batch. */
  canary?: boolean
  /** On `batch:end`: `failed` when a host of the batch failed (left out, or the run stops). */
  status?: 'ok' | 'failed'
}

/** The deploy lock was taken or released on a host (emitted by recipes). */
export interface LockEvent extends EventBase {
  type: 'lock:taken' | 'lock:released' | 'lock:held'
  host: string
  owner?: string
}

/**
 * The release a host moves to in this run, once known (emitted by recipes): a deploy's new release
 * with the revision it holds, or the release `dep rollback` goes back to.
 */
export interface ReleaseEvent extends EventBase {
  type: 'release'
  host: string
  task?: string
  /** The release's name (its directory under releases/). */
  release: string
  /** The revision (commit) the release holds, when known. */
  revision?: string
  /** The release the host served before this run, when it served one. */
  previous?: string
}

/** Plain description of an error inside events. */
export interface ErrorInfo {
  name: string
  message: string
  hint?: string
  host?: string
  task?: string
  command?: string
  exitCode?: number | null
  /** The last lines of the command's stderr. */
  stderr?: string
  /** The last lines of the command's stdout (each stream under its own name). */
  stdout?: string
  /** `file:line:column` of the code that threw, for an exception in a task or deployfile. */
  location?: string
}

/** Every event a run emits. Reporters consume these and nothing else. */
export type RunEvent =
  | RunStartEvent
  | RunEndEvent
  | StepStartEvent
  | StepEndEvent
  | CommandStartEvent
  | CommandOutputEvent
  | CommandEndEvent
  | LogEvent
  | TransferEvent
  | RecoveryEvent
  | BatchEvent
  | LockEvent
  | ReleaseEvent

/**
 * What `--json` prints instead of run events when the command fails before a
 * run starts (a broken deployfile, an unknown task or host, a bad option).
 */
export interface CliErrorEvent {
  type: 'error'
  time: number
  exitCode: number
  error: ErrorInfo
}

/** Any line `dep --json` writes on stdout. */
export type JsonLine = RunEvent | CliErrorEvent

/** Distributive Omit over the union. */
export type EventInput = RunEvent extends infer E ? (E extends RunEvent ? Omit<E, 'time' | 'runId'> : never) : never

/** Receives run events. */
export type EventSink = (event: RunEvent) => void
