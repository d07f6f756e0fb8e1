import type { EventSink, RunEvent } from '../model/events.js'
import { createPlainReporter } from '../report/plain.js'
import { createJsonReporter } from '../report/json.js'
import { createLogFileReporter } from '../report/log-file.js'
import { runSummary } from '../report/format.js'
import { createStepSummaryReporter } from '../report/step-summary.js'
import ci from 'ci-info'
import type { CliOptions, Invocation } from './options.js'
import { LineWriter } from './stdio.js'

/**
 * Whether output may use colour: --color/--no-color (commander keeps the last one given), then
 * NO_COLOR, then FORCE_COLOR, then a TTY outside CI (docs/output.md). Not picocolors'
 * `isColorSupported`: it turns colour on in CI and for FORCE_COLOR=0, looks at stdout only (the
 * closing report goes to stderr), and is fixed when the module loads.
 */
export function useColor(options: CliOptions, stream: NodeJS.WriteStream = process.stdout, onCI = ci.isCI): boolean {
  if (options.color !== undefined) return options.color
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false
  if (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '') return process.env.FORCE_COLOR !== '0' && process.env.FORCE_COLOR !== 'false'
  return Boolean(stream.isTTY) && !onCI
}

/** The live tree needs a real terminal: a TTY of known width, not CI (ci-info), not TERM=dumb, not --json. */
export function useTerminalView(options: CliOptions, stream: NodeJS.WriteStream = process.stdout, onCI = ci.isCI): boolean {
  // A terminal of unknown width (a pty nobody sized) would wrap the tree after every character.
  return !options.json && Boolean(stream.isTTY) && (stream.columns ?? 0) > 0 && !onCI && process.env.TERM !== 'dumb'
}

/**
 * A reader that went away (`dep list | head`) must not crash the run: EPIPE
 * on stdout or stderr is ignored and the command finishes (a deploy is not
 * abandoned halfway because nobody reads its output any more).
 */
export function ignoreBrokenPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error
    })
  }
}

/**
 * The command line for the log file's header, from what commander parsed, with -o values left out
 * (they may be secrets).
 */
export function commandLine(invocation: Invocation): string {
  const { name, args, options } = invocation
  const words = ['dep', name, ...args]
  for (const option of options.option) words.push('-o', option.includes('=') ? `${option.slice(0, option.indexOf('='))}=…` : option)
  const flags: Array<[keyof CliOptions, string]> = [['file', '--file'], ['limit', '--limit'], ['branch', '--branch'], ['tag', '--tag'], ['revision', '--revision'], ['log', '--log']]
  for (const [key, flag] of flags) if (options[key] !== undefined) words.push(flag, String(options[key]))
  if (options.verbose > 0) words.push(`-${'v'.repeat(options.verbose)}`)
  for (const key of ['plan', 'dryRun', 'offline', 'json', 'force', 'yes'] as const) if (options[key]) words.push(`--${key === 'dryRun' ? 'dry-run' : key}`)
  if (options.color !== undefined) words.push(options.color ? '--color' : '--no-color')
  return `${words.join(' ')} (in ${process.cwd()})`
}

/** The reporters a run writes to, as one sink, and a function that flushes them at the end. */
export async function createReporters(invocation: Invocation, logFile?: string): Promise<{ sink: EventSink; close: () => Promise<void> }> {
  const { options } = invocation
  const sinks: EventSink[] = []
  const closers: Array<() => Promise<void>> = []
  // Stdout is batched: a command printing a million lines must not cost a million write(2)s. A line
  // for stderr (rare) flushes stdout's batch first, so the two stay in order on one terminal.
  const stdout = new LineWriter(process.stdout)
  const line = (stream: NodeJS.WriteStream) =>
    stream === process.stdout
      ? (text: string) => stdout.line(text)
      : (text: string) => {
          stdout.flush()
          stream.write(`${text}\n`)
        }

  if (options.json) {
    sinks.push(createJsonReporter(line(process.stdout)))
    // Humans still learn how it ended, on stderr; stdout stays pure NDJSON.
    const color = useColor(options, process.stderr)
    sinks.push((event) => {
      if (event.type !== 'run:end' || event.status === 'success') return
      const summary = runSummary(event, color)
      for (const text of [...summary.details, summary.status]) process.stderr.write(`${text}\n`)
    })
  } else if (useTerminalView(options)) {
    const { createListrReporter } = await import('../report/listr.js')
    const view = createListrReporter({ verbosity: options.verbose, color: useColor(options) })
    sinks.push(view.sink)
    closers.push(view.close)
  } else {
    sinks.push(
      createPlainReporter({
        verbosity: options.verbose,
        color: useColor(options),
        write: line(process.stdout),
        writeError: line(process.stderr),
        githubActions: ci.GITHUB_ACTIONS,
      }),
    )
  }
  if (logFile) {
    const log = createLogFileReporter(logFile, {
      header: commandLine(invocation),
      onError: (error) => process.stderr.write(`⚠ cannot write the log file ${logFile}: ${error.message}\n`),
    })
    sinks.push(log.sink)
    closers.push(log.close)
  }
  if (options.summary) {
    const file = options.summary
    sinks.push(createStepSummaryReporter(file, (error) => process.stderr.write(`⚠ cannot write the summary file ${file}: ${error.message}\n`)))
  }
  closers.push(async () => stdout.flush())
  let closing: Promise<void> | undefined
  return {
    sink: (event: RunEvent) => {
      for (const sink of sinks) sink(event)
    },
    // Idempotent: the run closes the reporters before printing anything else, and again on the way out.
    close: () =>
      (closing ??= (async () => {
        for (const close of closers) await close()
      })()),
  }
}
