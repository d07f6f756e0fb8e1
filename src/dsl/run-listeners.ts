import type { RunListener } from '../model/run-listener.js'
import { currentRegistry } from './registry-scope.js'

/**
 * Observes every run of this deployfile from the machine running `dep`, once per run (not once
 * per host): the listener receives each run event (`run:start`, `step:end` with the failed
 * step, `recovery:start`/`recovery:end` for the automatic revert, `release`, `run:end`), with
 * secrets already masked. For plugins that report a run as a whole: notifications, summaries.
 * The run awaits what the listener returns before it reports its end: bound it with a timeout.
 *
 * @example
 * onRunEvent(async (event, run) => {
 *   if (event.type === 'run:end' && event.status !== 'success') await page(run.redact(event.error?.message ?? ''))
 * })
 */
export function onRunEvent(listener: RunListener): void {
  currentRegistry().runListeners.push(listener)
}
