/**
 * What this run knows and did on each host: the probe's view, the layout,
 * and the run's own changes. Shared by every task of the run (ctx.shared).
 */
import { hostname, userInfo } from 'node:os'
import { ConnectionError, type TaskContext } from 'deployfile'
import type { LedgerEntry } from './ledger.js'
import { hostLayout, releaseDir, type Layout } from './layout.js'
import { describeOwner, type LockOwner } from './lock.js'
import { parseProbe, probeScript, type HostView } from './probe.js'
import { switchScript } from './scripts.js'

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
  /**
   * The host failed in a rolling deploy with --max-fail and was undone on its own: it stays on
   * what it served while the others went on (drifted by choice, not a split to report).
   */
  leftOut?: boolean
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
  const layout = await hostLayout(ctx)
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

/** A ledger record of this run. */
export async function ledgerEntry(ctx: TaskContext, release: string, status: LedgerEntry['status'], extra: Partial<LedgerEntry> = {}): Promise<LedgerEntry> {
  return { release, status, at: new Date().toISOString(), user: (await lockOwner(ctx)).user, run_id: ctx.runId, ...extra }
}

/** The release this run deploys: `name` is set once deploy:release chose it. */
export function chosenRelease(ctx: TaskContext): Promise<{ name?: string }> {
  return ctx.shared('common:release', async () => ({}))
}

/** This run's release on the host: its name and its directory in the layout. */
export async function thisRelease(ctx: TaskContext): Promise<{ run: HostRun; name: string; path: string }> {
  const run = await hostRun(ctx)
  const name = (await chosenRelease(ctx)).name ?? String(await ctx.get('release_name'))
  return { run, name, path: releaseDir(run.layout, name) }
}

/** Records that this run made release `name` on the host. */
export async function madeRelease(ctx: TaskContext, run: HostRun, name: string): Promise<void> {
  ;(await chosenRelease(ctx)).name = name
  run.releaseCreated = true
  run.view.releases.push({ name, complete: true, markedBad: false })
}

/** Records that `current` now points at release `name`, as the ledger entries say. */
export function switchedTo(run: HostRun, name: string, entries: LedgerEntry[]): void {
  run.view.ledger.push(...entries)
  run.view.current = name
  run.view.currentTarget = undefined
}

/** Records that the host was put back as the probe found it, with the ledger entry saying why. */
export function putBack(run: HostRun, entry: LedgerEntry): void {
  run.view = { ...structuredClone(run.before), lock: run.view.lock, ledger: [...run.view.ledger, entry] }
  run.switched = false
}

/** What a host serves, for messages: the release name, else the link target. */
export function servedBy(run: HostRun): string | undefined {
  return run.view.current ?? run.view.currentTarget
}

/**
 * Sends the switch of `current` to release `name` with its ledger entries.
 * The host counts as switched from the moment it is sent: a connection lost
 * mid-switch may have switched it; one that never connected did not.
 */
export async function sendSwitch(ctx: TaskContext, run: HostRun, name: string, entries: LedgerEntry[]): Promise<void> {
  run.switched = true
  try {
    await ctx.run(switchScript(run.layout, name, run.view.mvT, entries))
  } catch (error) {
    if (error instanceof ConnectionError && error.connecting) run.switched = false
    throw error
  }
  switchedTo(run, name, entries)
}

/** Remembers why the host could not be undone or switched (the summary names it), and rethrows. */
export function stuck(run: HostRun): (error: unknown) => never {
  return (error) => {
    run.stuck = error instanceof Error ? error.message : String(error)
    throw error
  }
}
