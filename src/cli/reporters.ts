import type { EventSink, RunEvent } from '../model/events.js'
import { createPlainReporter } from '../report/plain.js'
import { createJsonReporter } from '../report/json.js'
import { createLogFileReporter } from '../report/log-file.js'
import type { CliOptions } from './options.js'

/** Whether output may use colour: --color/--no-color, then NO_COLOR/FORCE_COLOR, then a TTY. */
export function useColor(options: CliOptions, stream: NodeJS.WriteStream = process.stdout): boolean {
  if (options.color === true && process.argv.includes('--color')) return true
  if (process.argv.includes('--no-color')) return false
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false
  if (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0') return true
  return Boolean(stream.isTTY) && !process.env.CI
}

/** The reporters a run writes to, as one sink, and a function that flushes them at the end. */
export function createReporters(options: CliOptions, logFile?: string): { sink: EventSink; close: () => Promise<void> } {
  const sinks: EventSink[] = []
  const closers: Array<() => Promise<void>> = []
  if (options.json) {
    sinks.push(createJsonReporter((line) => process.stdout.write(`${line}\n`)))
  } else {
    const githubActions = process.env.GITHUB_ACTIONS === 'true'
    sinks.push(
      createPlainReporter({
        verbosity: options.verbose,
        color: useColor(options),
        write: (line) => process.stdout.write(`${line}\n`),
        githubActions,
      }),
    )
  }
  if (logFile) {
    const log = createLogFileReporter(logFile)
    sinks.push(log.sink)
    closers.push(log.close)
  }
  return {
    sink: (event: RunEvent) => sinks.forEach((sink) => sink(event)),
    close: async () => {
      for (const close of closers) await close()
    },
  }
}
