/**
 * The terminal view: a listr2 task tree of the plan, fed only by run events.
 *
 * listr2 normally runs the tasks itself; here the executor runs them, so the
 * view creates listr2 tasks without running them and sets their state, title
 * and messages from events, and listr2's default renderer draws the tree
 * (spinners, ✔/✖, subtasks, error messages). A task's messages (info(),
 * warning()) stay under the step that printed them, so the final screen reads
 * in order; with -v every command and its output is printed above the tree.
 */
import {
  DefaultRenderer,
  figures,
  Listr,
  ListrDefaultRendererLogLevels,
  ListrEventManager,
  ListrLogger,
  ListrTaskState,
  ProcessOutput,
  type ListrDefaultRendererOptions,
} from 'listr2'
import type { ErrorInfo, PlannedStep, RunEndEvent, RunEvent, StepEndEvent, StepStartEvent } from '../model/events.js'
import {
  colorHost,
  colorsFor,
  commandLines,
  formatBytes,
  formatDuration,
  lastLines,
  plural,
  runSummary,
  timingText,
  lockLine,
  recoveryLine,
} from './format.js'

/** Options of the terminal view. */
export interface ListrReporterOptions {
  /** 0: the tree; 1 (-v): commands and output above it, hidden steps in it; 2 (-vv): exit codes, debug messages. */
  verbosity: number
  color: boolean
  /** A TTY (default process.stdout). */
  stdout?: NodeJS.WriteStream
  /** Where the closing failure report goes (default process.stderr). */
  stderr?: NodeJS.WriteStream
}

type ViewTask = Listr['tasks'][number]

interface HostView {
  alias: string
  /** The host's subtask (steps on several hosts); a one-host step shows its host on the step itself. */
  task?: ViewTask
  started: number
  ended: boolean
  transfer?: string
  /** The last line the host printed in this step (the output bar under its task). */
  output?: string
}

interface StepView {
  key: string
  planned: PlannedStep
  task: ViewTask
  /** The list the step's host subtasks are made in. */
  hostList?: Listr
  hosts: Map<string, HostView>
  started?: number
  ends: StepEndEvent[]
  recovery: boolean
  /** The title's suffix as last set (timing, warning), so messages can be added below it. */
  suffix: string
  /** Messages the step's task printed (`[host] text`), drawn under its title. */
  messages: string[]
}

const ABOVE_FLUSH_MS = 40
const TICK_MS = 1000

/** Creates the view; `close()` stops drawing (also when a run never ended). */
export function createListrReporter(options: ListrReporterOptions): { sink: (event: RunEvent) => void; close: () => Promise<void> } {
  const stdout = options.stdout ?? process.stdout
  const stderr = options.stderr ?? process.stderr
  const { verbosity, color } = options
  const c = colorsFor(color)
  const processOutput = new ProcessOutput(stdout, stderr, { dump: ['stdout', 'stderr'], leaveEmptyLine: false })
  const rendererOptions: ListrDefaultRendererOptions = {
    collapseSubtasks: false,
    collapseErrors: false,
    showErrorMessage: true,
    collapseSkips: true,
    showSkipMessage: true,
    formatOutput: 'wrap',
    removeEmptyLines: true,
    logger: new ListrLogger({ useIcons: true, toStderr: [], processOutput }),
    icon: {
      [ListrDefaultRendererLogLevels.FAILED_WITH_FAILED_SUBTASKS]: figures.cross,
      [ListrDefaultRendererLogLevels.SKIPPED_WITH_COLLAPSE]: figures.squareSmallFilled,
      [ListrDefaultRendererLogLevels.ROLLED_BACK]: '↺',
    },
    color: color
      ? { [ListrDefaultRendererLogLevels.SKIPPED_WITH_COLLAPSE]: c.dim, [ListrDefaultRendererLogLevels.ROLLED_BACK]: c.yellow }
      : Object.fromEntries(Object.values(ListrDefaultRendererLogLevels).map((level) => [level, (text?: string) => text ?? ''])),
  }
  const listOptions = { renderer: 'default' as const, rendererOptions, exitOnError: false, registerSignalListeners: false }
  const root = new Listr([], listOptions)
  // The renderer draws on its spinner's tick (every 100 ms), not on every state change: drawing
  // synchronously inside each event would slow the run itself down.
  const renderer = new DefaultRenderer(root.tasks as never, rendererOptions, new ListrEventManager())

  let drawing = false
  let ended = false
  let runTask = ''
  let hostCount = 0
  let recoveryPhase: string | undefined
  let recovered = false
  let recoveryGroup: { task: ViewTask; list: Listr; title: string; messages: string[] } | undefined
  let recoveryPlan: PlannedStep[] = []
  let plannedSteps: PlannedStep[] = []
  let allHidden = false
  const steps = new Map<string, StepView>()
  let ticker: NodeJS.Timeout | undefined

  // ---- lines above the tree -------------------------------------------------------------
  let above: string[] = []
  let aboveTimer: NodeJS.Timeout | undefined
  const flushAbove = () => {
    if (aboveTimer) clearTimeout(aboveTimer)
    aboveTimer = undefined
    if (above.length === 0) return
    const lines = above
    above = []
    if (!drawing) {
      processOutput.toStdout(lines.join('\n'))
      return
    }
    // Erase the tree, print the lines where it was, draw it again below them.
    const updater = (renderer as unknown as { updater?: { clear?: () => void } }).updater
    updater?.clear?.()
    processOutput.toStdout(lines.join('\n'))
    renderer.update()
  }
  const print = (line: string) => {
    above.push(line)
    if (!aboveTimer) aboveTimer = setTimeout(flushAbove, ABOVE_FLUSH_MS)
  }
  const prefix = (host: string) => `[${colorHost(host, color)}]`

  // ---- tasks ------------------------------------------------------------------------------
  const make = (list: Listr, title: string, at?: number): ViewTask => {
    list.add({ title, task: () => undefined })
    const task = list.tasks.pop()!
    list.tasks.splice(at ?? list.tasks.length, 0, task)
    // Enabled now, not after check()'s promise: a task made and finished in one tick must still be drawn.
    ;(task as unknown as { enabled: boolean }).enabled = true
    return task
  }
  const setState = (task: ViewTask, state: ListrTaskState) => {
    task.state$ = state
  }
  const stepTitle = (planned: PlannedStep, suffix = '') => {
    const notes = [planned.hidden && !allHidden ? 'hidden' : '', planned.once && hostCount > 1 ? `once, on ${planned.hosts[0]}` : ''].filter(Boolean)
    return `${planned.task}${notes.length ? c.dim(` (${notes.join(', ')})`) : ''}${suffix ? ` ${suffix}` : ''}`
  }
  /** A title with the messages printed under it (listr2 indents a title's further lines under it). */
  const withMessages = (title: string, messages: string[]) => (messages.length ? `${title}\n${messages.join('\n')}` : title)
  const setStepTitle = (view: StepView, suffix = '') => {
    view.suffix = suffix
    view.task.title$ = withMessages(stepTitle(view.planned, suffix), view.messages)
  }
  const shown = (planned: PlannedStep) => planned.hosts.length > 0 && (!planned.hidden || allHidden || verbosity >= 1)

  /** The tasks for a step (waiting), in `list`, before `at` when given. */
  const addStep = (key: string, planned: PlannedStep, list: Listr, recovery: boolean, at?: number): StepView => {
    const view: StepView = { key, planned, task: make(list, stepTitle(planned), at), hosts: new Map(), ends: [], recovery, suffix: '', messages: [] }
    steps.set(key, view)
    return view
  }
  /** Where a step that was not planned into the view (a hidden step that failed) goes: before the first waiting one. */
  const insertionPoint = (list: Listr) => {
    const index = list.tasks.findIndex((t) => t.state === ListrTaskState.WAITING)
    return index === -1 ? list.tasks.length : index
  }

  const stepFor = (event: StepStartEvent | StepEndEvent): StepView | undefined => {
    const key = event.index === undefined ? undefined : `${event.recovery ? 'recovery' : 'step'}:${event.index}`
    if (key && steps.has(key)) return steps.get(key)
    if (!key) {
      // Events without an index: the first unfinished step of that name.
      for (const view of steps.values()) if (view.planned.task === event.task && view.recovery === (event.recovery === true) && view.ends.length < Math.max(1, view.planned.hosts.length)) return view
    }
    const planned: PlannedStep =
      (event.index !== undefined ? (event.recovery ? recoveryPlan : plannedSteps)[event.index] : undefined) ?? { task: event.task, hosts: [event.host], hidden: event.hidden }
    // A step kept out of the view (hidden) comes in only when something went wrong in it.
    if (!shown(planned) && !(event.type === 'step:end' && event.status !== 'ok' && event.status !== 'skipped')) return undefined
    const list = event.recovery && recoveryGroup ? recoveryGroup.list : root
    return addStep(key ?? `task:${event.task}:${steps.size}`, planned, list, event.recovery === true, insertionPoint(list))
  }
  const hostOf = (view: StepView, host: string): HostView => {
    let hv = view.hosts.get(host)
    if (!hv) {
      hv = { alias: host, started: Date.now(), ended: false }
      view.hosts.set(host, hv)
      if (view.planned.hosts.length > 1) {
        view.hostList ??= new Listr([], listOptions, view.task as never)
        hv.task = make(view.hostList, colorHost(host, color))
        view.task.subtasks = view.hostList.tasks
      }
    }
    return hv
  }

  const timing = (durationMs: number, trips: number[]) => c.dim(timingText(durationMs, trips))
  const errorText = (error: ErrorInfo | undefined, warning: boolean): string => {
    if (!error) return 'failed'
    const paint = warning ? c.yellow : c.red
    const lines = [paint(error.message)]
    if (error.location) lines.push(c.dim(`at ${error.location}`))
    const tail = lastLines(error.stderr, 5)
    if (tail.length) lines.push(...tail.map((l) => c.dim(`│ ${l}`)))
    if (error.hint) lines.push(`→ ${error.hint}`)
    return lines.join('\n')
  }

  const runningTitle = (view: StepView, hv: HostView): string => {
    const elapsed = Date.now() - hv.started
    const notes = [hv.transfer, elapsed >= 2000 ? formatDuration(Math.floor(elapsed / 1000) * 1000) : ''].filter(Boolean).join(' · ')
    return notes ? c.dim(notes) : ''
  }
  const refreshRunning = (view: StepView, hv: HostView) => {
    if (hv.ended) return
    const suffix = runningTitle(view, hv)
    if (hv.task) hv.task.title$ = `${colorHost(hv.alias, color)}${suffix ? ` ${suffix}` : ''}`
    else setStepTitle(view, suffix)
    // Again on each tick: listr2 only shows output that arrives after it first drew the task.
    if (hv.output) (hv.task ?? view.task).output$ = hv.output
  }

  const onStepStart = (event: StepStartEvent) => {
    const view = stepFor(event)
    if (!view) return
    view.started ??= event.time
    if (view.task.state === ListrTaskState.WAITING) setState(view.task, ListrTaskState.STARTED)
    const hv = hostOf(view, event.host)
    hv.started = event.time
    if (hv.task) setState(hv.task, ListrTaskState.STARTED)
  }

  /** Ends of steps kept out of the view, in case another host fails the step and brings it in. */
  const unseen = new Map<string, StepEndEvent[]>()
  const unseenKey = (event: StepEndEvent) => `${event.recovery ? 'recovery' : 'step'}:${event.index ?? event.task}`

  const onStepEnd = (event: StepEndEvent) => {
    const known = steps.size
    const view = stepFor(event)
    if (!view) {
      unseen.set(unseenKey(event), [...(unseen.get(unseenKey(event)) ?? []), event])
      return
    }
    if (steps.size > known) {
      // Just brought into view: the hosts that ended it earlier first.
      for (const earlier of unseen.get(unseenKey(event)) ?? []) recordEnd(view, earlier)
      unseen.delete(unseenKey(event))
    }
    recordEnd(view, event)
  }

  const recordEnd = (view: StepView, event: StepEndEvent) => {
    if (view.task.state === ListrTaskState.WAITING) setState(view.task, ListrTaskState.STARTED)
    view.ends.push(event)
    const hv = hostOf(view, event.host)
    hv.ended = true
    hv.transfer = undefined
    const problem = event.status === 'failed' || event.status === 'warning'
    if (hv.task) {
      hv.task.output$ = ''
      hv.task.title$ = `${colorHost(event.host, color)} ${problem && event.status === 'warning' ? c.yellow('⚠ ') : ''}${timing(event.durationMs, [event.roundTrips])}`
      if (event.status === 'failed') hv.task.message$ = { error: errorText(event.error, false) }
      setState(hv.task, event.status === 'failed' ? ListrTaskState.FAILED : ListrTaskState.COMPLETED)
    }
    if (view.ends.length < Math.max(1, view.planned.hosts.length)) return
    finishStep(view)
  }

  const finishStep = (view: StepView) => {
    const failed = view.ends.filter((e) => e.status === 'failed')
    const warned = view.ends.filter((e) => e.status === 'warning')
    const duration = Math.max(...view.ends.map((e) => e.time)) - (view.started ?? Math.min(...view.ends.map((e) => e.time - e.durationMs)))
    const trips = view.ends.map((e) => e.roundTrips)
    const hostsNote = view.planned.hosts.length > 1 ? plural(view.planned.hosts.length, 'host') : ''
    const summary = c.dim(timingText(Math.max(0, duration), trips, hostsNote))
    if (view.hostList) {
      // Hosts stay listed under a step only when something went wrong on one of them.
      if (failed.length === 0 && warned.length === 0) view.task.subtasks = []
      setStepTitle(view, summary)
    } else {
      const end = view.ends[0]
      const warning = end.status === 'warning' ? ` ${c.yellow(`⚠ ${end.error?.message ?? 'warning'}`)}` : ''
      setStepTitle(view, `${summary}${warning}`)
      if (end.status === 'failed') view.task.message$ = { error: errorText(end.error, false) }
      view.task.output$ = ''
    }
    setState(view.task, failed.length > 0 ? ListrTaskState.FAILED : ListrTaskState.COMPLETED)
  }

  /** Steps that never ran: shown dimmed, marked not run. */
  const skipWaiting = (list: Listr) => {
    for (const task of list.tasks) {
      if (task.state !== ListrTaskState.WAITING) continue
      task.message$ = { skip: c.dim(`${task.title ?? ''} — not run`) }
      setState(task, ListrTaskState.SKIPPED)
    }
  }

  /**
   * Puts a task's message under the step that printed it: the step in view running `task` on `host`
   * (the latest), else, for a hidden recovery step (deploy:revert's "switched back"), under the
   * recovery group. False when there is no such place (the engine's own messages): printed above.
   */
  const addMessage = (task: string | undefined, host: string | undefined, lines: string[]): boolean => {
    if (!task || !host) return false
    const candidates = [...steps.values()].filter((v) => v.planned.task === task && (v.hosts.has(host) || v.planned.hosts.includes(host)))
    const view = candidates.find((v) => v.hosts.get(host)?.ended === false) ?? candidates.at(-1)
    if (view) {
      view.messages.push(...lines)
      setStepTitle(view, view.suffix)
      return true
    }
    if (recoveryGroup && recoveryPlan.some((p) => p.task === task)) {
      recoveryGroup.messages.push(...lines)
      recoveryGroup.task.title$ = withMessages(recoveryGroup.title, recoveryGroup.messages)
      return true
    }
    return false
  }

  const liveOutput = (host: string, text: string) => {
    // The last line a running host printed, under its task (default verbosity; -v prints everything above).
    for (const view of steps.values()) {
      const hv = view.hosts.get(host)
      if (!hv || hv.ended) continue
      hv.output = text.slice(0, 400)
      ;(hv.task ?? view.task).output$ = hv.output
      return
    }
  }

  const onTransfer = (host: string, text: string | undefined) => {
    for (const view of steps.values()) {
      const hv = view.hosts.get(host)
      if (!hv || hv.ended) continue
      hv.transfer = text
      refreshRunning(view, hv)
      return
    }
  }

  const start = async () => {
    await renderer.render()
    drawing = true
    process.on('exit', restoreCursor)
    for (const fn of afterFirstFrame.splice(0)) fn()
    if (ended) return
    ticker = setInterval(() => {
      for (const view of steps.values()) for (const hv of view.hosts.values()) refreshRunning(view, hv)
    }, TICK_MS)
    ticker.unref()
  }
  const restoreCursor = () => {
    if (drawing) stdout.write('\u001B[?25h')
  }
  let starting: Promise<void> | undefined
  /** Changes that need the renderer up (it starts asynchronously). */
  const afterFirstFrame: Array<() => void> = []

  const stop = async () => {
    if (ended) return
    ended = true
    await starting
    if (ticker) clearInterval(ticker)
    flushAbove()
    if (drawing) {
      drawing = false
      renderer.end()
      process.off('exit', restoreCursor)
    }
  }

  /**
   * A queued command fails in a later round trip than the step that queued it, which had ended
   * fine: the failure is put back on that step, in place.
   */
  const blameQueuedFailure = (error: ErrorInfo | undefined) => {
    if (!error?.task || !error.host) return
    const view = [...steps.values()].reverse().find((v) => !v.recovery && v.planned.task === error.task && v.hosts.has(error.host!))
    if (!view || view.task.state === ListrTaskState.FAILED) return
    const hv = view.hosts.get(error.host)!
    if (hv.task) {
      hv.task.message$ = { error: errorText(error, false) }
      setState(hv.task, ListrTaskState.FAILED)
      if (view.task.subtasks.length === 0 && view.hostList) view.task.subtasks = view.hostList.tasks
    } else {
      view.task.message$ = { error: errorText(error, false) }
    }
    setState(view.task, ListrTaskState.FAILED)
  }

  const onRunEnd = async (event: RunEndEvent) => {
    blameQueuedFailure(event.error)
    // A step still open (an interrupted host that never reported) is closed as it stands.
    for (const view of steps.values()) {
      if (view.task.state !== ListrTaskState.STARTED) continue
      for (const hv of view.hosts.values()) if (hv.task?.state === ListrTaskState.STARTED) setState(hv.task, ListrTaskState.FAILED)
      if (view.ends.length > 0) finishStep(view)
      else setState(view.task, ListrTaskState.FAILED)
    }
    skipWaiting(root)
    if (recoveryGroup) skipWaiting(recoveryGroup.list)
    await stop()
    const summary = runSummary(event, { task: runTask, recoveryPhase, recovered, color, hostCount })
    if (event.status === 'success') {
      for (const line of summary.details) stdout.write(`${line}\n`)
      stdout.write(`${summary.status}\n`)
    } else {
      stderr.write('\n')
      for (const line of summary.details) stderr.write(`${line}\n`)
      stderr.write(`${summary.status}\n`)
    }
  }
  let finishing: Promise<void> | undefined

  const sink = (event: RunEvent) => {
    switch (event.type) {
      case 'run:start': {
        runTask = event.task
        hostCount = event.hosts.length
        plannedSteps = event.steps
        recoveryPlan = event.recoverySteps ?? []
        // A task made only of hidden steps (dep run, dep releases) shows them: an empty tree says nothing.
        allHidden = event.steps.every((step) => step.hidden || step.hosts.length === 0)
        const on = event.hosts.length > 4 ? plural(event.hosts.length, 'host') : event.hosts.map((h) => colorHost(h, color)).join(', ')
        print(c.bold(`${event.dryRun ? 'Dry run of' : 'Running'} ${event.task} on ${on}`))
        flushAbove()
        for (const [index, planned] of event.steps.entries()) if (shown(planned)) addStep(`step:${index}`, planned, root, false)
        starting = start()
        break
      }
      case 'step:start':
        onStepStart(event)
        break
      case 'step:end':
        onStepEnd(event)
        break
      case 'command:start':
        // `:` only carries queued commands (shown on their own); it says nothing.
        if (verbosity >= 1 && event.command !== ':') {
          const indent = ' '.repeat(event.host.length + 3 + (event.local ? 7 : 2))
          print(`${prefix(event.host)} ${c.dim(event.local ? 'local$' : '$')} ${commandLines(event.command).join(`\n${indent}`)}`)
        }
        break
      case 'command:output':
        if (verbosity >= 1) print(`${prefix(event.host)} ${event.stream === 'stderr' ? c.dim(event.text) : event.text}`)
        else if (event.text.trim()) liveOutput(event.host, event.text)
        break
      case 'command:end':
        if (verbosity >= 2) print(`${prefix(event.host)} ${c.dim(`exit ${event.exitCode} in ${formatDuration(event.durationMs)}`)}`)
        break
      case 'log': {
        if (event.level === 'debug' && verbosity < 2) break
        const paint = event.level === 'warning' ? c.yellow : event.level === 'error' ? c.red : (t: string) => t
        const mark = event.level === 'warning' ? '⚠ ' : event.level === 'error' ? '✖ ' : ''
        const lines = event.message.split('\n').map((line, i) => `${event.host ? `${prefix(event.host)} ` : ''}${paint(`${i === 0 ? mark : mark ? '  ' : ''}${line}`)}`)
        if (!addMessage(event.task, event.host, lines)) for (const line of lines) print(line)
        break
      }
      case 'transfer': {
        const total = event.totalBytes ? ` / ${formatBytes(event.totalBytes)}` : ''
        const percent = event.totalBytes ? ` (${Math.floor((100 * event.bytes) / event.totalBytes)} %)` : ''
        onTransfer(event.host, event.done ? undefined : `${event.direction === 'upload' ? '↑' : '↓'} ${formatBytes(event.bytes)}${total}${percent}`)
        if (event.done && verbosity >= 1) print(`${prefix(event.host)} ${c.dim(`${event.direction === 'upload' ? '↑ uploaded' : '↓ downloaded'} ${event.path} (${formatBytes(event.bytes)})`)}`)
        break
      }
      case 'recovery:start': {
        skipWaiting(root)
        recoveryPhase = event.phase
        recovered = true
        const title = c.yellow(recoveryLine(event))
        const task = make(root, title)
        const list = new Listr([], listOptions, task as never)
        task.subtasks = list.tasks
        setState(task, ListrTaskState.ROLLING_BACK)
        recoveryGroup = { task, list, title, messages: [] }
        for (const [index, planned] of recoveryPlan.entries()) if (shown(planned)) addStep(`recovery:${index}`, planned, list, true)
        break
      }
      case 'recovery:end':
        if (!recoveryGroup) break
      {
        skipWaiting(recoveryGroup.list)
        recovered = event.ok === true
        const group = recoveryGroup
        const close = () => {
          // One frame while the group is still open, so listr2 knows its steps and keeps them listed once it is closed.
          renderer.update()
          group.title = event.ok ? c.yellow(recoveryLine(event)) : c.red(recoveryLine(event))
          group.task.title$ = withMessages(group.title, group.messages)
          setState(group.task, event.ok ? ListrTaskState.ROLLED_BACK : ListrTaskState.FAILED)
        }
        if (drawing) close()
        else afterFirstFrame.push(close)
        break
      }
      case 'lock:held':
      case 'lock:taken':
      case 'lock:released': {
        const line = lockLine(event, verbosity, c, prefix)
        if (line) print(line)
        break
      }
      case 'run:end':
        finishing = onRunEnd(event)
        break
      default:
        break
    }
  }

  return {
    sink,
    close: async () => {
      await finishing
      await stop()
    },
  }
}
