import type { RunEvent } from '../model/events.js'

/** NDJSON: one run event per line (events arrive already masked). */
export function createJsonReporter(write: (line: string) => void): (event: RunEvent) => void {
  return (event) => write(JSON.stringify(event))
}
