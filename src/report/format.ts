import pc from 'picocolors'
import type { BatchEvent, ErrorInfo, LockEvent, RecoveryEvent, RunEndEvent, StepEndEvent } from '../model/events.js'

/** picocolors, or the same functions doing nothing. */
export type Colors = ReturnType<typeof pc.createColors>

export function colorsFor(color: boolean): Colors {
  return color ? pc.createColors(true) : pc.createColors(false)
}

const HOST_COLORS = ['cyan', 'magenta', 'yellow', 'blue', 'green', 'red'] as const

/** A stable colour per host name, so interleaved output stays readable. */
export function colorHost(alias: string, color: boolean): string {
  if (!color) return alias
  let hash = 0
  for (const char of alias) hash = (hash * 31 + char.charCodeAt(0)) >>> 0
  return pc.createColors(true)[HOST_COLORS[hash % HOST_COLORS.length]](alias)
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  const minutes = Math.floor(ms / 60_000)
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GB`
}

/** `1 round trip`, `3 round trips`. */
export function plural(count: number, word: string, words = `${word}s`): string {
  return `${count} ${count === 1 ? word : words}`
}

/** Round trips of one step on its hosts: `1 round trip`, `1 round trip each`, `1–3 round trips`, '' for none. */
export function roundTripsText(counts: number[]): string {
  if (counts.length === 0) return ''
  const min = Math.min(...counts)
  const max = Math.max(...counts)
  if (max === 0) return ''
  if (counts.length === 1) return plural(min, 'round trip')
  if (min === max) return `${plural(min, 'round trip')} each`
  return `${min}–${max} round trips`
}

/** `[web1]`, `[web1, web2, web3]`, `[12 hosts]`. */
export function hostsLabel(hosts: string[], color: boolean, max = 4): string {
  if (hosts.length > max) return `[${hosts.length} hosts]`
  return `[${hosts.map((h) => colorHost(h, color)).join(', ')}]`
}

/** A command as shown: without the `set -e` line scripts start with. */
export function commandLines(command: string): string[] {
  return command.split('\n').filter((line) => line.trim() !== 'set -e')
}

/** The lines that explain an error: message, task, host, command, exit code, last lines of stderr, where, hint. */
export function formatError(error: ErrorInfo, color: boolean): string[] {
  const c = colorsFor(color)
  // A JavaScript exception says what kind it is (`TypeError: x is not a function`).
  const kind = /^(Type|Reference|Range|Syntax|Eval|URI)Error$/.test(error.name) && !error.message.startsWith(error.name) ? `${error.name}: ` : ''
  const lines = [c.red(`✖ ${kind}${error.message}`)]
  if (error.task) lines.push(`  task:    ${error.task}`)
  if (error.host) lines.push(`  host:    ${error.host}`)
  if (error.command) lines.push(`  command: ${commandLines(error.command).join(`\n${' '.repeat(11)}`)}`)
  if (error.exitCode !== undefined && error.exitCode !== null) lines.push(`  exit:    ${error.exitCode}`)
  if (error.location) lines.push(`  at:      ${error.location}`)
  if (error.stdout) lines.push(`  stdout:`, ...error.stdout.split('\n').map((l) => c.dim(`    ${l}`)))
  if (error.stderr) lines.push(`  stderr:`, ...error.stderr.split('\n').map((l) => c.dim(`    ${l}`)))
  if (error.hint) {
    const [first, ...rest] = error.hint.split('\n')
    lines.push(`  ${c.cyan('→')} ${first}`, ...rest.map((l) => `    ${l}`))
  }
  return lines
}

/** The last `count` non-empty lines of a text. */
export function lastLines(text: string | undefined, count: number): string[] {
  return (text ?? '').split('\n').filter((l) => l.trim() !== '').slice(-count)
}

/** What each exit code means, in a few words. */
export const EXIT_MEANINGS: Record<number, string> = {
  0: 'success',
  1: 'a task failed',
  2: 'bad input: the deployfile, a task or host name, a setting or an option',
  3: 'a host could not be reached, logged in to, or trusted',
  4: 'the deploy lock is held by another run; nothing changed',
  5: 'a failure, and undoing it failed too: hosts need a look',
  6: 'the deploy went live, but a deploy lock could not be released',
  7: 'live on every host but those left out by --max-fail',
  130: 'interrupted',
}

/** `, 5 round trips`, `, 5 round trips per host`, `, 3–5 round trips per host`. */
function runRoundTrips(counts: number[]): string {
  if (counts.length === 0) return ''
  const min = Math.min(...counts)
  const max = Math.max(...counts)
  if (counts.length === 1) return `, ${plural(min, 'round trip')}`
  return min === max ? `, ${plural(min, 'round trip')} per host` : `, ${min}–${max} round trips per host`
}

/** What the recovery did, by the phase the failure happened in (prepare steps never touch what is live). */
function undoneText(phase: string | undefined): string {
  if (phase === 'prepare') return 'nothing was switched anywhere'
  if (phase === 'switch' || phase === 'post-switch') return 'the hosts that switched went back'
  return 'the fail hook ran on every host'
}

/** The line a reporter shows when the recovery of a failed run starts or ends. */
export function recoveryLine(event: RecoveryEvent): string {
  const what = event.interrupted ? 'interrupted' : `${event.failedTask} failed on ${event.failedHost}${event.phase ? ` (${event.phase} phase)` : ''}`
  if (event.host !== undefined) {
    if (event.type === 'recovery:start') return `${what}: undoing it on ${event.host} alone, left out of the run (--max-fail); the other hosts carry on`
    return event.ok ? `${event.host} undone and left out of the run: ${what}` : `undoing ${event.host} failed: ${what}; it needs a look, see below`
  }
  if (event.type === 'recovery:start') return `${what}: recovering on every host`
  return event.ok ? `recovered on every host (${what})` : `recovery failed on some host (${what}): hosts need a look, see below`
}

/** The line a reporter shows when a batch of a rolling deploy starts or ends. */
export function batchLine(event: BatchEvent): string {
  const name = `batch ${event.index + 1}/${event.of}${event.canary ? ' (canary)' : ''}`
  if (event.type === 'batch:start') return `${name}: ${event.hosts.join(', ')}`
  return `${name} ${event.status === 'failed' ? 'had a failure' : 'done'}: ${event.hosts.join(', ')}`
}

/** The hosts a partial deploy left out, one line each: where each stays and why. */
function leftOutLines(end: RunEndEvent): string[] {
  const left = end.summary.leftOut ?? []
  // Once the whole fleet went back, the hosts left out earlier are where every host is: nothing to tell.
  if (left.length === 0 || end.summary.recovery) return []
  return [
    `Left out by --max-fail (drifted by choice; the next deploy converges them): ${left.map((l) => l.host).join(', ')}`,
    ...left.map((l) => `  ${l.host}: ${l.task} failed (${l.message})${l.notes?.length ? `; ${l.notes.join('; ')}` : '; it stays on the release it served'}`),
  ]
}

/**
 * The closing lines of a run: the failure in full, failures of the recovery,
 * warnings of best-effort steps, and one status line (all read from `run:end`).
 */
export function runSummary(end: RunEndEvent, color: boolean): { details: string[]; status: string } {
  const c = colorsFor(color)
  const { task, recovery } = end.summary
  const details: string[] = []
  for (const warning of end.warnings ?? []) details.push(...formatError(warning, color).map((l, i) => (i === 0 ? c.yellow(`⚠ finish step failed (the deploy stays live): ${warning.message}`) : l)))
  for (const error of end.errors ?? (end.error ? [end.error] : [])) details.push(...formatError(error, color))
  if (end.recoveryErrors?.length) {
    details.push(c.red(`Undoing the failure failed too (${plural(end.recoveryErrors.length, 'error')}):`))
    for (const error of end.recoveryErrors) details.push(...formatError(error, color))
  }
  const took = formatDuration(end.durationMs)
  const tripsText = runRoundTrips(Object.values(end.roundTrips))
  const undone = recovery?.ok ? `; ${undoneText(recovery.phase)}` : ''
  for (const line of leftOutLines(end)) details.push(c.yellow(line))
  let status: string
  switch (end.status) {
    case 'success':
      status = c.green(`✔ ${task} finished in ${took}${tripsText}`)
      break
    case 'partial': {
      const left = end.summary.leftOut?.length ?? 0
      status = c.yellow(`⚠ ${task} finished in ${took}${tripsText}, but ${left} of ${end.summary.hosts.length} hosts were left out (exit ${end.exitCode})`)
      break
    }
    case 'failed':
      status = c.red(`✖ ${task} failed after ${took} (exit ${end.exitCode}: ${EXIT_MEANINGS[end.exitCode] ?? 'failure'})${undone}`)
      break
    case 'rollback-failed':
      status = c.red(`✖ ${task} failed and undoing it failed too (exit ${end.exitCode}): hosts need a look`)
      break
    case 'interrupted':
      // Stopped at once (a second Ctrl-C): nothing was undone to the end, whatever the recovery began.
      if (end.exitCode === 5) {
        status = c.red(`✖ ${task} stopped at once after ${took} (exit ${end.exitCode}): the recovery did not finish; hosts need a look`)
        break
      }
      status = c.yellow(`✖ ${task} interrupted after ${took} (exit ${end.exitCode})${undone}`)
      break
  }
  return { details, status }
}

/** GitHub Actions workflow command data: `%`, CR and LF escaped. */
export function escapeGithubData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A')
}

/** GitHub Actions workflow command property values: data escaping plus `:` and `,`. */
export function escapeGithubProperty(text: string): string {
  return escapeGithubData(text).replace(/:/g, '%3A').replace(/,/g, '%2C')
}

/** `::error title=…,file=…,line=…::message` for an error. */
export function githubAnnotation(kind: 'error' | 'warning', title: string, error: Pick<ErrorInfo, 'message' | 'command' | 'exitCode' | 'stdout' | 'stderr' | 'location' | 'hint'>): string {
  const properties = [`title=${escapeGithubProperty(title)}`]
  const location = error.location ? /^(.*):(\d+):(\d+)$/.exec(error.location) : null
  if (location) {
    const workspace = process.env.GITHUB_WORKSPACE
    const file = workspace && location[1].startsWith(`${workspace}/`) ? location[1].slice(workspace.length + 1) : location[1]
    properties.push(`file=${escapeGithubProperty(file)}`, `line=${location[2]}`, `col=${location[3]}`)
  }
  const body = [error.message]
  if (error.command) body.push(`command: ${commandLines(error.command).join(' ⏎ ')}`)
  if (error.exitCode !== undefined && error.exitCode !== null) body.push(`exit: ${error.exitCode}`)
  const stdout = lastLines(error.stdout, 5)
  if (stdout.length) body.push('stdout:', ...stdout)
  const stderr = lastLines(error.stderr, 5)
  if (stderr.length) body.push('stderr:', ...stderr)
  if (error.hint) body.push(`→ ${error.hint}`)
  return `::${kind} ${properties.join(',')}::${escapeGithubData(body.join('\n'))}`
}

/** `63 ms · 1 round trip` (the round trips left out when there were none). */
export function timingText(durationMs: number, trips: number[], ...more: string[]): string {
  return [formatDuration(durationMs), ...more, roundTripsText(trips)].filter(Boolean).join(' · ')
}

/**
 * The timing of a step line. A step whose queued commands another step sent says where their time
 * went: `queued · ran in laravel:caches` when that was all its work (its own time is near zero),
 * else its own timing and `+1 queued, ran in deploy:prepared`.
 */
export function stepTimingText(end: Pick<StepEndEvent, 'queued' | 'sentBy'>, durationMs: number, trips: number[], ...more: string[]): string {
  if (!end.queued || !end.sentBy) return timingText(durationMs, trips, ...more)
  if (trips.every((count) => count === 0)) return [`queued · ran in ${end.sentBy}`, ...more].filter(Boolean).join(' · ')
  return `${timingText(durationMs, trips, ...more)} · +${end.queued} queued, ran in ${end.sentBy}`
}

/** The line a lock event gets at this verbosity (held: -v, taken/released: -vv), or undefined. */
export function lockLine(event: LockEvent, verbosity: number, c: Colors, prefix: (host: string) => string): string | undefined {
  if (event.type === 'lock:held') {
    return verbosity >= 1 ? `${prefix(event.host)} ${c.red(`lock held${event.owner ? ` by ${event.owner}` : ''}`)}` : undefined
  }
  return verbosity >= 2 ? `${prefix(event.host)} ${c.dim(event.type === 'lock:taken' ? 'lock taken' : 'lock released')}` : undefined
}
