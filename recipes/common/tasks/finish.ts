/** The finish phase (best effort: the new release is live) and the lock on its own. */
import { task } from 'deployfile'
import { fleetBad, releaseOrder, releasesToRemove } from '../fleet.js'
import { forceUnlock, lockStatus, refuseOthersLock, releaseLock } from '../locking.js'
import { chosenRelease, fleetViews, hostRun, knownRun } from '../run.js'
import { removeReleasesScript } from '../scripts.js'

export function finishTasks(): void {
  task('deploy:unlock', async (ctx) => {
    if (await ctx.get('force', false)) return forceUnlock(ctx)
    const run = await knownRun(ctx)
    if (run) return releaseLock(ctx, run)
    // Undoing a failed run that never looked at this host: nothing of ours is there.
    if (!ctx.failure) await refuseOthersLock(ctx)
  }, { phase: 'finish', description: 'Releases the deploy lock (--force: whoever holds it)' })

  task('deploy:is_locked', async (ctx) => {
    ctx.info(await lockStatus(ctx))
  }, { description: 'Says whether a deploy lock is held, and by whom' })

  task('deploy:cleanup', async (ctx) => {
    const run = await hostRun(ctx)
    const views = await fleetViews(ctx)
    const made = (await chosenRelease(ctx)).name
    const removed = releasesToRemove(run.view, await ctx.get('keep_releases'), releaseOrder(views), made ? [made] : [], fleetBad(views))
    if (removed.length === 0) return
    await ctx.queue(removeReleasesScript(run.layout, removed))
    run.view.releases = run.view.releases.filter((r) => !removed.includes(r.name))
    ctx.info(`removing ${removed.length} old release(s): ${removed.join(', ')}`)
  }, { phase: 'finish', description: 'Keeps the keep_releases newest good releases (failed ones go first; never the live one or the one before)' })

  task('deploy:success', async (ctx) => {
    ctx.info(`release ${await ctx.get('release_name')} ${ctx.dryRun ? 'would go live' : 'is live'} on ${ctx.host.alias}`)
  }, { phase: 'finish', description: 'Says the deploy succeeded (hook your notifications here)' })
}
