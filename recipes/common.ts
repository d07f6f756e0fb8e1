/**
 * The common deploy recipe: zero-downtime releases with an atomic lock, a
 * release ledger and fleet-wide automatic rollback. Built only on the public
 * API. Use it with `use(common)`.
 *
 * Layout on each host (deploy_path):
 *   .dep/releases_log  .dep/deploy.lock/  .dep/repo/  releases/<n>/  shared/  release -> …  current -> …
 */
import { existsSync } from 'node:fs'
import { hostname, userInfo } from 'node:os'
import { resolve } from 'node:path'
import {
  setDefault,
  ConfigError,
  context,
  DeployError,
  fail,
  has,
  LockHeldError,
  sh,
  task,
  type Recipe,
  type TaskContext,
} from 'deployfile'
import { compareReleases, isBad, releaseStatuses, wentLive, type LedgerEntry } from './common/ledger.js'
import { describeOwner, parseProbe, type HostState } from './common/host-state.js'
import {
  atomicLink,
  clearPathsScript,
  copyDirsScript,
  createReleaseScript,
  forceUnlockScript,
  gitExportScript,
  joinCommands,
  ledgerAppend,
  probeScript,
  removeReleasesScript,
  setupScript,
  sharedScript,
  unlockScript,
  writableScript,
} from './common/scripts.js'

export type { HostState, LedgerEntry }


/** Everything this run learned about each host, by alias. */
function states(ctx: TaskContext): Promise<Map<string, HostState>> {
  return ctx.shared('common:states', async () => new Map<string, HostState>())
}

/** Probes the host (one round trip), taking the lock when `lock` is set, and remembers what it learned. */
async function probe(ctx: TaskContext, lock: boolean): Promise<HostState> {
  const deployPath = await ctx.get('deploy_path')
  const owner = lock
    ? {
        user: await ctx.get('user'),
        machine: hostname(),
        pid: process.pid,
        run_id: ctx.runId,
        started_at: new Date().toISOString(),
      }
    : undefined
  // deploy:setup queued the layout script: it goes with this round trip, before the probe.
  const setupQueued = await ctx.shared(`common:setup-queued:${ctx.host.alias}`, async () => false)
  const output = await ctx.run(probeScript(deployPath, owner, { setup: !setupQueued }), { quiet: true })
  const state: HostState = { ...parseProbe(output), releaseCreated: false }
  // A dry run records the probe without running it: with no answer, act as if the lock were free.
  if (ctx.dryRun && !output.includes('@lock')) state.lockTaken = lock
  if (!lock) state.lockTaken = false
  ;(await states(ctx)).set(ctx.host.alias, state)
  if (state.lockTaken) ctx.lockEvent('lock:taken', String(owner?.user))
  return state
}

/** The host's state, probing (without the lock) when this run has not looked yet. */
async function hostState(ctx: TaskContext): Promise<HostState> {
  return (await states(ctx)).get(ctx.host.alias) ?? probe(ctx, false)
}

/** True while this run prepares a release on the host (its directory exists); recipes use it to pick the app path. */
export async function isPreparingRelease(ctx: TaskContext): Promise<boolean> {
  return (await states(ctx)).get(ctx.host.alias)?.releaseCreated ?? false
}

/** One release name for the whole deploy: one more than the highest on any selected host. */
async function nextReleaseName(ctx: TaskContext): Promise<string> {
  return ctx.shared('common:release_name', async () => {
    const all = await ctx.on(ctx.hosts, (c) => hostState(c))
    let highest = 0
    for (const state of all) {
      for (const name of [...state.releases, ...state.ledger.map((e) => e.release)]) {
        if (/^\d+$/.test(name)) highest = Math.max(highest, Number(name))
      }
    }
    return String(highest + 1)
  })
}

async function ledgerEntry(ctx: TaskContext, release: string, status: LedgerEntry['status'], extra: Partial<LedgerEntry> = {}): Promise<LedgerEntry> {
  return { release, status, at: new Date().toISOString(), user: await ctx.get('user'), run_id: ctx.runId, ...extra }
}

function recordStatus(state: HostState, entry: LedgerEntry): void {
  state.ledger.push(entry)
}

/** Releases on disk that went live and were not marked bad: the only rollback and keep candidates. */
function goodReleases(state: HostState): string[] {
  const statuses = releaseStatuses(state.ledger)
  const live = wentLive(state.ledger)
  return state.releases.filter((name) => live.has(name) && !isBad(statuses.get(name))).sort(compareReleases)
}

/** The newest good release older than `current` that is still on disk. */
function previousGood(state: HostState, current: string | undefined): string | undefined {
  return goodReleases(state)
    .filter((name) => name !== current)
    .filter((name) => current === undefined || compareReleases(name, current) < 0)
    .sort(compareReleases)
    .pop()
}

function validReleaseName(name: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name === '.' || name === '..') {
    throw new ConfigError(`Release name "${name}" is not valid.`, 'Use letters, digits, dots, dashes and underscores.')
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
  setDefault('release_name', () => nextReleaseName(context()))

  task('deploy:info', async (ctx) => {
    const strategy = await ctx.get('update_code_strategy')
    const what =
      strategy === 'git'
        ? `${await ctx.get('repository')} at ${(await ctx.get('revision', '')) || (await ctx.get('tag', '')) || (await ctx.get('branch', '')) || 'HEAD'}`
        : `${await ctx.get('upload_path', '(upload_path not set)')}`
    ctx.info(`Deploying ${what} to ${ctx.host.alias}:${await ctx.get('deploy_path')}`)
  }, { phase: 'prepare', description: 'Says what is deployed where' })

  task('deploy:setup', async (ctx) => {
    await ctx.queue(setupScript(await ctx.get('deploy_path')))
    await ctx.shared(`common:setup-queued:${ctx.host.alias}`, async () => true)
  }, { phase: 'prepare', description: 'Creates .dep/, releases/ and shared/ (refuses a real current directory)' })

  task('deploy:lock', async (ctx) => {
    // Locks are taken on the first selected host before the others: of several
    // deploys started at once, exactly one gets past it.
    const leader = ctx.hosts[0]
    const leaderState = await ctx.shared('common:leader-lock', async () => (await ctx.on(leader, (c) => probe(c, true)))[0])
    let state = leaderState
    if (ctx.host.alias !== leader.alias) {
      if (!leaderState.lockTaken) return
      state = await probe(ctx, true)
    }
    if (!state.lockTaken) {
      const owner = describeOwner(state.owner, state.now)
      ctx.lockEvent('lock:held', owner)
      throw new LockHeldError(
        `The deploy lock on ${ctx.host.alias} is held by ${owner}.`,
        `Wait for that deploy to finish. If it died, remove the lock with: dep deploy:unlock --force ${ctx.host.alias}`,
      )
    }
  }, { phase: 'prepare', description: 'Takes the deploy lock (atomic mkdir of .dep/deploy.lock)' })

  task('deploy:release', async (ctx) => {
    const state = await hostState(ctx)
    const name = validReleaseName(await ctx.get('release_name'))
    if (state.releases.includes(name)) {
      throw new DeployError(`Release ${name} already exists on ${ctx.host.alias}.`, { hint: 'Pick another -o release_name=… or leave it to deployfile.' })
    }
    await ctx.queue(createReleaseScript(await ctx.get('deploy_path'), name))
    state.releaseCreated = true
    state.releases.push(name)
  }, { phase: 'prepare', description: 'Creates releases/<name> (one name for every host) and the release link' })

  task('deploy:update_code', async (ctx) => {
    const state = await hostState(ctx)
    const releasePath = await ctx.get('release_path')
    const strategy = await ctx.get('update_code_strategy')
    if (strategy === 'git') {
      const ref = (await ctx.get('revision', '')) || (await ctx.get('tag', '')) || (await ctx.get('branch', '')) || 'HEAD'
      const output = await ctx.run(
        gitExportScript({
          deployPath: await ctx.get('deploy_path'),
          releasePath,
          repository: await ctx.get('repository'),
          ref,
          git: await ctx.get('bin/git'),
        }),
      )
      state.revision = /@revision (\S+)/.exec(output)?.[1]
      return
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
    state.revision = await localRevision(ctx, source)
    await ctx.queue(sh`printf '%s\\n' ${state.revision} > ${`${releasePath}/REVISION`}`)
  }, { phase: 'prepare', description: 'Puts the code into the release (git mirror + archive, or an upload)' })

  task('deploy:shared', async (ctx) => {
    const dirs = await ctx.get('shared_dirs')
    const files = await ctx.get('shared_files')
    if (dirs.length + files.length === 0) return
    await ctx.queue(sharedScript(await ctx.get('deploy_path'), await ctx.get('release_path'), dirs, files))
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
    const script = copyDirsScript(await ctx.get('deploy_path'), await ctx.get('release_path'), await ctx.get('copy_dirs'))
    if (script) await ctx.queue(script)
  }, { phase: 'prepare', description: 'Copies copy_dirs from the live release into the new one' })

  task('deploy:verify', async (ctx) => {
    const command = await ctx.get('healthcheck_command', '')
    if (!command) return
    await ctx.run(command, { cwd: await ctx.get('release_path'), timeout: (await ctx.get('healthcheck_timeout')) * 6 })
  }, { phase: 'prepare', description: 'Runs healthcheck_command in the new release before anyone switches' })

  task('deploy:prepared', async (ctx) => {
    const state = await hostState(ctx)
    const name = await ctx.get('release_name')
    const entry = await ledgerEntry(ctx, name, 'prepared', { revision: state.revision })
    recordStatus(state, entry)
    await ctx.queue(ledgerAppend(await ctx.get('deploy_path'), entry))
  }, { phase: 'prepare', hidden: true, description: 'Records the release as prepared' })

  task('deploy:symlink', async (ctx) => {
    const state = await hostState(ctx)
    const deployPath = await ctx.get('deploy_path')
    const name = await ctx.get('release_name')
    const entry = await ledgerEntry(ctx, name, 'live', { revision: state.revision })
    const release = `${deployPath}/release`
    const current = `${deployPath}/current`
    // The release link is renamed over current: one rename, atomic.
    const switchLink = state.mvT
      ? sh`mv -fT ${release} ${current}`
      : sh`${atomicLink(current, `releases/${name}`, false)}
rm -f ${release}`
    await ctx.run(sh`set -e
[ "$(readlink ${release})" = ${`releases/${name}`} ] || { echo ${`deployfile: ${release} does not point at releases/${name}`} >&2; exit 6; }
${switchLink}
${ledgerAppend(deployPath, entry)}`)
    recordStatus(state, entry)
  }, { phase: 'switch', description: 'Switches current to the new release (atomic rename)' })

  task('deploy:healthcheck', async (ctx) => {
    const url = await ctx.get('healthcheck_url', '')
    if (!url) return
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
    throw new DeployError(`Health check ${url} failed after ${tries} tries: ${last}`, { hint: 'The fleet is rolled back. Check the application logs of the new release.' })
  }, { phase: 'post-switch', description: 'Checks healthcheck_url after the switch (retries, timeout)' })

  task('deploy:unlock', async (ctx) => {
    // Undoing a failed run: a host this run never locked is not ours to unlock (and may lack settings).
    if (ctx.failure && !(await states(ctx)).get(ctx.host.alias)) return
    const deployPath = await ctx.get('deploy_path')
    if (await ctx.get('force', false)) {
      const output = await ctx.run(forceUnlockScript(deployPath))
      ctx.info(output)
      ctx.lockEvent('lock:released')
      return
    }
    const known = (await states(ctx)).get(ctx.host.alias)
    // Undoing a failed run: a host this run never locked is not ours to unlock.
    if (!known && ctx.failure) return
    if (known) {
      if (!known.lockTaken) return
      await ctx.queue(unlockScript(deployPath, ctx.runId))
      known.lockTaken = false
      ctx.lockEvent('lock:released')
      return
    }
    const state = await probe(ctx, false)
    if (state.owner) {
      throw new LockHeldError(
        `The deploy lock on ${ctx.host.alias} is held by ${describeOwner(state.owner, state.now)}; only the run that took it removes it.`,
        `If that run is dead: dep deploy:unlock --force ${ctx.host.alias}`,
      )
    }
    ctx.info('not locked')
  }, { phase: 'finish', description: 'Releases the deploy lock (--force: whoever holds it)' })

  task('deploy:is_locked', async (ctx) => {
    const state = await probe(ctx, false)
    ctx.info(state.owner ? `locked by ${describeOwner(state.owner, state.now)}` : 'not locked')
  }, { description: 'Says whether a deploy lock is held, and by whom' })

  task('deploy:cleanup', async (ctx) => {
    const state = await hostState(ctx)
    const keep = Math.max(1, await ctx.get('keep_releases'))
    const statuses = releaseStatuses(state.ledger)
    const current = [...state.ledger].reverse().find((e) => e.status === 'live' && e.run_id === ctx.runId)?.release ?? state.current
    const previous = previousGood(state, current)
    const good = goodReleases(state).reverse()
    const kept = new Set([current, previous, ...good.slice(0, keep)].filter(Boolean))
    // Bad and never-live releases go first and never count towards keep_releases.
    const removed = state.releases.filter((name) => !kept.has(name)).sort((a, b) => Number(good.includes(a)) - Number(good.includes(b)))
    const script = removeReleasesScript(await ctx.get('deploy_path'), removed)
    if (!script) return
    await ctx.queue(script)
    state.releases = state.releases.filter((name) => kept.has(name))
    ctx.info(`removing ${removed.length} old release(s): ${removed.join(', ')}`)
  }, { phase: 'finish', description: 'Keeps the keep_releases newest good releases (failed ones go first)' })

  task('deploy:success', async (ctx) => {
    ctx.info(`release ${await ctx.get('release_name')} is live on ${ctx.host.alias}`)
  }, { phase: 'finish', description: 'Says the deploy succeeded (hook your notifications here)' })

  task('deploy:revert', async (ctx) => {
    const state = (await states(ctx)).get(ctx.host.alias)
    // Nothing of ours on this host: the lock was never taken (or belongs to another run).
    if (!state?.lockTaken) return
    const deployPath = await ctx.get('deploy_path')
    const name = await ctx.get('release_name')
    const current = `${deployPath}/current`
    const previous = state.current
    const back = previous
      ? atomicLink(current, `releases/${previous}`, state.mvT)
      : sh`rm -f ${current}`
    const entry = await ledgerEntry(ctx, name, 'failed', { reason: ctx.failure ? `${ctx.failure.task} failed on ${ctx.failure.host}` : undefined })
    const output = await ctx.run(sh`if [ "$(readlink ${current})" = ${`releases/${name}`} ]; then
  ${back}
  echo '@switched_back'
fi
if [ "$(readlink ${`${deployPath}/release`} 2>/dev/null)" = ${`releases/${name}`} ]; then rm -f ${`${deployPath}/release`}; fi
${state.releaseCreated ? removeReleasesScript(deployPath, [name])! : sh`:`}
${ledgerAppend(deployPath, entry)}`)
    recordStatus(state, entry)
    if (output.includes('@switched_back')) {
      ctx.warning(previous ? `switched back to release ${previous}` : 'removed current (there was no earlier release)')
    }
  }, { hidden: true, description: 'Undoes this run on the host: switches back if it switched, drops the release' })

  task('deploy:reverted', async () => {}, {
    hidden: true,
    description: 'Hook point: runs after hosts went back to an earlier release (automatic rollback and dep rollback)',
  })

  task('deploy:failed', ['deploy:revert', 'deploy:reverted', 'deploy:unlock'], {
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
    const state = await hostState(ctx)
    const deployPath = await ctx.get('deploy_path')
    const statuses = releaseStatuses(state.ledger)
    const from = state.current
    const wanted = await ctx.get('rollback_to', '')
    const target = wanted ? validReleaseName(wanted) : previousGood(state, from)
    if (!target) throw new DeployError(`No earlier good release on ${ctx.host.alias} to roll back to.`, { hint: 'See dep releases.' })
    if (!state.releases.includes(target)) throw new DeployError(`Release ${target} is not on ${ctx.host.alias}.`, { hint: 'See dep releases.' })
    if (isBad(statuses.get(target)) && !wanted) throw new DeployError(`Release ${target} is marked bad on ${ctx.host.alias}.`)
    const entries = [
      ...(from ? [await ledgerEntry(ctx, from, 'rolled_back')] : []),
      await ledgerEntry(ctx, target, 'live'),
    ]
    await ctx.run(sh`set -e
${atomicLink(`${deployPath}/current`, `releases/${target}`, state.mvT)}
${joinCommands(entries.map((e) => ledgerAppend(deployPath, e)))}`)
    entries.forEach((e) => recordStatus(state, e))
    ctx.info(`current → release ${target}${from ? ` (release ${from} marked bad)` : ''}`)
  }, { hidden: true, description: 'Switches current back to the previous good release (or rollback_to)' })

  task('rollback', ['deploy:lock', 'rollback:switch', 'deploy:reverted', 'deploy:unlock'], {
    description: 'Goes back to the previous good release on every host (-o rollback_to=NAME for another)',
  })
  task('rollback:failed', ['deploy:unlock'], { hidden: true, description: 'Unlocks after a failed rollback' })
  fail('rollback', 'rollback:failed')

  task('releases:show', async (ctx) => {
    const state = await probe(ctx, false)
    const statuses = releaseStatuses(state.ledger)
    const lastEntry = new Map(state.ledger.map((e) => [e.release, e]))
    const names = [...new Set([...state.releases, ...lastEntry.keys()])].sort(compareReleases)
    const rows = names.map((name) => {
      const entry = lastEntry.get(name)
      const marks = [name === state.current ? 'current' : '', isBad(statuses.get(name)) ? 'BAD' : '', state.releases.includes(name) ? '' : 'removed']
        .filter(Boolean)
        .join(', ')
      return `${name === state.current ? '●' : ' '} ${name.padEnd(8)} ${(entry?.status ?? '-').padEnd(12)} ${(entry?.at ?? '').padEnd(24)} ${(entry?.user ?? '').padEnd(12)} ${(entry?.revision ?? '').slice(0, 12).padEnd(12)} ${marks}`
    })
    ctx.info([`releases on ${ctx.host.alias}:`, `  ${'release'.padEnd(8)} ${'status'.padEnd(12)} ${'when'.padEnd(24)} ${'who'.padEnd(12)} ${'revision'.padEnd(12)}`, ...rows].join('\n'))
  }, { hidden: true, description: 'Prints the release table of each host' })

  task('releases:compare', async (ctx) => {
    const all = await ctx.on(ctx.hosts, async (c) => ({ host: c.host.alias, current: (await hostState(c)).current }))
    const currents = new Set(all.map((a) => a.current ?? '(none)'))
    if (currents.size > 1) {
      ctx.warning(`hosts disagree on the live release: ${all.map((a) => `${a.host}=${a.current ?? '(none)'}`).join(', ')}`)
    }
  }, { hidden: true, once: true, description: 'Points out hosts whose current release differs' })

  task('releases', ['releases:show', 'releases:compare'], { description: 'Shows the releases of each host (current, failed and bad marked)' })
}
