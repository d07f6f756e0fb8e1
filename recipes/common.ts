/**
 * The common deploy recipe: zero-downtime releases with an atomic lock, a
 * release ledger and fleet-wide automatic rollback. Built only on the public
 * API. Use it with `use(common)`.
 *
 * Every decision that must agree across hosts (the release name, the rollback
 * target, what cleanup removes, who drifted) is a pure function of the fleet
 * view in ./common/fleet.ts; the tasks below read that view and run builders.
 */
import { existsSync } from 'node:fs'
import { userInfo } from 'node:os'
import { resolve } from 'node:path'
import { setDefault, ConfigError, ConnectionError, context, DeployError, ExitCode, fail, has, LockHeldError, sh, task, type Recipe, type TaskContext } from 'deployfile'
import {
  describeDrift,
  describeFleet,
  fleetBad,
  nextReleaseName,
  releaseNameConflict,
  releaseOrder,
  releasesToRemove,
  rollbackTarget,
  runsThatDrifted,
  type HostEnd,
} from './common/fleet.js'
import { releaseDir, layoutOf } from './common/layout.js'
import { type LedgerEntry } from './common/ledger.js'
import { describeOwner, forceUnlockScript, unlockScript } from './common/lock.js'
import { releasesTable } from './common/releases-table.js'
import {
  abortedHostLine,
  chosenRelease,
  fleetViews,
  hostRun,
  hostRuns,
  knownRun,
  ledgerEntry,
  lockFailure,
  lockFleet,
  lockOwner,
  probe,
  type HostRun,
} from './common/run.js'
import {
  clearPathsScript,
  copyDirsScript,
  createReleaseScript,
  gitExportScript,
  ledgerAppend,
  removeReleasesScript,
  revertScript,
  sharedScript,
  switchScript,
  writableScript,
} from './common/scripts.js'

export type { LedgerEntry }
export type { HostView } from './common/probe.js'

/** True while this run prepares a release on the host (its directory exists); recipes use it to pick the app path. */
export async function isPreparingRelease(ctx: TaskContext): Promise<boolean> {
  return (await knownRun(ctx))?.releaseCreated ?? false
}

const RELEASE_NAME = /^[A-Za-z0-9._][A-Za-z0-9._-]*$/

function validReleaseName(name: string): string {
  if (!RELEASE_NAME.test(name) || name === '.' || name === '..') {
    throw new ConfigError(`Release name "${name}" is not valid.`, 'Use letters, digits, dots, dashes and underscores (not starting with a dash).')
  }
  return name
}

/** The revision of an uploaded directory: the `revision` setting, its git HEAD, or the time; asked once per run. */
async function localRevision(ctx: TaskContext, directory: string): Promise<string> {
  if (ctx.has('revision')) return String(await ctx.get('revision'))
  return ctx.shared(`common:revision:${directory}`, async () => {
    const rev = await ctx.runLocally(sh`git -C ${directory} rev-parse HEAD 2>/dev/null || true`, { quiet: true })
    return rev.trim() || `upload ${new Date().toISOString()}`
  })
}

/** What a host serves, for messages: the release name, else the link target. */
function servedBy(run: HostRun): string | undefined {
  return run.view.current ?? run.view.currentTarget
}

/** Tells reporters and run listeners which release this host gets, with its revision (one event per host). */
async function announceRelease(ctx: TaskContext, run: HostRun): Promise<void> {
  const name = (await chosenRelease(ctx)).name
  if (name) ctx.releaseEvent({ release: name, revision: run.revision, previous: run.before.current })
}

/** Records on the host's view that `current` now points at release `name`. */
function pointCurrentAt(run: HostRun, name: string): void {
  run.view.current = name
  run.view.currentTarget = undefined
}

/** The common recipe. */
export const common: Recipe = () => {
  setDefault('keep_releases', 5)
  setDefault('shared_dirs', [])
  setDefault('shared_files', [])
  setDefault('writable_dirs', [])
  setDefault('writable_mode', 'acl')
  setDefault('writable_recursive', true)
  setDefault('writable_chmod_mode', '0775')
  setDefault('clear_paths', [])
  setDefault('copy_dirs', [])
  setDefault('upload_exclude', ['.git'])
  setDefault('healthcheck_retries', 5)
  setDefault('healthcheck_timeout', 5)
  setDefault('bin/git', 'git')
  setDefault('user', () => process.env.GITHUB_ACTOR ?? userInfo().username)
  setDefault('update_code_strategy', () => (has('repository') ? 'git' : 'upload'))
  setDefault('release_path', '{{deploy_path}}/releases/{{release_name}}')
  setDefault('current_path', '{{deploy_path}}/current')
  // One name for the whole fleet, from every selected host's view: never reused.
  setDefault('release_name', () => {
    const ctx = context()
    return ctx.shared('common:release_name', async () => nextReleaseName(await fleetViews(ctx)))
  })

  task('deploy:info', async (ctx) => {
    const strategy = await ctx.get('update_code_strategy')
    const what =
      strategy === 'git'
        ? `${await ctx.get('repository')} at ${(await ctx.get('revision', '')) || (await ctx.get('tag', '')) || (await ctx.get('branch', '')) || 'HEAD'}`
        : `${await ctx.get('upload_path', '(upload_path not set)')}`
    ctx.info(`Deploying ${what} to ${ctx.host.alias}:${await ctx.get('deploy_path')}`)
  }, { phase: 'prepare', description: 'Says what is deployed where' })

  task('deploy:setup', async (ctx) => {
    await layoutOf(ctx)
  }, { phase: 'prepare', description: 'Checks deploy_path, release_path and current_path (the lock creates .dep/, releases/ and shared/)' })

  task('deploy:lock', async (ctx) => {
    const { leaderLocked } = await lockFleet(ctx)
    const run = await hostRun(ctx)
    if (run.lockTaken) {
      const owner = await lockOwner(ctx)
      // Stopped at once (a second Ctrl-C): the lock stays, marked so the next deploy or rollback takes it over.
      run.forgetAbort = ctx.onAbort(() => abortedHostLine(ctx, run, owner))
      return ctx.lockEvent('lock:taken', owner.user)
    }
    // The first host's lock is held: the others were only looked at, not locked; it alone reports.
    if (!leaderLocked && ctx.host.alias !== ctx.hosts[0].alias) return
    const failure = lockFailure(ctx, run)
    if (!failure) return
    if (run.view.lock.state === 'held') ctx.lockEvent('lock:held', describeOwner(run.view.lock.owner, run.view.now))
    throw failure
  }, { phase: 'prepare', description: 'Takes the deploy lock (owner.json built aside, then renamed into place: atomic)' })

  task('deploy:release', async (ctx) => {
    const run = await hostRun(ctx)
    const name = validReleaseName(String(await ctx.get('release_name')))
    const conflict = releaseNameConflict([run.before], name)
    if (conflict) throw new DeployError(`Cannot deploy: ${conflict}.`, { hint: 'Pick another -o release_name=… or leave it to deployfile.' })
    if (run.view.currentIsDirectory) {
      throw new DeployError(`${run.layout.currentPath} on ${ctx.host.alias} is a real directory, not a link.`, {
        hint: 'Move it away (e.g. into the releases directory) before deploying: it cannot be switched atomically.',
      })
    }
    const releasePath = String(await ctx.get('release_path'))
    if (releasePath !== releaseDir(run.layout, name)) {
      throw new ConfigError(`release_path (${releasePath}) is not inside the releases directory ${run.layout.releasesDir}.`)
    }
    await ctx.queue(createReleaseScript(run.layout, name))
    ;(await chosenRelease(ctx)).name = name
    run.releaseCreated = true
    run.view.releases.push({ name, complete: true, markedBad: false })
  }, { phase: 'prepare', description: 'Creates the release directory (one name for every host) and the release link' })

  task('deploy:update_code', async (ctx) => {
    const run = await hostRun(ctx)
    const releasePath = await ctx.get('release_path')
    const strategy = await ctx.get('update_code_strategy')
    if (strategy === 'git') {
      const ref = (await ctx.get('revision', '')) || (await ctx.get('tag', '')) || (await ctx.get('branch', '')) || 'HEAD'
      const output = await ctx.run(
        gitExportScript({ layout: run.layout, releasePath, repository: await ctx.get('repository'), ref, git: await ctx.get('bin/git') }),
      )
      run.revision = /@revision (\S+)/.exec(output)?.[1]
      return announceRelease(ctx, run)
    }
    if (strategy !== 'upload') throw new ConfigError(`update_code_strategy must be "git" or "upload", got "${strategy}".`)
    if (!ctx.has('upload_path')) {
      throw new ConfigError(
        `Nothing to deploy to ${ctx.host.alias}: neither "repository" nor "upload_path" is set.`,
        "Set repository (a git URL: set('repository', 'git@github.com:acme/app.git')) or upload_path (a local directory to upload).",
      )
    }
    const source = resolve(await ctx.parse(await ctx.get('upload_path')))
    if (!existsSync(source)) throw new ConfigError(`upload_path ${source} does not exist.`, 'Build it first, or fix upload_path.')
    await ctx.upload(source, releasePath, { exclude: await ctx.get('upload_exclude') })
    run.revision = await localRevision(ctx, source)
    await ctx.queue(sh`printf '%s\\n' ${run.revision} > ${`${releasePath}/REVISION`}`)
    await announceRelease(ctx, run)
  }, { phase: 'prepare', description: 'Puts the code into the release (git mirror + archive, or an upload)' })

  task('deploy:shared', async (ctx) => {
    const dirs = await ctx.get('shared_dirs')
    const files = await ctx.get('shared_files')
    if (dirs.length + files.length === 0) return
    await ctx.queue(sharedScript((await hostRun(ctx)).layout, await ctx.get('release_path'), dirs, files))
  }, { phase: 'prepare', description: 'Links shared_dirs and shared_files into the release' })

  task('deploy:writable', async (ctx) => {
    const script = writableScript({
      releasePath: await ctx.get('release_path'),
      dirs: await ctx.get('writable_dirs'),
      mode: await ctx.get('writable_mode'),
      recursive: await ctx.get('writable_recursive'),
      chmodMode: await ctx.get('writable_chmod_mode'),
      httpUser: (await ctx.get('http_user', '')) || undefined,
      httpGroup: (await ctx.get('http_group', '')) || undefined,
    })
    if (script) await ctx.queue(script)
  }, { phase: 'prepare', description: 'Makes writable_dirs writable (acl, chmod, chown, chgrp or skip)' })

  task('deploy:clear_paths', async (ctx) => {
    const script = clearPathsScript(await ctx.get('release_path'), await ctx.get('clear_paths'))
    if (script) await ctx.queue(script)
  }, { phase: 'prepare', description: 'Removes clear_paths from the release' })

  task('deploy:copy_dirs', async (ctx) => {
    const script = copyDirsScript((await hostRun(ctx)).layout, await ctx.get('release_path'), await ctx.get('copy_dirs'))
    if (script) await ctx.queue(script)
  }, { phase: 'prepare', description: 'Copies copy_dirs from the live release into the new one' })

  task('deploy:verify', async (ctx) => {
    const command = await ctx.get('healthcheck_command', '')
    if (!command) return
    await ctx.run(command, { cwd: await ctx.get('release_path'), timeout: (await ctx.get('healthcheck_timeout')) * 6 })
  }, { phase: 'prepare', description: 'Runs healthcheck_command in the new release before anyone switches' })

  task('deploy:prepared', async (ctx) => {
    const run = await hostRun(ctx)
    const entry = await ledgerEntry(ctx, await ctx.get('release_name'), 'prepared', { revision: run.revision })
    run.view.ledger.push(entry)
    await ctx.queue(ledgerAppend(run.layout, entry))
  }, { phase: 'prepare', hidden: true, description: 'Records the release as prepared' })

  task('deploy:symlink', async (ctx) => {
    const run = await hostRun(ctx)
    const name = await ctx.get('release_name')
    const entry = await ledgerEntry(ctx, name, 'live', { revision: run.revision })
    // Counted as switched before the command returns: a connection lost mid-switch may have switched.
    run.switched = true
    try {
      await ctx.run(switchScript(run.layout, name, run.view.mvT, [entry]))
    } catch (error) {
      // Connecting failed: the switch was never sent, the host still serves what it served.
      if (error instanceof ConnectionError && error.connecting) run.switched = false
      throw error
    }
    run.view.ledger.push(entry)
    pointCurrentAt(run, name)
  }, { phase: 'switch', description: 'Switches current to the new release (one rename: atomic)' })

  task('deploy:healthcheck', async (ctx) => {
    const url = await ctx.get('healthcheck_url', '')
    if (!url) return
    // A dry run talks to nothing but the hosts' read-only probe.
    if (ctx.dryRun) return ctx.info(`would check ${url}`)
    const tries = await ctx.get('healthcheck_retries')
    const timeout = (await ctx.get('healthcheck_timeout')) * 1000
    let last = ''
    for (let attempt = 1; attempt <= tries; attempt++) {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(timeout), redirect: 'manual' })
        if (response.status >= 200 && response.status < 300) return
        last = `HTTP ${response.status}`
      } catch (error) {
        last = error instanceof Error ? error.message : String(error)
      }
      if (attempt < tries) await new Promise((r) => setTimeout(r, Math.min(2000, 250 * attempt)))
    }
    throw new DeployError(`Health check ${url} failed after ${tries} tries: ${last}`, { hint: 'The fleet goes back to the release it served. Check the application logs of the new release.' })
  }, { phase: 'post-switch', description: 'Checks healthcheck_url after the switch (retries, timeout)' })

  task('deploy:unlock', async (ctx) => {
    const run = await knownRun(ctx)
    if (await ctx.get('force', false)) {
      const layout = run?.layout ?? (await layoutOf(ctx))
      ctx.info(await ctx.run(forceUnlockScript(layout)))
      ctx.lockEvent('lock:released')
      return
    }
    // Undoing a failed run that never looked at this host: nothing of ours is there.
    if (!run && ctx.failure) return
    // Undoing a failed run: a host this run never locked is not ours to unlock; a host that could not
    // be undone keeps its lock (fleet:check named it; the next deploy or rollback takes the lock over).
    if (run && !run.lockTaken) return
    if (run && ctx.failure && run.stuck !== undefined) {
      return ctx.warning('lock kept: this host could not be undone (named below); the next dep deploy or dep rollback takes the lock over')
    }
    if (run) {
      // A lock left behind is not a warning to scroll past: the run exits 6 naming the host and the fix.
      await ctx.queue(unlockScript(run.layout, ctx.runId), {
        failure: {
          exitCode: ExitCode.LockNotReleased,
          hint: `The lock on ${ctx.host.alias} is still held by this run. Remove it with: dep deploy:unlock --force ${ctx.host.alias}`,
        },
      })
      run.lockTaken = false
      run.forgetAbort?.()
      ctx.lockEvent('lock:released')
      return
    }
    const probed = await probe(ctx, false)
    const failure = ['held', 'broken'].includes(probed.view.lock.state) ? lockFailure(ctx, probed) : undefined
    if (failure) {
      throw new LockHeldError(`${failure.message} Only the run that took it removes it.`, `If that run is dead: dep deploy:unlock --force ${ctx.host.alias}`)
    }
    ctx.info('not locked')
  }, { phase: 'finish', description: 'Releases the deploy lock (--force: whoever holds it)' })

  task('deploy:is_locked', async (ctx) => {
    const { view } = await probe(ctx, false)
    const drifted = view.lock.owner?.run_id && runsThatDrifted(await fleetViews(ctx), ctx.host.alias).has(view.lock.owner.run_id)
    const said = {
      held: `locked by ${describeOwner(view.lock.owner, view.now)}${drifted ? ' (that run left this host drifted; the next deploy or rollback takes the lock over)' : ''}`,
      broken: `broken lock (no owner.json): remove it with dep deploy:unlock --force ${ctx.host.alias}`,
    } as Record<string, string>
    ctx.info(said[view.lock.state] ?? 'not locked')
  }, { description: 'Says whether a deploy lock is held, and by whom' })

  task('deploy:cleanup', async (ctx) => {
    const run = await hostRun(ctx)
    const keep = await ctx.get('keep_releases')
    const name = (await chosenRelease(ctx)).name
    const views = await fleetViews(ctx)
    const removed = releasesToRemove(run.view, keep, releaseOrder(views), name ? [name] : [], fleetBad(views))
    const script = removeReleasesScript(run.layout, removed)
    if (!script) return
    await ctx.queue(script)
    run.view.releases = run.view.releases.filter((r) => !removed.includes(r.name))
    ctx.info(`removing ${removed.length} old release(s): ${removed.join(', ')}`)
  }, { phase: 'finish', description: 'Keeps the keep_releases newest good releases (failed ones go first; never the live one or the one before)' })

  task('deploy:success', async (ctx) => {
    ctx.info(`release ${await ctx.get('release_name')} ${ctx.dryRun ? 'would go live' : 'is live'} on ${ctx.host.alias}`)
  }, { phase: 'finish', description: 'Says the deploy succeeded (hook your notifications here)' })

  task('deploy:revert', async (ctx) => {
    const run = await knownRun(ctx)
    const name = (await chosenRelease(ctx)).name
    // Nothing of ours on this host: the lock was never taken (or belongs to another run), or no release was made.
    if (!run?.lockTaken || !name) return
    const reason = ctx.failure ? (ctx.failure.interrupted ? 'interrupted' : `${ctx.failure.task} failed on ${ctx.failure.host}`) : undefined
    const entry = await ledgerEntry(ctx, name, 'failed', { reason })
    try {
      const output = await ctx.run(
        revertScript({ layout: run.layout, name, previousTarget: run.before.currentTarget, mvT: run.view.mvT, dropRelease: run.releaseCreated, entries: [entry] }),
      )
      run.view = { ...structuredClone(run.before), lock: run.view.lock, ledger: [...run.view.ledger, entry] }
      run.switched = false
      if (output.includes('@switched_back')) {
        ctx.warning(run.before.currentTarget ? `switched back to ${run.before.current ? `release ${run.before.current}` : run.before.currentTarget}` : 'removed current (there was no earlier release)')
      }
    } catch (error) {
      run.stuck = error instanceof Error ? error.message : String(error)
      throw error
    }
  }, { hidden: true, description: 'Undoes this run on the host: switches back to exactly the link it had, drops the release' })

  task('deploy:reverted', async () => {}, {
    hidden: true,
    description: 'Hook point: runs after hosts went back to an earlier release (automatic rollback and dep rollback)',
  })

  task('fleet:check', async (ctx) => {
    const runs = await hostRuns(ctx)
    const name = (await chosenRelease(ctx)).name
    const ends: HostEnd[] = ctx.hosts.flatMap((host): HostEnd[] => {
      const run = runs.get(host.alias)
      if (!run) return []
      if (run.stuck === undefined) return [{ alias: host.alias, serves: servedBy(run), drifted: false }]
      // The switch was sent but not confirmed: the host may serve either release.
      const serves = run.switched && run.view.current !== name ? `${servedBy(run) ?? 'nothing'} or ${name ?? '?'} (unconfirmed)` : servedBy(run)
      return [{ alias: host.alias, serves, drifted: true, reason: run.stuck }]
    })
    const driftedHosts = ends.filter((e) => e.drifted).map((e) => e.alias)
    const split = describeDrift(ends)
    if (driftedHosts.length === 0 && !split) return
    // Every host that can still be written records who drifted: the next run takes their locks over.
    // A host that went back queues it with its unlock (no extra round trip); one that could not be
    // undone is tried on its own, and may not answer at all: what it keeps is named below.
    await ctx.on(
      ctx.hosts.filter((h) => runs.get(h.alias)?.lockTaken),
      async (c) => {
        const run = runs.get(c.host.alias)!
        const entry = driftedHosts.includes(c.host.alias) && run.switched
          ? await ledgerEntry(c, servedBy(run) ?? '', 'drifted')
          : await ledgerEntry(c, name ?? servedBy(run) ?? '', 'failed', { drifted: driftedHosts })
        if (run.stuck === undefined) await c.queue(ledgerAppend(run.layout, entry))
        else await c.run(ledgerAppend(run.layout, entry), { quiet: true }).catch(() => undefined)
      },
    )
    const reasons = ends.filter((e) => e.drifted).map((e) => `${e.alias}: ${(e.reason ?? 'unknown reason').replace(/\.$/, '')}`).join('; ')
    const converge = 'Once every host answers, converge the fleet with: dep rollback (or deploy again with dep deploy); it takes over the locks this run left.'
    if (!split) {
      const serves = ends[0]?.serves
      throw new DeployError(
        `${driftedHosts.join(', ')} could not be cleaned up: every host serves ${serves ?? 'nothing'}, but this run's lock${name ? ` (and release ${name}, if it was made)` : ''} is left there.`,
        { exitCode: ExitCode.RollbackFailed, hint: `${reasons}. ${converge}` },
      )
    }
    throw new DeployError(`The fleet is split: ${split}.`, {
      exitCode: ExitCode.RollbackFailed,
      hint: `${driftedHosts.length ? `${driftedHosts.join(', ')} could not be brought back (${reasons}). ` : ''}${converge}`,
    })
  }, { hidden: true, once: true, description: 'Names hosts that serve another release than the fleet (drifted) and fails the run' })

  task('deploy:failed', ['deploy:revert', 'deploy:reverted', 'fleet:check', 'deploy:unlock'], {
    description: 'Runs when deploy fails: every host discards the release or goes back, then unlocks',
  })

  task('deploy', [
    'deploy:info',
    'deploy:setup',
    'deploy:lock',
    'deploy:release',
    'deploy:update_code',
    'deploy:shared',
    'deploy:writable',
    'deploy:clear_paths',
    'deploy:verify',
    'deploy:prepared',
    'deploy:symlink',
    'deploy:healthcheck',
    'deploy:unlock',
    'deploy:cleanup',
    'deploy:success',
  ], { description: 'Deploys a new release with zero downtime' })
  fail('deploy', 'deploy:failed')

  task('rollback:switch', async (ctx) => {
    const run = await hostRun(ctx)
    const wanted = String(await ctx.get('rollback_to', ''))
    const decision = await ctx.shared('common:rollback', async () => rollbackTarget(await fleetViews(ctx), wanted ? validReleaseName(wanted) : undefined))
    if ('reason' in decision) {
      throw new DeployError(`Nothing was rolled back: ${decision.reason}.`, {
        hint: `What each host has:\n${describeFleet(await fleetViews(ctx))}\nName a release present on every host with -o rollback_to=NAME.`,
      })
    }
    const target = decision.target
    const from = run.view.current
    ctx.releaseEvent({ release: target, revision: run.view.releases.find((r) => r.name === target)?.revision, previous: from })
    if (from === target) return ctx.info(`already on release ${target}`)
    const entries = [...(from ? [await ledgerEntry(ctx, from, 'rolled_back')] : []), await ledgerEntry(ctx, target, 'live')]
    run.switched = true
    try {
      await ctx.run(switchScript(run.layout, target, run.view.mvT, entries))
    } catch (error) {
      run.stuck = error instanceof Error ? error.message : String(error)
      throw error
    }
    run.switched = false
    run.view.ledger.push(...entries)
    pointCurrentAt(run, target)
    ctx.info(`current → release ${target}${from ? ` (release ${from} marked bad)` : ''}`)
  }, { hidden: true, description: 'Switches every host to one release: the newest good one on all of them older than the live one (or rollback_to)' })

  task('rollback', ['deploy:lock', 'rollback:switch', 'fleet:check', 'deploy:reverted', 'deploy:unlock'], {
    description: 'Goes back, on every host, to the newest good release they all have (-o rollback_to=NAME for another)',
  })
  task('rollback:failed', ['fleet:check', 'deploy:unlock'], { hidden: true, description: 'Names split hosts and unlocks after a failed rollback' })
  fail('rollback', 'rollback:failed')

  task('releases:show', async (ctx) => {
    const { view } = await probe(ctx, false)
    ctx.info(releasesTable(view, releaseOrder([view])))
  }, { hidden: true, description: 'Prints the release table of each host' })

  task('releases:compare', async (ctx) => {
    const views = await fleetViews(ctx)
    const drift = describeDrift(views.map((v) => ({ alias: v.alias, serves: v.current ?? v.currentTarget, drifted: false })))
    if (drift) ctx.warning(`hosts disagree on the live release: ${drift}. Converge them with: dep rollback (or dep deploy)`)
  }, { hidden: true, once: true, description: 'Points out hosts whose current release differs' })

  task('releases', ['releases:show', 'releases:compare'], { description: 'Shows the releases of each host (live, earlier, failed, adopted)' })
}
