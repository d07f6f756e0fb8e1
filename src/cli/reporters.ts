import type { EventSink, RunEvent } from '../model/events.js'
import { createPlainReporter } from '../report/plain.js'
import { createJsonReporter } from '../report/json.js'
import { createLogFileReporter } from '../report/log-file.js'
import { runSummary } from '../report/format.js'
import { createStepSummaryReporter } from '../report/step-summary.js'
import type { CliOptions } from './options.js'
import { LineWriter } from './stdio.js'

const argv = () => process.argv.slice(2)

/** Whether output may use colour: --color/--no-color, then NO_COLOR, then FORCE_COLOR, then a TTY outside CI. */
export function useColor(options: CliOptions, stream: NodeJS.WriteStream = process.stdout): boolean {
  const args = argv()
  const forced = args.lastIndexOf('--color')
  const refused = args.lastIndexOf('--no-color')
  if (forced !== -1 || refused !== -1) return forced > refused
  if (options.color === false) return false
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false
  if (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '') return process.env.FORCE_COLOR !== '0' && process.env.FORCE_COLOR !== 'false'
  return Boolean(stream.isTTY) && !isCI()
}

/** True on a CI runner (CI=true and friends, GitHub Actions). */
export function isCI(): boolean {
  const ci = process.env.CI
  return (ci !== undefined && ci !== '' && ci !== '0' && ci !== 'false') || process.env.GITHUB_ACTIONS === 'true'
}

/** The live tree needs a real terminal: a TTY of known width, not CI, not TERM=dumb, not --json. */
export function useTerminalView(options: CliOptions, stream: NodeJS.WriteStream = process.stdout): boolean {
  // A terminal of unknown width (a pty nobody sized) would wrap the tree after every character.
  return !options.json && Boolean(stream.isTTY) && (stream.columns ?? 0) > 0 && !isCI() && process.env.TERM !== 'dumb'
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

/** The command line for the log file's header, with -o values left out (they may be secrets). */
function commandLine(): string {
  const args = argv()
  const shown = args.map((arg, i) => {
    const previous = args[i - 1]
    if ((previous === '-o' || previous === '--option') && arg.includes('=')) return `${arg.slice(0, arg.indexOf('='))}=…`
    if (/^(-o|--option=)[^=]+=/.test(arg)) return `${arg.slice(0, arg.indexOf('=', arg.startsWith('--option=') ? 9 : 0))}=…`
    return arg
  })
  return `dep ${shown.join(' ')} (in ${process.cwd()})`
}

/** The reporters a run writes to, as one sink, and a function that flushes them at the end. */
export async function createReporters(options: CliOptions, logFile?: string): Promise<{ sink: EventSink; close: () => Promise<void> }> {
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
    let task = ''
    let recovered = false
    let phase: string | undefined
    const color = useColor(options, process.stderr)
    sinks.push((event) => {
      if (event.type === 'run:start') task = event.task
      if (event.type === 'recovery:start') phase = event.phase
      if (event.type === 'recovery:end') recovered = event.ok === true
      if (event.type !== 'run:end' || event.status === 'success') return
      const summary = runSummary(event, { task, recoveryPhase: phase, recovered, color, hostCount: Object.keys(event.roundTrips).length })
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
        githubActions: process.env.GITHUB_ACTIONS === 'true',
      }),
    )
  }
  if (logFile) {
    const log = createLogFileReporter(logFile, {
      header: commandLine(),
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
    sink: (event: RunEvent) => sinks.forEach((sink) => sink(event)),
    // Idempotent: the run closes the reporters before printing anything else, and again on the way out.
    close: () =>
      (closing ??= (async () => {
        for (const close of closers) await close()
      })()),
  }
}
