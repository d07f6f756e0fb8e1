import type { CliErrorEvent, ErrorInfo, PlannedStep, RunEvent } from '../model/events.js'

/** NDJSON: one run event per line (events arrive already masked). */
export function createJsonReporter(write: (line: string) => void): (event: RunEvent) => void {
  return (event) => write(JSON.stringify(event))
}

/** The one line `--json` prints when the command fails before a run starts. */
export function errorLine(error: ErrorInfo, exitCode: number): string {
  const event: CliErrorEvent = { type: 'error', time: Date.now(), exitCode, error }
  return JSON.stringify(event)
}

/** `dep <task> --plan --json`: the plan as one JSON line. */
export function planLine(plan: { task: string; hosts: string[]; steps: PlannedStep[]; recoverySteps: PlannedStep[]; batches?: string[][] }): string {
  return JSON.stringify({ type: 'plan', ...plan })
}
