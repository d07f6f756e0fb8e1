/** The switch and what follows it: a failure from here on puts every host back on the release it served. */
import { DeployError, task } from 'deployfile'
import { failedHealthCheck } from '../healthcheck.js'
import { ledgerEntry, sendSwitch, thisRelease } from '../run.js'
import { healthCheck } from '../settings.js'

export function switchTasks(): void {
  task('deploy:symlink', async (ctx) => {
    const { run, name } = await thisRelease(ctx)
    await sendSwitch(ctx, run, name, [await ledgerEntry(ctx, name, 'live', { revision: run.revision })])
  }, { phase: 'switch', description: 'Switches current to the new release (one rename: atomic)' })

  task('deploy:healthcheck', async (ctx) => {
    const check = await healthCheck(ctx)
    if (!check) return
    // A dry run talks to nothing but the hosts' read-only probe.
    if (ctx.dryRun) return ctx.info(`would check ${check.url}`)
    const failure = await failedHealthCheck(check)
    if (failure) {
      throw new DeployError(`Health check ${check.url} failed after ${check.tries} tries: ${failure}`, {
        hint: 'The fleet goes back to the release it served. Check the application logs of the new release.',
      })
    }
  }, { phase: 'post-switch', description: 'Checks healthcheck_url after the switch (retries, timeout)' })
}
