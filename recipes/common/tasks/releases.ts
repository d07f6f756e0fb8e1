/** `dep releases`: what each host has, and whether the hosts agree. */
import { task } from 'deployfile'
import { describeDrift, releaseOrder } from '../fleet.js'
import { releasesTable } from '../releases-table.js'
import { fleetViews, probe } from '../run.js'

export function releasesTasks(): void {
  task('releases:show', async (ctx) => {
    const { view } = await probe(ctx, false)
    ctx.info(releasesTable(view, releaseOrder([view])))
  }, { hidden: true, description: 'Prints the release table of each host' })

  task('releases:compare', async (ctx) => {
    const views = await fleetViews(ctx)
    const drift = describeDrift(views.map((v) => ({ alias: v.alias, serves: v.current ?? v.currentTarget, drifted: false })))
    if (drift) ctx.warning(`hosts disagree on the live release: ${drift}. Converge them with: dep rollback (or dep deploy)`)
  }, { hidden: true, once: true, description: 'Points out hosts whose current release differs' })
}
