/**
 * The state of the terminal view as a pure function of the run events: which steps are listed
 * (and where), how each host is doing in each, the messages under them, the recovery group.
 * `reduceRunView(view, event)` returns a new view (or `view` itself when the event changes
 * nothing), so it is tested with lists of events and no terminal; `listr.ts` only draws it.
 * Colours, text and timing belong to the renderer: nothing here formats.
 */
import type { BatchEvent, ErrorInfo, LogEvent, PlannedStep, RecoveryEvent, RunEndEvent, RunEvent, RunStartEvent, StepEndEvent, StepStartEvent, TransferEvent } from '../model/events.js'

/** Where a step or a host stands. `not-run`: the run ended or failed before it began. */
export type RowState = 'waiting' | 'running' | 'ok' | 'failed' | 'not-run'

/** One host's part in a step. */
export interface HostRow {
  host: string
  /** Event time the host began the step. */
  started: number
  /** Its `step:end`, once it ended. */
  end?: StepEndEvent
  /** The run ended while the host was still in the step (interrupted, never reported). */
  stopped?: boolean
  /** A failure found after the host ended the step: a command it queued failed later. */
  blamed?: ErrorInfo
  /** The last line the host printed while running the step (default verbosity). */
  output?: string
  /** An upload or download going on. */
  transfer?: Pick<TransferEvent, 'direction' | 'bytes' | 'totalBytes'>
}

/** One step of the plan as listed. */
export interface StepRow {
  /** `step:<index>`, `recovery:<index>`, or `task:<name>:<n>` for a step without an index. */
  key: string
  planned: PlannedStep
  recovery: boolean
  state: RowState
  /** Event time of the first host's start. */
  started?: number
  /** Hosts in the order they began (or ended) the step. */
  hosts: HostRow[]
  ends: StepEndEvent[]
  /** Messages (`info()`, `warning()`) the step's task printed, drawn under it. */
  messages: LogEvent[]
  /** A failure put on the step after it ended fine (a command it queued failed later). */
  blamed?: ErrorInfo
}

/** The failure handler (fail hooks, rollback) as a group of its own under the steps. */
export interface RecoveryGroup {
  start: RecoveryEvent
  end?: RecoveryEvent
  steps: StepRow[]
  /** Messages of hidden recovery steps (a revert's "switched back"). */
  messages: LogEvent[]
}

/** Everything the terminal view shows. */
export interface RunView {
  /** 0: hidden steps left out; 1: hidden steps listed; 2: debug messages too. */
  verbosity: number
  run?: RunStartEvent
  /** Every planned step is hidden (dep run, dep releases): they are listed, an empty tree says nothing. */
  allHidden: boolean
  steps: StepRow[]
  recovery?: RecoveryGroup
  /** Ends of steps kept out of view, in case another host fails the step and brings it in. */
  unseen: Record<string, StepEndEvent[]>
  /** A rolling deploy's batches so far: the latest event of each (`batch:start`, then `batch:end`), by index. */
  batches: BatchEvent[]
  end?: RunEndEvent
}

/** The view before the run starts. */
export function emptyRunView(verbosity: number): RunView {
  return { verbosity, allHidden: false, steps: [], unseen: {}, batches: [] }
}

/** Every step listed: the plan's, then the recovery's. */
export function allRows(view: RunView): StepRow[] {
  return view.recovery ? [...view.steps, ...view.recovery.steps] : view.steps
}

/** Every host of the step ended it (one end for a step planned on no host). */
export function stepEnded(row: StepRow): boolean {
  return row.ends.length >= Math.max(1, row.planned.hosts.length)
}

const problem = (end: StepEndEvent) => end.status === 'failed' || end.status === 'warning'

/** The next view after `event`; `view` itself when the event changes nothing (a log line with nowhere to go). */
export function reduceRunView(view: RunView, event: RunEvent): RunView {
  switch (event.type) {
    case 'run:start': {
      // A task made only of hidden steps (dep run, dep releases) shows them.
      const allHidden = event.steps.every((step) => step.hidden || step.hosts.length === 0)
      const next: RunView = { ...view, run: event, allHidden }
      return { ...next, steps: event.steps.flatMap((planned, index) => (shown(next, planned) ? [newRow(`step:${index}`, planned, false)] : [])) }
    }
    case 'step:start':
      return onStepStart(view, event)
    case 'step:end':
      return onStepEnd(view, event)
    case 'command:output':
      if (view.verbosity >= 1 || !event.text.trim()) return view
      return updateRunningHost(view, event.host, (host) => ({ ...host, output: event.text.slice(0, 400) }))
    case 'transfer':
      return updateRunningHost(view, event.host, (host) => ({
        ...host,
        transfer: event.done ? undefined : { direction: event.direction, bytes: event.bytes, totalBytes: event.totalBytes },
      }))
    case 'log':
      if (event.level === 'debug' && view.verbosity < 2) return view
      return addMessage(view, event)
    case 'recovery:start': {
      // A recovery of one host alone (--max-fail): its steps run there only, and the run carries on.
      const only = event.host
      const planned = (view.run?.recoverySteps ?? []).map((step) => (only === undefined ? step : { ...step, hosts: step.hosts.length > 0 ? [only] : [] }))
      const steps = planned.flatMap((step, index) => (shown(view, step) ? [newRow(`recovery:${index}`, step, true)] : []))
      return { ...view, steps: only === undefined ? view.steps.map(skipWaiting) : view.steps, recovery: { start: event, steps, messages: [] } }
    }
    case 'batch:start':
    case 'batch:end': {
      const batches = [...view.batches]
      batches[event.index] = event
      return { ...view, batches }
    }
    case 'recovery:end':
      if (!view.recovery) return view
      return { ...view, recovery: { ...view.recovery, end: event, steps: view.recovery.steps.map(skipWaiting) } }
    case 'run:end':
      return onRunEnd(view, event)
    default:
      return view
  }
}

function newRow(key: string, planned: PlannedStep, recovery: boolean): StepRow {
  return { key, planned, recovery, state: 'waiting', hosts: [], ends: [], messages: [] }
}

function shown(view: RunView, planned: PlannedStep): boolean {
  return planned.hosts.length > 0 && (!planned.hidden || view.allHidden || view.verbosity >= 1)
}

function skipWaiting(row: StepRow): StepRow {
  return row.state === 'waiting' ? { ...row, state: 'not-run' } : row
}

/** The view with `row` (found by key, in the plan's steps or the recovery's) replaced. */
function withRow(view: RunView, row: StepRow): RunView {
  const replace = (rows: StepRow[]) => rows.map((r) => (r.key === row.key ? row : r))
  if (row.recovery && view.recovery) return { ...view, recovery: { ...view.recovery, steps: replace(view.recovery.steps) } }
  return { ...view, steps: replace(view.steps) }
}

function withHost(row: StepRow, host: string, time: number, change: (host: HostRow) => HostRow): StepRow {
  const existing = row.hosts.find((h) => h.host === host)
  if (!existing) return { ...row, hosts: [...row.hosts, change({ host, started: time })] }
  return { ...row, hosts: row.hosts.map((h) => (h === existing ? change(h) : h)) }
}

type StepEvent = StepStartEvent | StepEndEvent

/** The row a step event belongs to, and the view with it (a row is added for a step not yet listed); undefined when kept out of view. */
function rowFor(view: RunView, event: StepEvent): { view: RunView; row: StepRow; added: boolean } | undefined {
  const key = event.index === undefined ? undefined : `${event.recovery ? 'recovery' : 'step'}:${event.index}`
  const rows = allRows(view)
  const known = key ? rows.find((r) => r.key === key) : rows.find((r) => r.planned.task === event.task && r.recovery === (event.recovery === true) && !stepEnded(r))
  if (known) return { view, row: known, added: false }
  const plan = event.recovery ? view.run?.recoverySteps : view.run?.steps
  const planned: PlannedStep = (event.index !== undefined ? plan?.[event.index] : undefined) ?? { task: event.task, hosts: [event.host], hidden: event.hidden }
  // A step kept out of the view (hidden) comes in only when something went wrong in it.
  if (!shown(view, planned) && !(event.type === 'step:end' && problem(event))) return undefined
  const row = newRow(key ?? `task:${event.task}:${rows.length}`, planned, event.recovery === true)
  // Before the first step still waiting: where it ran.
  const insert = (list: StepRow[]) => {
    const at = list.findIndex((r) => r.state === 'waiting')
    return at === -1 ? [...list, row] : [...list.slice(0, at), row, ...list.slice(at)]
  }
  const next = event.recovery && view.recovery ? { ...view, recovery: { ...view.recovery, steps: insert(view.recovery.steps) } } : { ...view, steps: insert(view.steps) }
  return { view: next, row, added: true }
}

function onStepStart(view: RunView, event: StepStartEvent): RunView {
  const found = rowFor(view, event)
  if (!found) return view
  const row = found.row
  const started: StepRow = { ...row, started: row.started ?? event.time, state: row.state === 'waiting' ? 'running' : row.state }
  return withRow(found.view, withHost(started, event.host, event.time, (host) => ({ ...host, started: event.time })))
}

const unseenKey = (event: StepEndEvent) => `${event.recovery ? 'recovery' : 'step'}:${event.index ?? event.task}`

function onStepEnd(view: RunView, event: StepEndEvent): RunView {
  const found = rowFor(view, event)
  const key = unseenKey(event)
  if (!found) return { ...view, unseen: { ...view.unseen, [key]: [...(view.unseen[key] ?? []), event] } }
  let row = found.row
  let next = found.view
  if (found.added && view.unseen[key]) {
    // Just brought into view: the hosts that ended it earlier first.
    for (const earlier of view.unseen[key]) row = recordEnd(row, earlier)
    next = { ...next, unseen: Object.fromEntries(Object.entries(view.unseen).filter(([k]) => k !== key)) }
  }
  return withRow(next, recordEnd(row, event))
}

function recordEnd(row: StepRow, event: StepEndEvent): StepRow {
  const ended = withHost({ ...row, ends: [...row.ends, event] }, event.host, event.time - event.durationMs, (host) => ({
    ...host,
    end: event,
    output: undefined,
    transfer: undefined,
  }))
  if (!stepEnded(ended)) return { ...ended, state: 'running' }
  return { ...ended, state: ended.ends.some((e) => e.status === 'failed') ? 'failed' : 'ok' }
}

/** Changes the first listed step `host` is running (output and transfers go there). */
function updateRunningHost(view: RunView, alias: string, change: (host: HostRow) => HostRow): RunView {
  const row = allRows(view).find((r) => r.hosts.some((h) => h.host === alias && !h.end))
  if (!row) return view
  return withRow(view, { ...row, hosts: row.hosts.map((h) => (h.host === alias && !h.end ? change(h) : h)) })
}

/**
 * Puts a task's message under the step that printed it: the listed step running `task` on the
 * host (else its latest), or for a hidden recovery step, under the recovery group. The view is
 * returned unchanged when there is no such place (the engine's own messages): they go above.
 */
function addMessage(view: RunView, event: LogEvent): RunView {
  const { task, host } = event
  if (!task || !host) return view
  const candidates = allRows(view).filter((r) => r.planned.task === task && (r.hosts.some((h) => h.host === host) || r.planned.hosts.includes(host)))
  const row = candidates.find((r) => r.hosts.some((h) => h.host === host && !h.end)) ?? candidates.at(-1)
  if (row) return withRow(view, { ...row, messages: [...row.messages, event] })
  if (view.recovery && view.run?.recoverySteps?.some((p) => p.task === task)) {
    return { ...view, recovery: { ...view.recovery, messages: [...view.recovery.messages, event] } }
  }
  return view
}

/**
 * A queued command fails in a later round trip than the step that queued it, which had ended
 * fine: the failure is put back on that step, in place.
 */
function blameQueuedFailure(view: RunView, error: ErrorInfo | undefined): RunView {
  if (!error?.task || !error.host) return view
  const row = [...view.steps].reverse().find((r) => r.planned.task === error.task && r.hosts.some((h) => h.host === error.host))
  if (!row || row.state === 'failed') return view
  const blamed = withHost(row, error.host, 0, (host) => ({ ...host, blamed: error }))
  return withRow(view, { ...blamed, blamed: error, state: 'failed' })
}

function onRunEnd(view: RunView, event: RunEndEvent): RunView {
  // A step still open (an interrupted host that never reported) is closed as it stands.
  const close = (row: StepRow): StepRow => {
    if (row.state !== 'running') return skipWaiting(row)
    const hosts = row.hosts.map((h) => (h.end ? h : { ...h, stopped: true, output: undefined, transfer: undefined }))
    const failed = row.ends.length === 0 || row.ends.some((e) => e.status === 'failed')
    return { ...row, hosts, state: failed ? 'failed' : 'ok' }
  }
  const blamed = blameQueuedFailure(view, event.error)
  return {
    ...blamed,
    end: event,
    steps: blamed.steps.map(close),
    recovery: blamed.recovery && { ...blamed.recovery, steps: blamed.recovery.steps.map(close) },
  }
}

/** The row the batch lines of a rolling deploy go under: the first listed 'switch' step. */
export function batchRowKey(view: RunView): string | undefined {
  return view.batches.length > 0 ? view.steps.find((r) => r.planned.phase === 'switch')?.key : undefined
}

/** The hosts listed under a step: while it runs, or once it ended with a problem on one of them. */
export function hostsShown(row: StepRow): boolean {
  if (row.planned.hosts.length <= 1) return false
  if (row.state === 'running' || row.state === 'waiting') return true
  return row.hosts.some((h) => h.stopped || h.blamed || (h.end && problem(h.end)))
}
