/**
 * Exit codes that mean something to deployfile, of its own scripts and of the recipes' scripts.
 * A script exits with one of these (`exit ${ScriptExit.NotFound}` in an `sh` template) so that
 * the code that reads the result names what it checks instead of a bare number. Any other
 * non-zero code is a plain failure of the command.
 */
export const ScriptExit = {
  /** Done. */
  Ok: 0,
  /** The command failed; also what a command exits with when its working directory is missing (it did not run). */
  Failed: 1,
  /** The host is in a state the step refuses to change, e.g. `current` is a real directory, not a link. */
  RefusedState: 3,
  /** What the step was asked for does not exist, e.g. a git revision. */
  NotFound: 4,
  /** A tool or setting the step needs is missing on the host, e.g. `setfacl`, `composer`, `http_user`. */
  MissingPrerequisite: 5,
  /** A release the step needs is missing. */
  MissingRelease: 6,
  /** The script arrived cut short (the connection or this process died while sending it): it did not run. */
  IncompleteScript: 86,
} as const

/** One of the {@link ScriptExit} codes. */
export type ScriptExitCode = (typeof ScriptExit)[keyof typeof ScriptExit]
