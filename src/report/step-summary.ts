import { appendFileSync } from 'node:fs'
import type { ErrorInfo, RunEndEvent, RunEvent } from '../model/events.js'
import { formatDuration } from './format.js'

/**
 * What a run's summary is made of: the `release` event of each host, then `run:end`, whose
 * summary already says the task, the hosts and what the recovery did.
 */
interface Gathered {
  releases: Map<string, { release: string; revision?: string; previous?: string }>
  end?: RunEndEvent
}

/** A table cell: one line, pipes escaped. */
function cell(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|')
}

/** Inline code that survives backticks inside. */
function code(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length))
  const fence = '`'.repeat(longest + 1)
  return `${fence}${longest ? ' ' : ''}${cell(text)}${longest ? ' ' : ''}${fence}`
}

/** A fenced block longer than any run of backticks in `text`. */
function block(text: string): string[] {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((run) => run.length))
  const fence = '`'.repeat(longest + 1)
  return [fence, text, fence]
}

const STATUS: Record<RunEndEvent['status'], string> = {
  success: '✅ succeeded',
  partial: '⚠️ live, but some hosts were left out',
  failed: '❌ failed',
  'rollback-failed': '❌ failed, and undoing it failed too',
  interrupted: '⚠️ interrupted',
}

/** What the recovery did, in words, by the phase of the failure. */
function recoveryText(recovery: RunEndEvent['summary']['recovery'], previous: string | undefined): string | undefined {
  if (!recovery) return undefined
  if (recovery.ok === false) return 'Undoing the failure failed on some host: the hosts need a look (see the log).'
  if (recovery.phase === 'prepare') return 'Nothing went live: the new release was discarded on every host.'
  if (recovery.phase === 'switch' || recovery.phase === 'post-switch') {
    return `Automatic revert: every host went back${previous ? ` to release ${code(previous)}` : ' to the release it served'}.`
  }
  return 'The failure handler ran on every host.'
}

function failureLines(error: ErrorInfo): string[] {
  const where = [error.task ? `step ${code(error.task)}` : '', error.host ? `on ${code(error.host)}` : ''].filter(Boolean).join(' ')
  const text = [error.message, error.stderr ? `stderr:\n${error.stderr}` : '', error.hint ? `→ ${error.hint}` : ''].filter(Boolean).join('\n')
  return [`**Failure**${where ? ` (${where})` : ''}:`, '', ...block(text)]
}

/**
 * A run as GitHub-flavoured Markdown, for a job summary ($GITHUB_STEP_SUMMARY): status, task,
 * duration, then one row per host with its release, revision and round trips, then the failure
 * if any. Built from run events only (already masked).
 */
export function stepSummary(events: Iterable<RunEvent>): string | undefined {
  const run: Gathered = { releases: new Map() }
  for (const event of events) gather(run, event)
  return render(run)
}

function gather(run: Gathered, event: RunEvent): void {
  if (event.type === 'release') run.releases.set(event.host, { release: event.release, revision: event.revision, previous: event.previous })
  else if (event.type === 'run:end') run.end = event
}

function render(run: Gathered): string | undefined {
  const end = run.end
  if (!end) return undefined
  const releases = [...run.releases.values()]
  const { task, recovery } = end.summary
  const hosts = end.summary.hosts.length ? end.summary.hosts : Object.keys(end.roundTrips)
  const leftOut = new Set(recovery ? [] : (end.summary.leftOut ?? []).map((left) => left.host))
  const trips = hosts.reduce((sum, host) => sum + (end.roundTrips[host] ?? 0), 0)
  const lines = [
    `### dep ${task}: ${STATUS[end.status]}`,
    '',
    `${hosts.length} ${hosts.length === 1 ? 'host' : 'hosts'} · ${releases[0] ? `release ${code(releases[0].release)} · ` : ''}${formatDuration(end.durationMs)} · ${trips} round ${trips === 1 ? 'trip' : 'trips'} · exit ${end.exitCode}`,
    '',
    '| Host | Release | Revision | Round trips |',
    '|---|---|---|---:|',
    ...hosts.map((host) => {
      const release = run.releases.get(host)
      // Left out by --max-fail (and the fleet did not go back): the host stays on what it served.
      if (leftOut.has(host)) return `| ${cell(host)} | ${release?.previous ? code(release.previous) : '–'} (left out) | – | ${end.roundTrips[host] ?? 0} |`
      return `| ${cell(host)} | ${release ? code(release.release) : '–'} | ${release?.revision ? code(release.revision) : '–'} | ${end.roundTrips[host] ?? 0} |`
    }),
    '',
  ]
  const recovered = end.status === 'success' || end.status === 'partial' ? undefined : recoveryText(recovery, releases[0]?.previous)
  if (recovered) lines.push(recovered, '')
  for (const left of recovery ? [] : (end.summary.leftOut ?? [])) lines.push(`⚠️ ${code(left.host)} left out (--max-fail): ${cell(left.task)} failed there (${cell(left.message)}); it stays on the release it served.`, '')
  for (const error of end.errors ?? (end.error ? [end.error] : [])) lines.push(...failureLines(error), '')
  for (const error of end.recoveryErrors ?? []) lines.push(...failureLines({ ...error, message: `while undoing: ${error.message}` }), '')
  for (const warning of end.warnings ?? []) lines.push(`⚠️ ${cell(warning.host ? `${warning.host}: ` : '')}${cell(warning.message)}`, '')
  return `${lines.join('\n')}\n`
}

/**
 * `--summary <file>`: appends the run's Markdown summary to `file` when the run ends (GitHub's
 * $GITHUB_STEP_SUMMARY is such a file). A file that cannot be written is reported once, and the
 * run goes on.
 */
export function createStepSummaryReporter(file: string, onError: (error: Error) => void): (event: RunEvent) => void {
  const run: Gathered = { releases: new Map() }
  return (event) => {
    gather(run, event)
    if (event.type !== 'run:end') return
    const text = render(run)
    if (!text) return
    try {
      appendFileSync(file, text)
    } catch (error) {
      onError(error as Error)
    }
  }
}
