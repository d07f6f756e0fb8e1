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
import type { RunEvent } from '../model/events.js'
import { colorHost, colorsFor, commandLines, formatBytes, formatDuration, lockLine, plural, runSummary } from './format.js'
import { emptyRunView, hostsShown, reduceRunView, type RowState, type RunView, type StepRow } from './run-view.js'
import { messageLines, Titles } from './view-text.js'

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
  // A frame that cannot be drawn must not stop the deploy (the closing lines are printed anyway).
  const sync = () => (syncing = syncing.then(() => tree.sync(view, draw)).catch(() => undefined))

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
