import type { RunEvent } from './events.js'

/** What a {@link RunListener} can use besides the event: the run's settings, its masking and its output. */
export interface RunListenerContext {
  /**
   * Reads a setting as the whole run sees it (`-o` overrides, then global settings, then
   * defaults; templated), not one host's: a listener runs once per run, on this machine.
   */
  get<T = unknown>(key: string, fallback?: T): Promise<T>
  /** True when the setting has a value for the run. */
  has(key: string): boolean
  /** `text` with every secret of the run masked as `***`. */
  redact(text: string): string
  /** Prints a warning for the run (every reporter shows it; `--json` emits a `log` event). */
  warning(message: string): void
  /** True during `--dry-run`. */
  readonly dryRun: boolean
}

/**
 * Observes a run from the machine running `dep`, once per run (not once per host): it receives
 * every run event, already masked. A promise it returns is awaited before the run reports its
 * end, so a listener that sends something at `run:end` must bound its own time (a timeout); its
 * warnings then appear before the closing summary. A listener that throws is reported as a
 * warning and never changes how the run ends.
 */
export type RunListener = (event: RunEvent, run: RunListenerContext) => void | Promise<void>
