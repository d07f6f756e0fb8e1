import { ConfigError } from '../model/errors.js'
import type { TaskBody, TaskOptions } from '../model/task.js'
import { PHASES } from '../model/task.js'
import type { TaskContext } from './context.js'
import { currentRegistry } from './registry-scope.js'

/**
 * Defines a task (redefining a name replaces the task). The body runs on each
 * selected host with that host's context; a list of names makes a group task.
 * Every option (description, once, hidden, limit, select, phase) goes in
 * `options`: one typed place, which the editor completes.
 *
 * @example task('build', async () => { await runLocally`npm run build` }, { description: 'Builds the assets' })
 * @example task('deploy', ['deploy:prepare', 'deploy:publish'])
 * @example task('migrate', async () => { await run`php artisan migrate --force` }, { once: true })
 */
export function task(name: string, body: TaskBody<TaskContext> | readonly string[], options: TaskOptions = {}): void {
  if (!name || typeof name !== 'string') throw new ConfigError('task() needs a name.')
  if (typeof body !== 'function' && !Array.isArray(body)) {
    throw new ConfigError(`task('${name}', …) needs a function or a list of task names.`)
  }
  if (options.phase && !PHASES.includes(options.phase)) {
    throw new ConfigError(`Task "${name}": phase must be one of ${PHASES.join(', ')}, got "${options.phase}".`)
  }
  const registry = currentRegistry()
  registry.defineTask({
    ...options,
    name,
    ...(typeof body === 'function' ? { body } : { group: [...body] }),
  })
  if (typeof body !== 'function') {
    const site = new Error()
    for (const member of body) registry.references.push({ name: member, call: `task('${name}', [${body.map((m) => `'${m}'`).join(', ')}])`, site })
  }
}

function hookTaskName(kind: 'before' | 'after' | 'fail', target: string, hook: string | TaskBody<TaskContext>): string {
  const registry = currentRegistry()
  // Both names are checked once the deployfile has loaded (tasks may be defined after their hooks).
  const site = new Error()
  const call = `${kind}('${target}', ${typeof hook === 'string' ? `'${hook}'` : '…'})`
  registry.references.push({ name: target, call, site })
  if (typeof hook === 'string') {
    registry.references.push({ name: hook, call, site })
    return hook
  }
  const name = registry.anonymousTaskName(kind, target)
  registry.defineTask({ name, body: hook, hidden: true })
  return name
}

/** Runs `hook` (a task name or a function) before `target`. */
export function before(target: string, hook: string | TaskBody<TaskContext>): void {
  currentRegistry().addHook('before', target, hookTaskName('before', target, hook))
}

/** Runs `hook` (a task name or a function) after `target`. */
export function after(target: string, hook: string | TaskBody<TaskContext>): void {
  currentRegistry().addHook('after', target, hookTaskName('after', target, hook))
}

/**
 * Runs `hook` on every selected host when `target` (run as the top-level task)
 * fails. Inside it, `ctx.failure` says what failed, where, and in which phase.
 */
export function fail(target: string, hook: string | TaskBody<TaskContext>): void {
  currentRegistry().fail.set(target, hookTaskName('fail', target, hook))
}

/** A recipe: a function that declares tasks, hooks and settings through this API. */
export type Recipe = () => void

/** Applies a recipe (once, however often it is used). */
export function use(recipe: Recipe): void {
  const registry = currentRegistry()
  if (registry.recipes.has(recipe)) return
  registry.recipes.add(recipe)
  recipe()
}
