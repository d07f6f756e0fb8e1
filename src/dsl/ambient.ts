import { AsyncLocalStorage } from 'node:async_hooks'
import { DeployError } from '../model/errors.js'
import type { TaskContext } from './context.js'

/*
 * The ambient store: the context of the task running in the current async
 * flow, which the top-level functions (`run`, `get`, …) act on, so hosts run
 * truly in parallel in one process. The executor fills it around every task
 * body. It lives on globalThis: a deployfile loaded through a TypeScript loader
 * may get its own copy of this module, and both copies must see the context of
 * the task that is running.
 */
const KEY = Symbol.for('deployfile.taskContext')
type Holder = { [KEY]?: AsyncLocalStorage<TaskContext> }
const holder = globalThis as Holder
export const taskContextStorage: AsyncLocalStorage<TaskContext> = (holder[KEY] ??= new AsyncLocalStorage<TaskContext>())

/** The context of the task running on the current host; an error outside a task. */
export function currentTaskContext(fn: string): TaskContext {
  const ctx = taskContextStorage.getStore()
  if (!ctx) {
    throw new DeployError(`${fn}() can only be called inside a task.`, {
      hint: `Move the call into task('name', async () => { … }).`,
    })
  }
  return ctx
}
