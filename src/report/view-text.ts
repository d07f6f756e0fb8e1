/**
 * The text the terminal view draws for its state: step and host titles with their timings, the
 * messages under a step, error messages, the recovery group's title. Coloured or not.
 */
import type { ErrorInfo, LogEvent, PlannedStep } from '../model/events.js'
import { batchLine, colorHost, colorsFor, formatBytes, formatDuration, lastLines, plural, recoveryLine, stepTimingText, type Colors } from './format.js'
import { batchRowKey, type HostRow, type RunView, type StepRow } from './run-view.js'

/** The lines of a task's message, `[host]`-prefixed, painted by level (under its step, or above the tree). */
export function messageLines(event: LogEvent, c: Colors, prefix: (host: string) => string): string[] {
  const paint = event.level === 'warning' ? c.yellow : event.level === 'error' ? c.red : (t: string) => t
  const mark = event.level === 'warning' ? '⚠ ' : event.level === 'error' ? '✖ ' : ''
  return event.message.split('\n').map((line, i) => `${event.host ? `${prefix(event.host)} ` : ''}${paint(`${i === 0 ? mark : mark ? '  ' : ''}${line}`)}`)
}

/** The text of the view's rows: titles, timings and error messages, coloured or not. */
export class Titles {
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
      const end = row.ends[0]
      suffix = this.c.dim(stepTimingText(end, Math.max(0, duration), row.ends.map((e) => e.roundTrips), hostsNote))
      if (row.planned.hosts.length <= 1 && end.status === 'warning') suffix += ` ${this.c.yellow(`⚠ ${end.error?.message ?? 'warning'}`)}`
    }
    const text = this.withMessages(`${title}${suffix ? ` ${suffix}` : ''}`, row.messages)
    if (batchRowKey(view) !== row.key) return text
    const batches = view.batches.filter(Boolean).map((b) => (b.status === 'failed' ? this.c.yellow(`▸ ${batchLine(b)}`) : this.c.dim(`▸ ${batchLine(b)}`)))
    return [text, ...batches].join('\n')
  }

  host(host: HostRow, now: number): string {
    const name = colorHost(host.host, this.color)
    if (!host.end) {
      const notes = host.stopped ? '' : this.running(host, now)
      return notes ? `${name} ${notes}` : name
    }
    const warning = host.end.status === 'warning' ? this.c.yellow('⚠ ') : ''
    return `${name} ${warning}${this.c.dim(stepTimingText(host.end, host.end.durationMs, [host.end.roundTrips]))}`
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
