import { posix } from 'node:path'
import { ConfigError, type TaskContext } from 'deployfile'

/**
 * Where everything of a deploy lives on one host. Built once per host from
 * `deploy_path`, `release_path` and `current_path`, and handed to every
 * script builder, so overriding a path (a Deployer habit) moves it everywhere.
 */
export interface Layout {
  deployPath: string
  /** `.dep/`: the ledger, the lock, the git mirror. */
  depDir: string
  lockDir: string
  ledgerFile: string
  repoDir: string
  sharedDir: string
  /** The directory holding one directory per release (the parent of `release_path`). */
  releasesDir: string
  /** The `current` link (the `current_path` setting). */
  currentPath: string
  /** The `release` link, pointing at the release while it is prepared. */
  releaseLink: string
  /** Capistrano's log, read when present (adopted layouts). */
  capistranoLog: string
}

/** The directory of release `name`. */
export function releaseDir(layout: Layout, name: string): string {
  return `${layout.releasesDir}/${name}`
}

/**
 * What a link at `linkPath` should contain to point at `target`: relative
 * when the target is below the link's directory (a moved deploy_path keeps
 * working), absolute otherwise.
 */
export function linkTarget(linkPath: string, target: string): string {
  const relative = posix.relative(posix.dirname(linkPath), target)
  return relative.startsWith('..') ? target : relative
}

const PLACEHOLDER = 'deployfile-release-placeholder'

function absolute(key: string, value: string): string {
  if (!value?.startsWith('/')) {
    throw new ConfigError(`${key} must be a non-empty absolute path, got "${value}".`, `Set ${key} to a path like /var/www/app.`)
  }
  return posix.normalize(value).replace(/\/+$/, '') || '/'
}

/** True when `path` is `dir` or inside it. */
function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`)
}

/**
 * Refuses layouts where one part would be read as another: every directory in
 * the releases directory is a release (cleanup removes old ones), so it must
 * not hold deploy_path (shared/, .dep/) or the `current` link.
 */
function checkApart(layout: Layout): Layout {
  const { deployPath, releasesDir, currentPath } = layout
  if (within(deployPath, releasesDir)) {
    throw new ConfigError(
      `release_path puts releases in ${releasesDir}, which holds deploy_path ${deployPath}: shared/ and .dep/ would be read as releases.`,
      "Give releases a directory of their own, like set('release_path', '{{deploy_path}}/releases/{{release_name}}').",
    )
  }
  if (posix.dirname(currentPath) === releasesDir || within(deployPath, currentPath) || within(currentPath, releasesDir)) {
    throw new ConfigError(
      `current_path ${currentPath} overlaps the releases directory ${releasesDir} or deploy_path ${deployPath}.`,
      "Put the current link outside the releases directory, like set('current_path', '{{deploy_path}}/current') or '/var/www/html'.",
    )
  }
  return layout
}

/** The host's layout, built once per host and run from its settings (no I/O). */
export function hostLayout(ctx: TaskContext): Promise<Layout> {
  return ctx.shared(`common:layout:${ctx.host.alias}`, () => layoutOf(ctx))
}

/** Builds the host's layout from its settings (no I/O). */
async function layoutOf(ctx: TaskContext): Promise<Layout> {
  const deployPath = absolute('deploy_path', String(await ctx.get('deploy_path')))
  if (deployPath === '/') throw new ConfigError('deploy_path must not be /.', 'Set deploy_path to a directory of its own, like /var/www/app.')
  // The releases directory is release_path with a placeholder name: learnt before the name is chosen.
  const releaseTemplate = absolute('release_path', await ctx.parse('{{release_path}}', { release_name: PLACEHOLDER }))
  if (posix.basename(releaseTemplate) !== PLACEHOLDER) {
    throw new ConfigError(
      `release_path must end with the release name, got "${releaseTemplate.replace(PLACEHOLDER, '{{release_name}}')}".`,
      "Set it like set('release_path', '{{deploy_path}}/releases/{{release_name}}').",
    )
  }
  const depDir = `${deployPath}/.dep`
  return checkApart({
    deployPath,
    depDir,
    lockDir: `${depDir}/deploy.lock`,
    ledgerFile: `${depDir}/releases_log`,
    repoDir: `${depDir}/repo`,
    sharedDir: `${deployPath}/shared`,
    releasesDir: posix.dirname(releaseTemplate),
    currentPath: absolute('current_path', String(await ctx.get('current_path'))),
    releaseLink: `${deployPath}/release`,
    capistranoLog: `${deployPath}/revisions.log`,
  })
}
