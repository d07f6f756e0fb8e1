import { taskContextStorage } from '../dsl/ambient.js'
import { TaskContext } from './context.js'
import type { RunState } from './run-state.js'

/**
 * Runs the registry's secret sources (secretsFrom()) for every host and registers what they
 * return, so those values are masked from the run's first line. Each host's sources run in a
 * context of that host, so the lazy settings they read can be computed (and are then kept for
 * the run). A source that fails (a dotenv file that is not there) is reported as a warning: the
 * task that needs the value fails on its own.
 */
export async function loadSecretSources(state: RunState): Promise<void> {
  const sources = state.registry.secretSources
  if (sources.length === 0) return
  await Promise.all(
    state.hosts.map((host) => {
      const ctx = new TaskContext(host, 'secretsFrom', state)
      return taskContextStorage.run(ctx, async () => {
        for (const source of sources) {
          try {
            for (const value of await source({ get: (key) => ctx.get(key), has: (key) => ctx.has(key) })) state.secrets.add(value)
          } catch (error) {
            state.emit({
              type: 'log',
              level: 'warning',
              host: host.alias,
              message: `Could not compute the values to mask from the settings (${(error as Error).message}): they are not masked in this run.`,
            })
          }
        }
      })
    }),
  )
}
