/** Going back: undoing a failed deploy on every host, naming drift, and `dep rollback`. */
import { DeployError, task, type TaskContext } from 'deployfile'
import { validReleaseName } from '../checks.js'
import { driftError, hostEnds, recordDrift } from '../drift.js'
import { describeFleet, rollbackTarget } from '../fleet.js'
import { chosenRelease, fleetViews, hostRun, hostRuns, knownRun, ledgerEntry, putBack, sendSwitch, stuck } from '../run.js'
import { revertScript, switchedBack } from '../scripts.js'

/** The release every host goes back to (rollback_to, or the newest good one they all have); one decision per run. */
async function rollbackRelease(ctx: TaskContext): Promise<string> {
  const wanted = String(await ctx.get('rollback_to', ''))
  const decision = await ctx.shared('common:rollback', async () => rollbackTarget(await fleetViews(ctx), wanted ? validReleaseName(wanted) : undefined))
  if ('target' in decision) return decision.target
  throw new DeployError(`Nothing was rolled back: ${decision.reason}.`, {
    hint: `What each host has:\n${describeFleet(await fleetViews(ctx))}\nName a release present on every host with -o rollback_to=NAME.`,
  })
}

/** Why this run is being undone, for the ledger. */
function failureReason(ctx: TaskContext): string | undefined {
  if (!ctx.failure) return undefined
  if (ctx.failure.interrupted) return 'interrupted'
  return `${ctx.failure.task} failed on ${ctx.failure.host}${ctx.failure.leftOut ? '; left out of the run (--max-fail)' : ''}`
}

/** What a host left out of the run (--max-fail) stays on, for the run's closing lines. */
function leftOutNote(before: { current?: string; currentTarget?: string }): string {
  const serves = before.current ? `release ${before.current}` : (before.currentTarget ?? 'nothing (it had no release)')
  return `stays on ${serves}: drifted by choice (--max-fail); the next deploy converges it`
}

export function recoveryTasks(): void {
  task('deploy:revert', async (ctx) => {
    const run = await knownRun(ctx)
    const name = (await chosenRelease(ctx)).name
    // Left out on its own (--max-fail): the other hosts carry on; this one is undone like any other.
    if (run && ctx.failure?.leftOut) run.leftOut = true
    // Nothing of ours on this host: the lock was never taken (or belongs to another run), or no release was made.
    if (!run?.lockTaken || !name) {
      if (run && ctx.failure?.leftOut) ctx.warning(leftOutNote(run.before))
      return
    }
    const entry = await ledgerEntry(ctx, name, 'failed', { reason: failureReason(ctx), ...(ctx.failure?.leftOut ? { left_out: true } : {}) })
    const { before, layout, releaseCreated } = run
    const output = await ctx
      .run(revertScript({ layout, name, previousTarget: before.currentTarget, mvT: run.view.mvT, dropRelease: releaseCreated, entries: [entry] }))
      .catch(stuck(run))
    putBack(run, entry)
    if (ctx.failure?.leftOut) return ctx.warning(leftOutNote(before))
    if (!switchedBack(output)) return
    ctx.warning(before.currentTarget ? `switched back to ${before.current ? `release ${before.current}` : before.currentTarget}` : 'removed current (there was no earlier release)')
  }, { hidden: true, description: 'Undoes this run on the host: switches back to exactly the link it had, drops the release' })

  task('deploy:reverted', async () => {}, {
    hidden: true,
    description: 'Hook point: runs after hosts went back to an earlier release (automatic rollback and dep rollback)',
  })

  task('fleet:check', async (ctx) => {
    const runs = await hostRuns(ctx)
    const name = (await chosenRelease(ctx)).name
    // A host left out on its own (--max-fail) is checked alone: the others went on by choice, not a split.
    const hosts = ctx.failure?.leftOut ? [ctx.host] : ctx.hosts
    const ends = hostEnds(hosts, runs, name)
    const error = driftError(ends, name)
    if (!error) return
    await ctx.on(hosts.filter((h) => runs.get(h.alias)?.lockTaken), (c) => recordDrift(c, runs.get(c.host.alias)!, ends, name))
    throw error
  }, { hidden: true, once: true, description: 'Names hosts that serve another release than the fleet (drifted) and fails the run' })

  task('rollback:switch', async (ctx) => {
    const run = await hostRun(ctx)
    const target = await rollbackRelease(ctx)
    const from = run.view.current
    ctx.releaseEvent({ release: target, revision: run.view.releases.find((r) => r.name === target)?.revision, previous: from })
    if (from === target) return ctx.info(`already on release ${target}`)
    const entries = [...(from ? [await ledgerEntry(ctx, from, 'rolled_back')] : []), await ledgerEntry(ctx, target, 'live')]
    await sendSwitch(ctx, run, target, entries).catch(stuck(run))
    run.switched = false
    ctx.info(`current → release ${target}${from ? ` (release ${from} marked bad)` : ''}`)
  }, { hidden: true, description: 'Switches every host to one release: the newest good one on all of them older than the live one (or rollback_to)' })
}
