/**
 * The terminal view: a listr2 task tree drawing the state `run-view.ts` reduces from the run
 * events. listr2 normally runs the tasks itself; here the executor runs them, so the tree holds
 * listr2 tasks that never run: their state, title and messages are set from the view state on
 * each frame, and listr2's default renderer draws them (spinners, ✔/✖, subtasks, errors). A
 * task's messages (info(), warning()) stay under the step that printed them, so the final screen
 * reads in order; with -v every command and its output is printed above the tree.
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
import type { ErrorInfo, LogEvent, PlannedStep, RunEvent } from '../model/events.js'
import { colorHost, colorsFor, commandLines, formatBytes, formatDuration, lastLines, lockLine, plural, recoveryLine, runSummary, timingText, type Colors } from './format.js'
import { emptyRunView, hostsShown, reduceRunView, type HostRow, type RowState, type RunView, type StepRow } from './run-view.js'

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

const ABOVE_FLUSH_MS = 40
/** How often the tree takes the view state (listr2's spinner draws every 100 ms on its own). */
const SYNC_MS = 100

const STATES: Record<RowState, ListrTaskState> = {
  waiting: ListrTaskState.WAITING,
  running: ListrTaskState.STARTED,
  ok: ListrTaskState.COMPLETED,
  failed: ListrTaskState.FAILED,
  'not-run': ListrTaskState.SKIPPED,
}

/** The lines of a task's message, `[host]`-prefixed, painted by level (under its step, or above the tree). */
function messageLines(event: LogEvent, c: Colors, prefix: (host: string) => string): string[] {
  const paint = event.level === 'warning' ? c.yellow : event.level === 'error' ? c.red : (t: string) => t
  const mark = event.level === 'warning' ? '⚠ ' : event.level === 'error' ? '✖ ' : ''
  return event.message.split('\n').map((line, i) => `${event.host ? `${prefix(event.host)} ` : ''}${paint(`${i === 0 ? mark : mark ? '  ' : ''}${line}`)}`)
}

/** The text of the view's rows: titles, timings and error messages, coloured or not. */
class Titles {
  private readonly c: Colors
  constructor(private readonly color: boolean) {
    this.c = colorsFor(color)
  }

  readonly prefix = (host: string) => `[${colorHost(host, this.color)}]`

  messages(events: LogEvent[]): string[] {
    return events.flatMap((event) => messageLines(event, this.c, this.prefix))
  }

  /** A title with the messages printed under it (listr2 indents a title's further lines under it). */
  withMessages(title: string, messages: LogEvent[]): string {
    return messages.length ? `${title}\n${this.messages(messages).join('\n')}` : title
  }

  plain(view: RunView, planned: PlannedStep): string {
    const notes = [planned.hidden && !view.allHidden ? 'hidden' : '', planned.once && (view.run?.hosts.length ?? 0) > 1 ? `once, on ${planned.hosts[0]}` : ''].filter(Boolean)
    return `${planned.task}${notes.length ? this.c.dim(` (${notes.join(', ')})`) : ''}`
  }

  /** A running host's notes: the transfer going on, and the time once it takes a while. */
  running(host: HostRow, now: number): string {
    const transfer = host.transfer
      ? `${host.transfer.direction === 'upload' ? '↑' : '↓'} ${formatBytes(host.transfer.bytes)}${host.transfer.totalBytes ? ` / ${formatBytes(host.transfer.totalBytes)} (${Math.floor((100 * host.transfer.bytes) / host.transfer.totalBytes)} %)` : ''}`
      : ''
    const elapsed = now - host.started
    const notes = [transfer, elapsed >= 2000 ? formatDuration(Math.floor(elapsed / 1000) * 1000) : ''].filter(Boolean).join(' · ')
    return notes ? this.c.dim(notes) : ''
  }

  step(view: RunView, row: StepRow, now: number): string {
    const title = this.plain(view, row.planned)
    let suffix = ''
    if (row.state === 'running' && !(row.planned.hosts.length > 1) && row.hosts[0] && !row.hosts[0].end) suffix = this.running(row.hosts[0], now)
    if ((row.state === 'ok' || row.state === 'failed') && row.ends.length > 0) {
      const duration = Math.max(...row.ends.map((e) => e.time)) - (row.started ?? Math.min(...row.ends.map((e) => e.time - e.durationMs)))
      const hostsNote = row.planned.hosts.length > 1 ? plural(row.planned.hosts.length, 'host') : ''
      suffix = this.c.dim(timingText(Math.max(0, duration), row.ends.map((e) => e.roundTrips), hostsNote))
      const end = row.ends[0]
      if (row.planned.hosts.length <= 1 && end.status === 'warning') suffix += ` ${this.c.yellow(`⚠ ${end.error?.message ?? 'warning'}`)}`
    }
    return this.withMessages(`${title}${suffix ? ` ${suffix}` : ''}`, row.messages)
  }

  host(host: HostRow, now: number): string {
    const name = colorHost(host.host, this.color)
    if (!host.end) {
      const notes = host.stopped ? '' : this.running(host, now)
      return notes ? `${name} ${notes}` : name
    }
    const warning = host.end.status === 'warning' ? this.c.yellow('⚠ ') : ''
    return `${name} ${warning}${this.c.dim(timingText(host.end.durationMs, [host.end.roundTrips]))}`
  }

  error(error: ErrorInfo | undefined): string {
    if (!error) return 'failed'
    const lines = [this.c.red(error.message)]
    if (error.location) lines.push(this.c.dim(`at ${error.location}`))
    lines.push(...lastLines(error.stderr, 5).map((l) => this.c.dim(`│ ${l}`)))
    if (error.hint) lines.push(`→ ${error.hint}`)
    return lines.join('\n')
  }

  notRun(view: RunView, planned: PlannedStep): string {
    return this.c.dim(`${this.plain(view, planned)} — not run`)
  }

  recovery(view: RunView, closed = true): string {
    const group = view.recovery!
    const end = closed ? group.end : undefined
    const title = end ? (end.ok ? this.c.yellow(recoveryLine(end)) : this.c.red(recoveryLine(end))) : this.c.yellow(recoveryLine(group.start))
    return this.withMessages(title, group.messages)
  }
}

interface StepTasks {
  task: ViewTask
  /** The list the step's host subtasks are made in (a step planned on several hosts). */
  hostList?: Listr
  hosts: Map<string, ViewTask>
}

/**
 * The listr2 tasks of the view's rows, made as rows appear (never removed: rows are only
 * ever added) and brought up to date by `sync`.
 */
class TaskTree {
  private readonly steps = new Map<string, StepTasks>()
  private group?: { task: ViewTask; list: Listr; drawnOpen: boolean }
  private readonly enabling: Array<Promise<unknown>> = []

  constructor(
    private readonly root: Listr,
    /** A list for the subtasks of `parent`. */
    private readonly subList: (parent: ViewTask) => Listr,
    private readonly titles: Titles,
  ) {}

  /** A waiting task in `list`, at `at`. */
  private make(list: Listr, title: string, at: number): ViewTask {
    list.add({ title, task: () => undefined })
    const task = list.tasks.pop()!
    list.tasks.splice(at, 0, task)
    // listr2 draws only enabled tasks; check() enables them (asynchronously: sync awaits it).
    this.enabling.push(task.check(undefined))
    return task
  }

  private ensure(view: RunView, row: StepRow, list: Listr, at: number): void {
    let tasks = this.steps.get(row.key)
    if (!tasks) {
      tasks = { task: this.make(list, this.titles.plain(view, row.planned), at), hosts: new Map() }
      this.steps.set(row.key, tasks)
    }
    if (row.planned.hosts.length <= 1) return
    for (const host of row.hosts) {
      if (tasks.hosts.has(host.host)) continue
      tasks.hostList ??= this.subList(tasks.task)
      tasks.hosts.set(host.host, this.make(tasks.hostList, colorHost(host.host, false), tasks.hostList.tasks.length))
    }
  }

  /** Brings the tree up to `view`; `draw` draws a frame (false: the renderer is not up yet). */
  async sync(view: RunView, draw: () => boolean): Promise<void> {
    for (const [index, row] of view.steps.entries()) this.ensure(view, row, this.root, index)
    if (view.recovery) {
      if (!this.group) {
        const task = this.make(this.root, this.titles.recovery(view), this.root.tasks.length)
        this.group = { task, list: this.subList(task), drawnOpen: false }
        task.subtasks = this.group.list.tasks
        task.state$ = ListrTaskState.ROLLING_BACK
      }
      for (const [index, row] of view.recovery.steps.entries()) this.ensure(view, row, this.group.list, index)
    }
    await Promise.all(this.enabling.splice(0))
    const now = Date.now()
    for (const row of view.steps) this.apply(view, row, now)
    if (!view.recovery || !this.group) return
    for (const row of view.recovery.steps) this.apply(view, row, now)
    const { task } = this.group
    // One frame while the group is still open, so listr2 knows its steps and keeps them listed once it is closed.
    if (view.recovery.end && !this.group.drawnOpen) this.group.drawnOpen = draw()
    const closed = view.recovery.end && this.group.drawnOpen ? view.recovery.end : undefined
    setTitle(task, this.titles.recovery(view, closed !== undefined))
    const state = !closed ? ListrTaskState.ROLLING_BACK : closed.ok ? ListrTaskState.ROLLED_BACK : ListrTaskState.FAILED
    if (task.state !== state) task.state$ = state
  }

  private apply(view: RunView, row: StepRow, now: number): void {
    const tasks = this.steps.get(row.key)!
    const { task } = tasks
    for (const host of row.hosts) {
      const hostTask = tasks.hosts.get(host.host)
      if (!hostTask) continue
      setTitle(hostTask, this.titles.host(host, now))
      if (!host.end && !host.stopped) {
        // Again on each frame: listr2 only shows output that arrives after it first drew the task.
        if (host.output) hostTask.output$ = host.output
        continue
      }
      const failed = host.stopped || host.blamed !== undefined || host.end?.status === 'failed'
      if (host.blamed || host.end?.status === 'failed') setMessage(hostTask, { error: this.titles.error(host.blamed ?? host.end?.error) })
      setState(hostTask, failed ? ListrTaskState.FAILED : ListrTaskState.COMPLETED)
    }
    const subtasks = hostsShown(row) && tasks.hostList ? tasks.hostList.tasks : []
    if (task.subtasks?.length !== subtasks.length) task.subtasks = subtasks
    setTitle(task, this.titles.step(view, row, now))
    const single = row.planned.hosts.length <= 1 ? row.hosts[0] : undefined
    if (row.state === 'running' && single?.output && !single.end) task.output$ = single.output
    const failure = row.blamed ?? (row.ends[0]?.status === 'failed' ? row.ends[0].error : undefined)
    if (row.state === 'failed' && (row.blamed || row.ends[0]?.status === 'failed') && (single || !tasks.hostList)) setMessage(task, { error: this.titles.error(failure) })
    if (row.state === 'not-run') setMessage(task, { skip: this.titles.notRun(view, row.planned) })
    if ((row.state === 'ok' || row.state === 'failed') && task.output) task.output$ = ''
    setState(task, STATES[row.state])
  }
}

function setTitle(task: ViewTask, title: string): void {
  if (task.title !== title) task.title$ = title
}

function setState(task: ViewTask, state: ListrTaskState): void {
  if (task.state !== state) task.state$ = state
}

function setMessage(task: ViewTask, message: ViewTask['message']): void {
  const changed = Object.entries(message).some(([key, value]) => task.message?.[key as keyof typeof message] !== value)
  if (changed) task.message$ = message
}

/** Creates the view; `close()` stops drawing (also when a run never ended). */
export function createListrReporter(options: ListrReporterOptions): { sink: (event: RunEvent) => void; close: () => Promise<void> } {
  const stdout = options.stdout ?? process.stdout
  const stderr = options.stderr ?? process.stderr
  const { verbosity, color } = options
  const c = colorsFor(color)
  const titles = new Titles(color)
  const prefix = titles.prefix
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
  // synchronously inside each event would slow the run itself down (its own event manager, which
  // the tasks do not emit on).
  const renderer = new DefaultRenderer(root.tasks as never, rendererOptions, new ListrEventManager())
  const tree = new TaskTree(root, (parent) => new Listr([], listOptions, parent as never), titles)

  let view = emptyRunView(verbosity)
  let drawing = false
  let ended = false
  let starting: Promise<void> | undefined
  let finishing: Promise<void> | undefined
  let ticker: NodeJS.Timeout | undefined
  // One sync at a time: each waits for listr2 to enable the tasks it made.
  let syncing: Promise<void> = Promise.resolve()
  const draw = () => {
    if (drawing) renderer.update()
    return drawing
  }
  const sync = () => (syncing = syncing.then(() => tree.sync(view, draw)))

  // ---- lines above the tree -------------------------------------------------------------
  let above: string[] = []
  let aboveTimer: NodeJS.Timeout | undefined
  const flushAbove = () => {
    if (aboveTimer) clearTimeout(aboveTimer)
    aboveTimer = undefined
    if (above.length === 0) return
    const lines = above
    above = []
    if (drawing) {
      // Erase the tree, print the lines where it was, draw it again below them. listr2 has no public
      // way to print above a live tree (output written while it draws is held until it ends, and
      // end() also prints a final frame), so this clears through its log-update instance.
      const updater = (renderer as unknown as { updater?: { clear?: () => void } }).updater
      updater?.clear?.()
    }
    processOutput.toStdout(lines.join('\n'))
    if (drawing) renderer.update()
  }
  const print = (line: string) => {
    above.push(line)
    if (!aboveTimer) aboveTimer = setTimeout(flushAbove, ABOVE_FLUSH_MS)
  }

  const restoreCursor = () => {
    if (drawing) stdout.write('\u001B[?25h')
  }
  const start = async () => {
    await sync()
    await renderer.render()
    drawing = true
    process.on('exit', restoreCursor)
    if (ended) return
    ticker = setInterval(() => void sync(), SYNC_MS)
    ticker.unref()
  }
  const stop = async () => {
    if (ended) return
    ended = true
    await starting
    if (ticker) clearInterval(ticker)
    await sync()
    flushAbove()
    if (drawing) {
      drawing = false
      renderer.end()
      process.off('exit', restoreCursor)
    }
  }

  const sink = (event: RunEvent) => {
    const before = view
    view = reduceRunView(view, event)
    switch (event.type) {
      case 'run:start': {
        const on = event.hosts.length > 4 ? plural(event.hosts.length, 'host') : event.hosts.map((h) => colorHost(h, color)).join(', ')
        print(c.bold(`${event.dryRun ? 'Dry run of' : 'Running'} ${event.task} on ${on}`))
        flushAbove()
        starting = start()
        break
      }
      case 'command:start':
        // `:` only carries queued commands (shown on their own); it says nothing.
        if (verbosity >= 1 && event.command !== ':') {
          const indent = ' '.repeat(event.host.length + 3 + (event.local ? 7 : 2))
          print(`${prefix(event.host)} ${c.dim(event.local ? 'local$' : '$')} ${commandLines(event.command).join(`\n${indent}`)}`)
        }
        break
      case 'command:output':
        if (verbosity >= 1) print(`${prefix(event.host)} ${event.stream === 'stderr' ? c.dim(event.text) : event.text}`)
        break
      case 'command:end':
        if (verbosity >= 2) print(`${prefix(event.host)} ${c.dim(`exit ${event.exitCode} in ${formatDuration(event.durationMs)}`)}`)
        break
      case 'log':
        // A message with no step to go under (the engine's own) is printed above the tree.
        if (view === before && (event.level !== 'debug' || verbosity >= 2)) for (const line of messageLines(event, c, prefix)) print(line)
        break
      case 'transfer':
        if (event.done && verbosity >= 1) print(`${prefix(event.host)} ${c.dim(`${event.direction === 'upload' ? '↑ uploaded' : '↓ downloaded'} ${event.path} (${formatBytes(event.bytes)})`)}`)
        break
      case 'lock:held':
      case 'lock:taken':
      case 'lock:released': {
        const line = lockLine(event, verbosity, c, prefix)
        if (line) print(line)
        break
      }
      case 'run:end':
        finishing = (async () => {
          await stop()
          const summary = runSummary(event, color)
          const out = event.status === 'success' ? stdout : stderr
          if (out === stderr) stderr.write('\n')
          for (const line of [...summary.details, summary.status]) out.write(`${line}\n`)
        })()
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
