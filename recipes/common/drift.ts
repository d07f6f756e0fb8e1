/**
 * fleet:check: where each host ended after a failed run, whether the fleet is
 * split, and the ledger record that lets the next run take over the locks.
 */
import { DeployError, ExitCode, type Host, type TaskContext } from 'deployfile'
import { describeDrift, type HostEnd } from './fleet.js'
import { ledgerAppend } from './scripts.js'
import { ledgerEntry, servedBy, type HostRun } from './run.js'

/**
 * Where each host this run looked at ended; `name` is the release the run deployed. A host left
 * out by --max-fail and undone is not part of the fleet's end: it stays where it was by choice
 * (`dep releases` shows it, the next deploy converges it); one that could not be undone is.
 */
export function hostEnds(hosts: Host[], runs: Map<string, HostRun>, name: string | undefined): HostEnd[] {
  return hosts.flatMap((host): HostEnd[] => {
    const run = runs.get(host.alias)
    if (!run) return []
    if (run.leftOut && run.stuck === undefined) return []
    if (run.stuck === undefined) return [{ alias: host.alias, serves: servedBy(run), drifted: false }]
    // The switch was sent but not confirmed: the host may serve either release.
    const serves = run.switched && run.view.current !== name ? `${servedBy(run) ?? 'nothing'} or ${name ?? '?'} (unconfirmed)` : servedBy(run)
    return [{ alias: host.alias, serves, drifted: true, reason: run.stuck }]
  })
}

/** The error that ends a run whose hosts did not all end up together (undefined when they did). */
export function driftError(ends: HostEnd[], name: string | undefined): DeployError | undefined {
  const drifted = ends.filter((e) => e.drifted)
  const split = describeDrift(ends)
  if (drifted.length === 0 && !split) return undefined
  const aliases = drifted.map((e) => e.alias).join(', ')
  const reasons = drifted.map((e) => `${e.alias}: ${(e.reason ?? 'unknown reason').replace(/\.$/, '')}`).join('; ')
  const converge = 'Once every host answers, converge the fleet with: dep rollback (or deploy again with dep deploy); it takes over the locks this run left.'
  if (!split) {
    return new DeployError(
      `${aliases} could not be cleaned up: every host serves ${ends[0]?.serves ?? 'nothing'}, but this run's lock${name ? ` (and release ${name}, if it was made)` : ''} is left there.`,
      { exitCode: ExitCode.RollbackFailed, hint: `${reasons}. ${converge}` },
    )
  }
  return new DeployError(`The fleet is split: ${split}.`, {
    exitCode: ExitCode.RollbackFailed,
    hint: `${drifted.length ? `${aliases} could not be brought back (${reasons}). ` : ''}${converge}`,
  })
}

/**
 * Records on a host this run locked who drifted, so the next run takes their
 * locks over. A host that went back queues it with its unlock (no extra round
 * trip); one that could not be undone is tried on its own, and may not answer.
 */
export async function recordDrift(ctx: TaskContext, run: HostRun, ends: HostEnd[], name: string | undefined): Promise<void> {
  const driftedHosts = ends.filter((e) => e.drifted).map((e) => e.alias)
  const entry = driftedHosts.includes(ctx.host.alias) && run.switched
    ? await ledgerEntry(ctx, servedBy(run) ?? '', 'drifted')
    : await ledgerEntry(ctx, name ?? servedBy(run) ?? '', 'failed', { drifted: driftedHosts })
  if (run.stuck === undefined) await ctx.queue(ledgerAppend(run.layout, entry))
  else await ctx.run(ledgerAppend(run.layout, entry), { quiet: true }).catch(() => undefined)
}
