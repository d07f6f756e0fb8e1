import { randomUUID } from 'node:crypto'
import type { ErrorInfo, PlannedStep, RunEvent, StepEndEvent } from '../model/events.js'
import {
  colorHost,
  colorsFor,
  commandLines,
  formatBytes,
  formatDuration,
  githubAnnotation,
  hostsLabel,
  plural,
  runSummary,
  stepTimingText,
  lockLine,
  batchLine, recoveryLine,
} from './format.js'

/** Options of the line reporter. */
export interface PlainReporterOptions {
  /** 0: one line per step; 1 (-v): commands and their output, hidden steps too; 2 (-vv): exit codes and debug messages. */
  verbosity: number
  color: boolean
  /** Progress lines (stdout). */
  write: (line: string) => void
  /** The closing failure report (stderr); default `write`. */
  writeError?: (line: string) => void
  /** Wrap each step in GitHub Actions `::group::` lines and annotate failures with `::error::`. */
  githubActions?: boolean
}

/** One step on its hosts, collected until every host ended it. */
interface StepGroup {
  task: string
  recovery: boolean
  hidden: boolean
  /** Hosts the plan gave the step; unknown for events without an index. */
  expected?: number
  ends: StepEndEvent[]
}

/**
 * Plain lines prefixed with `[host]`, for CI logs and pipes: no spinners, no
 * cursor movement. By default one line per step (hidden steps only when they
 * fail); with -v every command and its output; the failure in full at the end.
 */
export function createPlainReporter(options: PlainReporterOptions): (event: RunEvent) => void {
  const { verbosity, color, write } = options
  const writeError = options.writeError ?? write
  const gh = options.githubActions === true
  const c = colorsFor(color)
  const prefix = (host: string) => `[${colorHost(host, color)}]`

  let allHosts: string[] = []
  let steps: PlannedStep[] = []
  let recoverySteps: PlannedStep[] = []
  /** A rolling deploy's batches (run:start), and the host a recovery runs on alone (--max-fail). */
  let batches: string[][] = []
  let onlyHost: string | undefined
  let allHidden = false
  const groups = new Map<string, StepGroup>()
  const annotated = new Set<string>()

  // GitHub Actions: groups, and command output fenced with ::stop-commands:: so it cannot issue workflow commands.
  let openGroup: string | undefined
  let stopToken: string | undefined
  const workflow = (line: string) => {
    if (stopToken) write(`::${stopToken}::`)
    stopToken = undefined
    write(line)
  }
  const untrusted = (line: string) => {
    if (gh && !stopToken) {
      stopToken = randomUUID()
      write(`::stop-commands::${stopToken}`)
    }
    write(line)
  }
  const startGroup = (key: string, title: string) => {
    if (!gh || openGroup === key) return
    if (openGroup !== undefined) workflow('::endgroup::')
    workflow(`::group::${title}`)
    openGroup = key
  }
  const endGroup = () => {
    if (openGroup === undefined) return
    workflow('::endgroup::')
    openGroup = undefined
  }
  const annotate = (error: ErrorInfo | undefined, task: string, host: string | undefined) => {
    if (!gh || !error) return
    const key = `${task}@${host ?? ''}@${error.message}`
    if (annotated.has(key)) return
    annotated.add(key)
    workflow(githubAnnotation('error', `${task} failed${host ? ` on ${host}` : ''}`, error))
  }

  const keyOf = (event: { index?: number; recovery?: boolean; task: string; batch?: number }) =>
    event.index === undefined ? `task:${event.task}` : `${event.recovery ? 'recovery' : 'step'}:${event.index}${event.batch === undefined ? '' : `@${event.batch}`}`
  /** How many hosts end the step: the plan's, within the batch, or the one host a recovery runs on alone. */
  const expectedOf = (event: { recovery?: boolean; batch?: number }, planned: PlannedStep | undefined) => {
    if (!planned) return undefined
    if (event.recovery && onlyHost !== undefined) return 1
    const batch = event.batch === undefined ? undefined : batches[event.batch]
    return batch ? planned.hosts.filter((h) => batch.includes(h)).length : planned.hosts.length
  }
  const plannedOf = (event: { index?: number; recovery?: boolean }) =>
    event.index === undefined ? undefined : (event.recovery ? recoverySteps : steps)[event.index]

  const mark = (status: StepEndEvent['status']) =>
    status === 'ok' ? c.green('✔') : status === 'warning' ? c.yellow('⚠') : status === 'skipped' ? c.dim('↓') : c.red('✖')
  const stepLine = (label: string, end: StepEndEvent, durationMs: number, trips: number[]) =>
    `${label} ${end.recovery ? c.yellow('↺ ') : ''}${mark(end.status)} ${end.task} ${c.dim(stepTimingText(end, durationMs, trips))}`
  const problemLines = (end: StepEndEvent) => {
    if (!end.error) return
    for (const line of end.error.message.split('\n')) write(`${prefix(end.host)}   ${end.status === 'warning' ? c.yellow(line) : c.red(line)}`)
  }

  /** Default verbosity: the step's line(s) once every host ended it. */
  const flush = (key: string) => {
    const group = groups.get(key)
    if (!group) return
    groups.delete(key)
    const order = (e: StepEndEvent) => (allHosts.indexOf(e.host) + allHosts.length + 1) % (allHosts.length + 1)
    const ends = [...group.ends].sort((a, b) => order(a) - order(b))
    // A host left out (--max-fail) skipped the step: the line names the hosts that ran it, when some did.
    const ran = ends.filter((e) => e.status === 'ok')
    const fine = ran.length > 0 ? ran : ends.filter((e) => e.status === 'skipped')
    const problems = ends.filter((e) => e.status === 'failed' || e.status === 'warning')
    if (verbosity === 0 && fine.length > 0 && !(group.hidden && problems.length === 0)) {
      const label = allHosts.length === 1 || fine.length === 1 ? prefix(fine[0].host) : hostsLabel(fine.map((e) => e.host), color)
      write(stepLine(label, fine[0], Math.max(...fine.map((e) => e.durationMs)), fine.map((e) => e.roundTrips)))
    }
    const inGroup = openGroup === key
    if (inGroup) endGroup()
    // Failures go outside the (collapsed) GitHub group, so they are seen.
    if (verbosity === 0 || inGroup) {
      for (const end of problems) {
        write(stepLine(prefix(end.host), end, end.durationMs, [end.roundTrips]))
        problemLines(end)
      }
    }
    for (const end of problems) if (end.status === 'failed') annotate(end.error, end.task, end.host)
  }
  const flushAll = () => {
    for (const key of [...groups.keys()]) flush(key)
    endGroup()
  }

  return (event) => {
    switch (event.type) {
      case 'run:start':
        allHosts = event.hosts
        steps = event.steps
        recoverySteps = event.recoverySteps ?? []
        batches = event.batches ?? []
        // A task made only of hidden steps (dep run, dep releases) shows them.
        allHidden = event.steps.every((step) => step.hidden || step.hosts.length === 0)
        write(c.bold(`${event.dryRun ? 'Dry run of' : 'Running'} ${event.task} on ${event.hosts.join(', ')}`))
        break
      case 'step:start': {
        const key = keyOf(event)
        const planned = plannedOf(event)
        if (!groups.has(key)) {
          // A new step: whatever was still open belongs to an earlier one.
          if (event.index === undefined) flushAll()
          groups.set(key, { task: event.task, recovery: event.recovery === true, hidden: event.hidden === true && !allHidden, expected: expectedOf(event, planned), ends: [] })
        }
        const visible = !event.hidden || allHidden || verbosity >= 1
        if (visible) startGroup(key, `${event.recovery ? '↺ ' : ''}${event.task}${planned && planned.hosts.length > 1 ? ` (${plural(planned.hosts.length, 'host')})` : ''}`)
        if (verbosity >= 1) write(`${prefix(event.host)} ${event.recovery ? c.yellow('↺ ') : ''}${c.bold(event.task)}`)
        break
      }
      case 'step:end': {
        const key = keyOf(event)
        const group = groups.get(key) ?? { task: event.task, recovery: event.recovery === true, hidden: event.hidden === true && !allHidden, ends: [] }
        groups.set(key, group)
        group.ends.push(event)
        if (verbosity >= 1) {
          write(stepLine(prefix(event.host), event, event.durationMs, [event.roundTrips]))
          if (event.status !== 'ok') problemLines(event)
        }
        if (group.expected === undefined || group.ends.length >= group.expected) flush(key)
        break
      }
      case 'command:start':
        // `:` only carries queued commands (shown on their own); it says nothing.
        if (verbosity >= 1 && event.command !== ':') {
          const lines = commandLines(event.command)
          const indent = ' '.repeat(event.host.length + 3 + (event.local ? 7 : 2))
          untrusted(`${prefix(event.host)} ${c.dim(event.local ? 'local$' : '$')} ${lines.join(`\n${indent}`)}`)
        }
        break
      case 'command:output':
        if (verbosity >= 1) untrusted(`${prefix(event.host)} ${event.stream === 'stderr' ? c.dim(event.text) : event.text}`)
        break
      case 'command:end':
        if (verbosity >= 2) write(`${prefix(event.host)} ${c.dim(`exit ${event.exitCode} in ${formatDuration(event.durationMs)}`)}`)
        break
      case 'log': {
        if (event.level === 'debug' && verbosity < 2) break
        const style = event.level === 'warning' ? (t: string) => c.yellow(`⚠ ${t}`) : event.level === 'error' ? (t: string) => c.red(`✖ ${t}`) : (t: string) => t
        const lines = event.message.split('\n')
        for (const [i, line] of lines.entries()) write(`${event.host ? `${prefix(event.host)} ` : ''}${i === 0 ? style(line) : event.level === 'info' ? line : `  ${line}`}`)
        // An annotation stands alone on the run's summary page: it names the host (a revert's
        // "switched back to release 1" said nothing about where).
        if (event.level === 'warning' && gh) {
          const title = `${event.task ?? 'deployfile'}${event.host ? ` on ${event.host}` : ''}`
          workflow(githubAnnotation('warning', title, { message: event.host ? `${event.host}: ${event.message}` : event.message }))
        }
        break
      }
      case 'recovery:start':
        flushAll()
        onlyHost = event.host
        write(c.yellow(`↺ ${recoveryLine(event)}`))
        break
      case 'recovery:end':
        flushAll()
        onlyHost = undefined
        write(event.ok ? c.yellow(`↺ ${recoveryLine(event)}`) : c.red(`✖ ${recoveryLine(event)}`))
        break
      case 'batch:start':
      case 'batch:end':
        flushAll()
        write(event.type === 'batch:end' && event.status === 'failed' ? c.yellow(`▸ ${batchLine(event)}`) : c.bold(`▸ ${batchLine(event)}`))
        break
      case 'lock:held':
      case 'lock:taken':
      case 'lock:released': {
        const line = lockLine(event, verbosity, c, prefix)
        if (line) write(line)
        break
      }
      case 'transfer':
        if (verbosity >= 1 && event.done) {
          write(`${prefix(event.host)} ${c.dim(`${event.direction === 'upload' ? '↑' : '↓'} ${event.direction} ${event.path}: ${formatBytes(event.bytes)}`)}`)
        }
        break
      case 'run:end': {
        flushAll()
        const { task } = event.summary
        if (event.error) annotate(event.error, event.error.task ?? task, event.error.host)
        for (const error of event.recoveryErrors ?? []) annotate(error, error.task ?? task, error.host)
        const summary = runSummary(event, color)
        if (event.status === 'success') {
          for (const line of summary.details) write(line)
          write(summary.status)
        } else {
          writeError('')
          for (const line of summary.details) writeError(line)
          writeError(summary.status)
        }
        break
      }
      default:
        break
    }
  }
}
