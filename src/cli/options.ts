/** Options every `dep` command understands. */
export interface CliOptions {
  file?: string
  option: string[]
  limit?: number
  verbose: number
  plan?: boolean
  dryRun?: boolean
  /** With --dry-run: read nothing from the hosts either (no connection at all). */
  offline?: boolean
  json?: boolean
  log?: string
  /** Append a Markdown summary of the run to this file (GitHub's $GITHUB_STEP_SUMMARY). */
  summary?: string
  color?: boolean
  branch?: string
  tag?: string
  revision?: string
  force?: boolean
  yes?: boolean
  /** `--strategy rolling`: the 'switch' and 'post-switch' steps run batch by batch (default `all`). */
  strategy?: string
  /** With --strategy rolling: hosts per batch, a count (`2`) or a percentage of the selected hosts (`25%`). */
  batch?: string
  /** With --strategy rolling: a first batch of this many hosts; a failure there stops the run. */
  canary?: string
  /** With --strategy rolling: most hosts that may fail and be left out (a count or a percentage, rounded down). */
  maxFail?: string
  /** `dep <task> --help`: describe the task instead of running it. */
  help?: boolean
}

/** What the user asked for: a built-in command or a task, and the rest of the words. */
export interface Invocation {
  name: string
  args: string[]
  options: CliOptions
}
