import pc from 'picocolors'
import type { RunEvent } from '../model/events.js'
import { colorHost, formatDuration } from './format.js'

/** Options of the line reporter. */
export interface PlainReporterOptions {
  /** 0: steps; 1 (-v): commands and output; 2 (-vv): debug too. */
  verbosity: number
  color: boolean
  write: (line: string) => void
  /** Wrap each step in GitHub Actions `::group::` lines and annotate failures. */
  githubActions?: boolean
}

/**
 * Plain lines prefixed with `[host]`, for CI logs and pipes: no spinners, no
 * cursor movement, one line per thing that happened.
 */
export function createPlainReporter(options: PlainReporterOptions): (event: RunEvent) => void {
  const { verbosity, color, write } = options
  const c = color ? pc : pc.createColors(false)
  const prefix = (host: string) => `[${colorHost(host, color)}]`
  let openGroup: string | undefined
  const groupFor = (task: string) => {
    if (!options.githubActions || openGroup === task) return
    if (openGroup) write('::endgroup::')
    write(`::group::${task}`)
    openGroup = task
  }
  return (event) => {
    switch (event.type) {
      case 'run:start':
        write(c.bold(`${event.dryRun ? 'Dry run of' : 'Running'} ${event.task} on ${event.hosts.join(', ')}`))
        break
      case 'step:start':
        groupFor(event.task)
        if (verbosity >= 1) write(`${prefix(event.host)} ${event.recovery ? c.yellow('↺ ') : ''}${c.bold(event.task)}`)
        break
      case 'step:end': {
        const mark =
          event.status === 'ok' ? c.green('✔') : event.status === 'warning' ? c.yellow('⚠') : event.status === 'skipped' ? c.dim('-') : c.red('✖')
        write(`${prefix(event.host)} ${mark} ${event.task} ${c.dim(`${formatDuration(event.durationMs)}, ${event.roundTrips} round trips`)}`)
        if (event.status === 'failed' && event.error) {
          // In place: what failed; the full story (command, stderr, hint) closes the run.
          write(`${prefix(event.host)} ${c.red(event.error.message)}`)
          if (options.githubActions) write(`::error title=${event.task} failed on ${event.host}::${event.error.message.replace(/\n/g, '%0A')}`)
        }
        break
      }
      case 'command:start':
        if (verbosity >= 1) write(`${prefix(event.host)} ${c.dim(event.local ? 'local$' : '$')} ${event.command.split('\n').filter((l) => l !== 'set -e').join(`\n${' '.repeat(event.host.length + 5)}`)}`)
        break
      case 'command:output':
        if (verbosity >= 1) write(`${prefix(event.host)} ${event.stream === 'stderr' ? c.dim(event.text) : event.text}`)
        break
      case 'command:end':
        if (verbosity >= 2) write(`${prefix(event.host)} ${c.dim(`exit ${event.exitCode} in ${formatDuration(event.durationMs)}`)}`)
        break
      case 'log':
        if (event.level === 'debug' && verbosity < 2) break
        write(`${event.host ? `${prefix(event.host)} ` : ''}${event.level === 'warning' ? c.yellow(`⚠ ${event.message}`) : event.level === 'error' ? c.red(event.message) : event.message}`)
        if (event.level === 'warning' && options.githubActions) write(`::warning title=${event.task ?? 'deployfile'}::${event.message}`)
        break
      case 'recovery:start':
        if (openGroup && options.githubActions) write('::endgroup::')
        openGroup = undefined
        write(c.yellow(`↺ ${event.failedTask} failed on ${event.failedHost}${event.phase ? ` (${event.phase} phase)` : ''}: undoing on every host`))
        break
      case 'recovery:end':
        write(event.ok ? c.yellow('↺ recovery finished') : c.red('✖ recovery failed: hosts may need a look'))
        break
      case 'lock:held':
        write(`${prefix(event.host)} ${c.red(`lock held${event.owner ? ` by ${event.owner}` : ''}`)}`)
        break
      case 'transfer':
        if (verbosity >= 1 && event.done) write(`${prefix(event.host)} ${c.dim(`${event.direction} ${event.path}: ${event.bytes} bytes`)}`)
        break
      case 'run:end':
        if (openGroup && options.githubActions) write('::endgroup::')
        openGroup = undefined
        write(
          event.status === 'success'
            ? c.green(`✔ done in ${formatDuration(event.durationMs)}`)
            : c.red(`✖ ${event.status} (exit ${event.exitCode}) after ${formatDuration(event.durationMs)}`),
        )
        break
      default:
        break
    }
  }
}
