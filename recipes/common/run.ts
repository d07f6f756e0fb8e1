/**
 * What this run knows and did on each host: the probe's view, the layout,
 * and the run's own changes. Shared by every task of the run (ctx.shared).
 */
import { hostname, userInfo } from 'node:os'
import { DeployError, LockHeldError, parseMarkers, sh, type TaskContext } from 'deployfile'
import { runsThatDrifted } from './fleet.js'
import type { LedgerEntry } from './ledger.js'
import { layoutOf, type Layout } from './layout.js'
import { describeOwner, lockCreateError, markLockScript, takeoverLockScript, type LockOwner } from './lock.js'
import { parseProbe, probeScript, releaseNameOf, type HostView } from './probe.js'

export interface HostRun {
  layout: Layout
  /** The host as the probe found it, updated with what this run changed. */
  view: HostView
  /** The view as the probe found it (what revert restores). */
  before: HostView
  lockTaken: boolean
  /** This run created the release directory. */
  releaseCreated: boolean
  /** The revision this run deployed. */
  revision?: string
  /** This run moved `current` to the new release. */
  switched: boolean
  /** Undoing this run on the host (or switching it back) failed: why. The host is named in the summary. */
  stuck?: string
  /** Forgets the abort handler that marks this host's lock interrupted (the lock is released). */
  forgetAbort?: () => void
}

/** Every host's run state, by alias. */
export function hostRuns(ctx: TaskContext): Promise<Map<string, HostRun>> {
  return ctx.shared('common:runs', async () => new Map<string, HostRun>())
}

/** This host's run state, if the run probed it. */
export async function knownRun(ctx: TaskContext): Promise<HostRun | undefined> {
  return (await hostRuns(ctx)).get(ctx.host.alias)
}

/** The owner record this run writes into locks. */
export async function lockOwner(ctx: TaskContext): Promise<LockOwner> {
  return ctx.shared('common:owner', async () => ({
    user: String(await ctx.get('user', userInfo().username)),
    machine: hostname(),
    pid: process.pid,
    run_id: ctx.runId,
    started_at: new Date().toISOString(),
  }))
}

/** Probes the host (one round trip), taking the lock when `lock` is set, and remembers the view. */
export async function probe(ctx: TaskContext, lock: boolean): Promise<HostRun> {
  const layout = await layoutOf(ctx)
  // A dry run reads the host (the probe without an owner changes nothing) and takes no lock.
  const takeLock = lock && !ctx.dryRun
  const output = await ctx.run(probeScript(layout, takeLock ? await lockOwner(ctx) : undefined), { quiet: true, readOnly: !takeLock })
  const view = parseProbe(ctx.host.alias, layout, output)
  if (ctx.dryRun && lock) {
    if (view.lock.state === 'held') ctx.warning(`the lock is held by ${describeOwner(view.lock.owner, view.now)}: a real run would stop here (exit 4)`)
    // Offline, nothing answered: a layout yet to be made, as far as the dry run can tell.
    view.lock = { state: 'taken' }
  }
  const run: HostRun = { layout, view, before: structuredClone(view), lockTaken: view.lock.state === 'taken', releaseCreated: false, switched: false }
  ;(await hostRuns(ctx)).set(ctx.host.alias, run)
  return run
}

/** This host's run state, probing it read-only when the run has not looked yet. */
export async function hostRun(ctx: TaskContext): Promise<HostRun> {
  return (await knownRun(ctx)) ?? probe(ctx, false)
}

/** Every selected host's view (probing, read-only, those not seen yet). */
export async function fleetViews(ctx: TaskContext): Promise<HostView[]> {
  return (await ctx.on(ctx.hosts, (c) => hostRun(c))).map((run) => run.view)
}

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
      if (parseMarkers(output).get('lock') === 'taken') {
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
export function lockFailure(ctx: TaskContext, run: HostRun): DeployError | undefined {
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

/** A ledger record of this run. */
export async function ledgerEntry(ctx: TaskContext, release: string, status: LedgerEntry['status'], extra: Partial<LedgerEntry> = {}): Promise<LedgerEntry> {
  return { release, status, at: new Date().toISOString(), user: (await lockOwner(ctx)).user, run_id: ctx.runId, ...extra }
}

/** The release this run deploys: `name` is set once deploy:release chose it. */
export function chosenRelease(ctx: TaskContext): Promise<{ name?: string }> {
  return ctx.shared('common:release', async () => ({}))
}

/**
 * What a host is left with when the run is stopped at once (a second Ctrl-C):
 * its lock stays, marked interrupted so the next deploy or rollback takes it
 * over, and the line says what `current` serves now.
 */
export async function abortedHostLine(ctx: TaskContext, run: HostRun, owner: LockOwner): Promise<string> {
  const { layout } = run
  const output = await ctx.run(sh`${markLockScript(layout, owner, 'interrupted')}
readlink -- ${layout.currentPath} || true`, { quiet: true, nothrow: true })
  const target = output.trim().replace(/\/+$/, '')
  const release = target ? releaseNameOf(layout, target) : undefined
  const serves = !target ? 'serves nothing (no current link)' : release ? `serves release ${release}` : `serves ${target}`
  return `${ctx.host.alias} ${serves}; its lock is kept, marked interrupted: the next dep deploy or dep rollback takes it over`
}
