/** The prepare phase: lock, make the release and fill it. Nothing live changes; a failure drops the release everywhere. */
import { task, type Command, type TaskContext } from 'deployfile'
import { checkNewRelease, validReleaseName } from '../checks.js'
import { hostLayout } from '../layout.js'
import { failLock, holdLock, lockFleet } from '../locking.js'
import { hostRun, ledgerEntry, madeRelease, thisRelease } from '../run.js'
import {
  clearPathsScript,
  copyDirsScript,
  createReleaseScript,
  exportedRevision,
  gitExportScript,
  ledgerAppend,
  revisionFileScript,
  sharedScript,
  writableScript,
} from '../scripts.js'
import { codeSource, deployedSource, uploadRevision, verifyCommand, writableSettings } from '../settings.js'

/** Queues a step's script, when the settings leave it something to do. */
async function queueIfAny(ctx: TaskContext, script: Command | undefined): Promise<void> {
  if (script) await ctx.queue(script)
}

export function prepareTasks(): void {
  task('deploy:info', async (ctx) => {
    // The upload's archive is made while the hosts connect and lock, not after the lock in every
    // host's path. A source that is not set right fails later, in deploy:update_code, as always.
    const source = await codeSource(ctx).catch(() => undefined)
    if (source?.strategy === 'upload') void ctx.prepareUpload(source.directory, { exclude: source.exclude })
    ctx.info(`Deploying ${await deployedSource(ctx)} to ${ctx.host.alias}:${await ctx.get('deploy_path')}`)
  }, { phase: 'prepare', description: 'Says what is deployed where' })

  task('deploy:setup', async (ctx) => {
    await hostLayout(ctx)
  }, { phase: 'prepare', description: 'Checks deploy_path, release_path and current_path (the lock creates .dep/, releases/ and shared/)' })

  task('deploy:lock', async (ctx) => {
    const { leaderLocked } = await lockFleet(ctx)
    const run = await hostRun(ctx)
    if (run.lockTaken) return holdLock(ctx, run)
    // The first host's lock is held: the others were only looked at, not locked; it alone reports.
    if (leaderLocked || ctx.host.alias === ctx.hosts[0].alias) failLock(ctx, run)
  }, { phase: 'prepare', description: 'Takes the deploy lock (owner.json built aside, then renamed into place: atomic)' })

  task('deploy:release', async (ctx) => {
    const run = await hostRun(ctx)
    const name = validReleaseName(String(await ctx.get('release_name')))
    checkNewRelease(run, name, await ctx.get('release_path'))
    await ctx.queue(createReleaseScript(run.layout, name))
    await madeRelease(ctx, run, name)
  }, { phase: 'prepare', description: 'Creates the release directory (one name for every host) and the release link' })

  task('deploy:update_code', async (ctx) => {
    const { run, name, path } = await thisRelease(ctx)
    const source = await codeSource(ctx)
    if (source.strategy === 'git') {
      run.revision = exportedRevision(await ctx.run(gitExportScript({ ...source, layout: run.layout, releasePath: path })))
    } else {
      // The local `git rev-parse` runs while the archive is made and sent, not after it: it sat
      // between two round trips of every host (23-70 ms in bench timelines).
      const revision = uploadRevision(ctx, source.directory)
      revision.catch(() => undefined) // awaited below; an upload that fails first must not leave it unhandled
      await ctx.upload(source.directory, path, { exclude: source.exclude })
      run.revision = await revision
      await ctx.queue(revisionFileScript(path, run.revision))
    }
    // Reporters and run listeners (notifications) learn which release and revision this host gets.
    ctx.releaseEvent({ release: name, revision: run.revision, previous: run.before.current })
  }, { phase: 'prepare', description: 'Puts the code into the release (git mirror + archive, or an upload)' })

  task('deploy:shared', async (ctx) => {
    const { run, path } = await thisRelease(ctx)
    await queueIfAny(ctx, sharedScript(run.layout, path, await ctx.get('shared_dirs'), await ctx.get('shared_files')))
  }, { phase: 'prepare', description: 'Links shared_dirs and shared_files into the release' })

  task('deploy:writable', async (ctx) => {
    const { path } = await thisRelease(ctx)
    await queueIfAny(ctx, writableScript({ ...(await writableSettings(ctx)), releasePath: path }))
  }, { phase: 'prepare', description: 'Makes writable_dirs writable (acl, chmod, chown, chgrp or skip)' })

  task('deploy:clear_paths', async (ctx) => {
    const { path } = await thisRelease(ctx)
    await queueIfAny(ctx, clearPathsScript(path, await ctx.get('clear_paths')))
  }, { phase: 'prepare', description: 'Removes clear_paths from the release' })

  task('deploy:copy_dirs', async (ctx) => {
    const { run, path } = await thisRelease(ctx)
    await queueIfAny(ctx, copyDirsScript(run.layout, path, await ctx.get('copy_dirs')))
  }, { phase: 'prepare', description: 'Copies copy_dirs from the live release into the new one' })

  task('deploy:verify', async (ctx) => {
    const check = await verifyCommand(ctx)
    if (check) await ctx.run(check.command, { cwd: (await thisRelease(ctx)).path, timeout: check.timeout })
  }, { phase: 'prepare', description: 'Runs healthcheck_command in the new release before anyone switches' })

  task('deploy:prepared', async (ctx) => {
    const { run, name } = await thisRelease(ctx)
    const entry = await ledgerEntry(ctx, name, 'prepared', { revision: run.revision })
    run.view.ledger.push(entry)
    await ctx.queue(ledgerAppend(run.layout, entry))
  }, { phase: 'prepare', hidden: true, description: 'Records the release as prepared' })
}
