import { AsyncLocalStorage } from 'node:async_hooks'
import { taskContextStorage } from '../dsl/ambient.js'
import type { AbortHandlerEntry, RunState } from './run-state.js'

/** How long every abort handler gets, together: the user asked to stop now. */
export const ABORT_HANDLERS_TIMEOUT_MS = 5_000

/*
 * Set while abort handlers run: their commands get no abort signal (the run's
 * signal is already aborted, and would stop them before they start). On
 * globalThis, like the task context store, so every copy of this module agrees.
 */
const KEY = Symbol.for('deployfile.abortHandling')
type Holder = { [KEY]?: AsyncLocalStorage<true> }
const holder = globalThis as Holder
export const abortHandling: AsyncLocalStorage<true> = (holder[KEY] ??= new AsyncLocalStorage<true>())

/**
 * Runs every registered abort handler at once, bounded by `timeoutMs` in
 * total, and prints each returned line as a warning for its host (in host
 * order). A handler that throws or does not answer in time gets a line too,
 * so every host that asked to be told about is named.
 */
export async function runAbortHandlers(state: RunState, timeoutMs = ABORT_HANDLERS_TIMEOUT_MS): Promise<void> {
  const entries = state.abortHandlers.splice(0)
  if (entries.length === 0) return
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs)
  })
  const seconds = Math.round(timeoutMs / 100) / 10
  const lines = await Promise.all(
    entries.map(async (entry): Promise<string | undefined> => {
      try {
        const running = abortHandling.run(true, () => taskContextStorage.run(entry.ctx, async () => entry.handler()))
        const answer = await Promise.race([running, deadline])
        if (answer === TIMED_OUT) {
          // Still running: its promise may reject later, when the connections close.
          running.catch(() => undefined)
          return `${entry.task}: no answer within ${seconds} s on what is left on ${entry.host.alias}; check this host by hand.`
        }
        return answer ?? undefined
      } catch (error) {
        return `${entry.task}: could not tell what is left on ${entry.host.alias}: ${error instanceof Error ? error.message : String(error)}`
      }
    }),
  )
  clearTimeout(timer)
  const order = (entry: AbortHandlerEntry) => state.hosts.indexOf(entry.host)
  const indexed = entries.map((entry, i) => ({ entry, line: lines[i] })).sort((a, b) => order(a.entry) - order(b.entry))
  for (const { entry, line } of indexed) {
    // Forced: the plan's own events are silenced while the run stops at once.
    if (line) state.emit({ type: 'log', level: 'warning', host: entry.host.alias, task: entry.task, message: line }, true)
  }
}

const TIMED_OUT = Symbol('timed out')
