/**
 * The common deploy recipe: zero-downtime releases with an atomic lock, a
 * release ledger and fleet-wide automatic rollback. Built only on the public
 * API. Use it with `use(common)`.
 *
 * This file is the runbook: the order of the steps. Each step is a task of a
 * few lines in ./common/tasks/ (by phase); the shell they send is built in
 * ./common/scripts.ts, ./common/lock.ts and ./common/probe.ts over one
 * per-host layout (./common/layout.ts); every decision that must agree across
 * hosts is a pure function of the fleet view (./common/fleet.ts).
 */
import { fail, task, type Recipe, type TaskContext } from 'deployfile'
import { knownRun } from './common/run.js'
import { commonDefaults } from './common/settings.js'
import { finishTasks } from './common/tasks/finish.js'
import { prepareTasks } from './common/tasks/prepare.js'
import { recoveryTasks } from './common/tasks/recover.js'
import { releasesTasks } from './common/tasks/releases.js'
import { switchTasks } from './common/tasks/switch.js'

export { hostLayout, releaseDir, type Layout } from './common/layout.js'
export type { LedgerEntry } from './common/ledger.js'
export type { HostView } from './common/probe.js'

/** True while this run prepares a release on the host (its directory exists); recipes use it to pick the app path. */
export async function isPreparingRelease(ctx: TaskContext): Promise<boolean> {
  return (await knownRun(ctx))?.releaseCreated ?? false
}

/** The common recipe. */
export const common: Recipe = () => {
  commonDefaults()
  prepareTasks()
  switchTasks()
  finishTasks()
  recoveryTasks()
  releasesTasks()

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
  task('deploy:failed', ['deploy:revert', 'deploy:reverted', 'fleet:check', 'deploy:unlock'], {
    description: 'Runs when deploy fails: every host discards the release or goes back, then unlocks',
  })
  fail('deploy', 'deploy:failed')

  task('rollback', ['deploy:lock', 'rollback:switch', 'fleet:check', 'deploy:reverted', 'deploy:unlock'], {
    description: 'Goes back, on every host, to the newest good release they all have (-o rollback_to=NAME for another)',
  })
  task('rollback:failed', ['fleet:check', 'deploy:unlock'], { hidden: true, description: 'Names split hosts and unlocks after a failed rollback' })
  fail('rollback', 'rollback:failed')

  task('releases', ['releases:show', 'releases:compare'], { description: 'Shows the releases of each host (live, earlier, failed, adopted)' })
}
