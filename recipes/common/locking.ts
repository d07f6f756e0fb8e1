/**
 * The deploy lock as steps: take it fleet-wide, hold it until the run ends
 * (an abort leaves it marked), release it, or say who holds it. The scripts
 * are in ./lock.ts; what this run holds is in its HostRun.
 */
import { type DeployError, ExitCode, LockHeldError, type TaskContext } from 'deployfile'
import { runsThatDrifted } from './fleet.js'
import {
  describeOwner,
  forceUnlockScript,
  lockCreateError,
  markLockScript,
  takeoverLockScript,
  tookLock,
  unlockScript,
  type LockOwner,
} from './lock.js'
import { hostLayout } from './layout.js'
import { releaseNameOf } from './probe.js'
import { fleetViews, hostRuns, lockOwner, probe, type HostRun } from './run.js'
import { joinCommands, readCurrentScript } from './scripts.js'

/**
 * Takes the deploy lock on every selected host: the first host first, so of
 * several deploys started at once exactly one gets past it, then the others.
 * A lock left by a run that is known to be gone (it was aborted, or its run
 * recorded that it left this host drifted) is taken over.
 */
export function lockFleet(ctx: TaskContext): Promise<{ leaderLocked: boolean }> {
  return ctx.shared('common:lock', async () => {
    const [leader, ...others] = ctx.hosts
    const first = (await ctx.on(leader, (c) => probe(c, true)))[0]
    const lockOthers = first.lockTaken
    await ctx.on(others, (c) => probe(c, lockOthers))
    const runs = await hostRuns(ctx)
    const views = ctx.hosts.map((h) => runs.get(h.alias)!.view)
    const owner = await lockOwner(ctx)
    const stale = (run: HostRun) => {
      const held = run.view.lock.owner
      if (run.view.lock.state !== 'held' || !held?.run_id) return false
      return held.state !== undefined || runsThatDrifted(views, run.view.alias).has(held.run_id)
    }
    const takeOver = async (c: TaskContext, run: HostRun) => {
      const output = await c.run(takeoverLockScript(run.layout, run.view.lock.owner!.run_id!, owner), { quiet: true })
      if (tookLock(output)) {
        c.warning(`took over the lock left by ${describeOwner(run.view.lock.owner, run.view.now)}`)
        run.lockTaken = true
        run.view.lock = { state: 'taken' }
      }
    }
    if (!first.lockTaken && stale(first)) {
      await ctx.on(leader, (c) => takeOver(c, first))
      if (first.lockTaken) await ctx.on(others, (c) => probe(c, true))
    }
    if (!first.lockTaken) return { leaderLocked: false }
    await ctx.on(others.filter((h) => stale(runs.get(h.alias)!)), (c) => takeOver(c, runs.get(c.host.alias)!))
    return { leaderLocked: true }
  })
}

/** The error for a host whose lock this run could not take (undefined when it holds it). */
export function lockFailure(run: HostRun): DeployError | undefined {
  const { view, layout } = run
  if (run.lockTaken) return undefined
  if (view.setupError) return lockCreateError(view.alias, layout.deployPath, view.setupError)
  switch (view.lock.state) {
    case 'error':
      return lockCreateError(view.alias, layout.lockDir, view.lock.error ?? 'unknown error')
    case 'broken':
      return new LockHeldError(
        `The deploy lock on ${view.alias} is broken: ${layout.lockDir} has no owner.json (a run died while taking it, or an older version left it).`,
        `Nothing holds it. Remove it with: dep deploy:unlock --force ${view.alias}`,
      )
    case 'held':
      return new LockHeldError(
        `The deploy lock on ${view.alias} is held by ${describeOwner(view.lock.owner, view.now)}.`,
        `Wait for that deploy to finish. If it died, remove the lock with: dep deploy:unlock --force ${view.alias}`,
      )
    default:
      return undefined
  }
}


/**
 * deploy:lock on a host whose lock this run took: until it is released, a
 * stop at once (a second Ctrl-C) leaves it marked so the next deploy or
 * rollback takes it over.
 */
export async function holdLock(ctx: TaskContext, run: HostRun): Promise<void> {
  const owner = await lockOwner(ctx)
  run.forgetAbort = ctx.onAbort(() => abortedHostLine(ctx, run, owner))
  ctx.lockEvent('lock:taken', owner.user)
}

/** deploy:lock on a host whose lock this run could not take: fails naming why (a held lock names its owner). */
export function failLock(ctx: TaskContext, run: HostRun): void {
  const failure = lockFailure(run)
  if (!failure) return
  if (run.view.lock.state === 'held') ctx.lockEvent('lock:held', describeOwner(run.view.lock.owner, run.view.now))
  throw failure
}

/**
 * deploy:unlock on a host this run looked at: releases the lock it took. A
 * lock it never took is not its to release; after a failure, a host that
 * could not be undone keeps it (fleet:check named it; the next deploy or
 * rollback takes it over). A lock left behind exits 6 naming the host.
 */
export async function releaseLock(ctx: TaskContext, run: HostRun): Promise<void> {
  if (!run.lockTaken) return
  if (ctx.failure && run.stuck !== undefined) {
    return ctx.warning('lock kept: this host could not be undone (named below); the next dep deploy or dep rollback takes the lock over')
  }
  await ctx.queue(unlockScript(run.layout, ctx.runId), {
    failure: {
      exitCode: ExitCode.LockNotReleased,
      hint: `The lock on ${ctx.host.alias} is still held by this run. Remove it with: dep deploy:unlock --force ${ctx.host.alias}`,
    },
  })
  run.lockTaken = false
  run.forgetAbort?.()
  ctx.lockEvent('lock:released')
}

/** `dep deploy:unlock --force`: removes the lock whoever holds it, naming the owner. */
export async function forceUnlock(ctx: TaskContext): Promise<void> {
  ctx.info(await ctx.run(forceUnlockScript(await hostLayout(ctx))))
  ctx.lockEvent('lock:released')
}

/** `dep deploy:unlock` without --force on a host this run did not lock: another run's lock is refused. */
export async function refuseOthersLock(ctx: TaskContext): Promise<void> {
  const run = await probe(ctx, false)
  if (run.view.lock.state !== 'held' && run.view.lock.state !== 'broken') return ctx.info('not locked')
  const failure = lockFailure(run)!
  throw new LockHeldError(`${failure.message} Only the run that took it removes it.`, `If that run is dead: dep deploy:unlock --force ${ctx.host.alias}`)
}

/** `dep deploy:is_locked`: who holds the lock, and whether the next run takes it over. */
export async function lockStatus(ctx: TaskContext): Promise<string> {
  const { view } = await probe(ctx, false)
  const owner = view.lock.owner
  if (view.lock.state === 'broken') return `broken lock (no owner.json): remove it with dep deploy:unlock --force ${ctx.host.alias}`
  if (view.lock.state !== 'held') return 'not locked'
  const drifted = owner?.run_id && runsThatDrifted(await fleetViews(ctx), ctx.host.alias).has(owner.run_id)
  return `locked by ${describeOwner(owner, view.now)}${drifted ? ' (that run left this host drifted; the next deploy or rollback takes the lock over)' : ''}`
}

/**
 * What a host is left with when the run is stopped at once (a second Ctrl-C):
 * its lock stays, marked interrupted so the next deploy or rollback takes it
 * over, and the line says what `current` serves now.
 */
async function abortedHostLine(ctx: TaskContext, run: HostRun, owner: LockOwner): Promise<string> {
  const { layout } = run
  const output = await ctx.run(joinCommands([markLockScript(layout, owner, 'interrupted'), readCurrentScript(layout)]), { quiet: true, nothrow: true })
  const target = output.trim().replace(/\/+$/, '')
  const release = target ? releaseNameOf(layout, target) : undefined
  const serves = !target ? 'serves nothing (no current link)' : release ? `serves release ${release}` : `serves ${target}`
  return `${ctx.host.alias} ${serves}; its lock is kept, marked interrupted: the next dep deploy or dep rollback takes it over`
}
