import type { FailureInfo } from '../dsl/context.js'
import type { ExitCodeValue } from '../model/errors.js'
import type { ErrorInfo } from '../model/events.js'

/** How a run ended. */
export interface RunOutcome {
  /** `partial`: every host went live but those left out by `--max-fail` (exit 7). */
  status: 'success' | 'partial' | 'failed' | 'rollback-failed' | 'interrupted'
  exitCode: ExitCodeValue
  /** The first failure, if any. */
  failure?: FailureInfo
  /** The raw error of the first failure. */
  error?: unknown
  /** Every failure when several hosts failed before any step ran (hosts that could not be reached); `failure` is the first. */
  errors?: ErrorInfo[]
  /** Failures of the recovery (fail hooks / rollback) itself. */
  recoveryErrors: ErrorInfo[]
  /** Warnings from best-effort (`finish`) steps. */
  warnings: ErrorInfo[]
  durationMs: number
}
