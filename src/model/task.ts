/**
 * When a task runs in a deploy, which decides what a failure does:
 * - `prepare`: before anyone switches; a failure discards the new release everywhere.
 * - `switch`: the atomic switch of `current`.
 * - `post-switch`: after the switch; a failure rolls every switched host back.
 * - `finish`: best effort (cleanup, notifications); a failure is a warning.
 */
export type Phase = 'prepare' | 'switch' | 'post-switch' | 'finish'

export const PHASES: readonly Phase[] = ['prepare', 'switch', 'post-switch', 'finish']

/** Options of a task. */
export interface TaskOptions {
  /** One line shown by `dep list` and `dep tree`. */
  description?: string
  /** Run on one host only (the first selected), e.g. database migrations. */
  once?: boolean
  /** Hide from `dep list` (internal steps). */
  hidden?: boolean
  /** At most this many hosts run the task at the same time. */
  limit?: number
  /** Run only on hosts matching this selector, e.g. `role=worker`. */
  select?: string
  /** The deploy phase this task belongs to; hooks inherit it from the task they hook. */
  phase?: Phase
}

/** The body of a task. It receives the context of the host it runs on. */
export type TaskBody<Ctx = unknown> = (ctx: Ctx) => unknown | Promise<unknown>

/** A task as the registry holds it. */
export interface TaskDefinition extends TaskOptions {
  readonly name: string
  /** The work, for a task with a body. */
  // biome-ignore lint/suspicious/noExplicitAny: bodies take the context type of their recipe; a parameter type is checked contravariantly, so only `any` holds them all
  readonly body?: TaskBody<any>
  /** The tasks it runs in order, for a group task. */
  readonly group?: readonly string[]
}
