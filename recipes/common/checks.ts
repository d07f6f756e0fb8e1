/** What must hold before a step changes a host; each check throws an error naming the fix. */
import { ConfigError, DeployError } from 'deployfile'
import { releaseNameConflict } from './fleet.js'
import { releaseDir } from './layout.js'
import type { HostRun } from './run.js'

const RELEASE_NAME = /^[A-Za-z0-9._][A-Za-z0-9._-]*$/

/** A release name (release_name, rollback_to) that is one directory name, not an option or a path. */
export function validReleaseName(name: string): string {
  if (!RELEASE_NAME.test(name) || name === '.' || name === '..') {
    throw new ConfigError(`Release name "${name}" is not valid.`, 'Use letters, digits, dots, dashes and underscores (not starting with a dash).')
  }
  return name
}

/**
 * deploy:release may make release `name` on this host: the name was never
 * used there, `current` can be switched atomically (a link, not a directory),
 * and release_path is that release's directory in the layout.
 */
export function checkNewRelease(run: HostRun, name: string, releasePath: string): void {
  const conflict = releaseNameConflict([run.before], name)
  if (conflict) throw new DeployError(`Cannot deploy: ${conflict}.`, { hint: 'Pick another -o release_name=… or leave it to deployfile.' })
  if (run.view.currentIsDirectory) {
    throw new DeployError(`${run.layout.currentPath} on ${run.view.alias} is a real directory, not a link.`, {
      hint: 'Move it away (e.g. into the releases directory) before deploying: it cannot be switched atomically.',
    })
  }
  if (releasePath !== releaseDir(run.layout, name)) {
    throw new ConfigError(`release_path (${releasePath}) is not inside the releases directory ${run.layout.releasesDir}.`)
  }
}
