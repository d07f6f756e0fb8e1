/**
 * A per-host timeline of one run from its `--json` events: when each command started and ended on
 * each host, in ms since `run:start`, so the gaps between a host's commands (waiting on other hosts
 * or on the client) show next to the commands themselves.
 */

interface TimedEvent {
  type?: string
  time?: number
  host?: string
  task?: string
  command?: string
  local?: boolean
  durationMs?: number
}

/** One command on one host, ms relative to `run:start`. */
export interface TimelineEntry {
  host: string
  task: string
  /** The first line of the (masked) command, shortened. */
  command: string
  startMs: number
  endMs: number | undefined
}

export interface Timeline {
  /** `run:end` relative to `run:start`. */
  runMs: number | undefined
  entries: TimelineEntry[]
}

function parseEvents(stdout: string): TimedEvent[] {
  const events: TimedEvent[] = []
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      events.push(JSON.parse(line) as TimedEvent)
    } catch {
      // not an event
    }
  }
  return events
}

/**
 * The commands of a run. `command:end` carries no command id (nor the `local` flag): an end closes
 * the oldest open command of its host and task (a host runs its commands one after the other).
 */
export function timelineOf(stdout: string): Timeline {
  const events = parseEvents(stdout)
  const t0 = events.find((e) => e.type === 'run:start')?.time ?? events[0]?.time ?? 0
  const entries: TimelineEntry[] = []
  const open = new Map<string, TimelineEntry[]>()
  for (const event of events) {
    if (event.time === undefined) continue
    const key = `${event.host ?? ''}\u0000${event.task ?? ''}`
    if (event.type === 'command:start') {
      const entry: TimelineEntry = {
        host: event.local ? `${event.host ?? '?'} (local)` : (event.host ?? 'local'),
        task: event.task ?? '-',
        command: (event.command ?? '').split('\n')[0].slice(0, 48),
        startMs: event.time - t0,
        endMs: undefined,
      }
      entries.push(entry)
      open.set(key, [...(open.get(key) ?? []), entry])
    } else if (event.type === 'command:end') {
      const entry = open.get(key)?.shift()
      if (entry) entry.endMs = event.time - t0
    }
  }
  const end = events.find((e) => e.type === 'run:end')?.time
  return { runMs: end === undefined ? undefined : end - t0, entries }
}

/**
 * The timeline as text: one block per host, one line per round trip. Commands of several tasks the
 * engine sent as one script start and end together: they share a line, their tasks joined by "+".
 */
export function formatTimeline(timeline: Timeline): string[] {
  const hosts = [...new Set(timeline.entries.map((e) => e.host))].sort()
  const lines: string[] = []
  for (const host of hosts) {
    const trips: Array<{ startMs: number; endMs: number | undefined; tasks: string[] }> = []
    for (const entry of timeline.entries.filter((e) => e.host === host)) {
      const last = trips.at(-1)
      if (last && last.startMs === entry.startMs && last.endMs === entry.endMs) {
        if (last.tasks.at(-1) !== entry.task) last.tasks.push(entry.task)
      } else trips.push({ startMs: entry.startMs, endMs: entry.endMs, tasks: [entry.task] })
    }
    lines.push(`  ${host}:`)
    let previousEnd = 0
    for (const trip of trips) {
      const took = trip.endMs === undefined ? '?' : String(trip.endMs - trip.startMs)
      lines.push(
        `    ${String(trip.startMs).padStart(5)}–${String(trip.endMs ?? '?').padEnd(5)} ms ${took.padStart(4)} ms, idle ${String(trip.startMs - previousEnd).padStart(4)} before  ${trip.tasks.join(' + ')}`,
      )
      previousEnd = trip.endMs ?? trip.startMs
    }
  }
  lines.push(`  run:end at ${timeline.runMs ?? '?'} ms`)
  return lines
}
