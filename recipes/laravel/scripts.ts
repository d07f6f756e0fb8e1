import { parseMarkers, raw, ScriptExit, sh, type Command } from 'deployfile'
import type { Layout } from '../common.js'

/** The directories a fresh shared storage/ needs before Laravel can boot. */
export const STORAGE_DIRS = [
  'app/public',
  'framework/cache/data',
  'framework/sessions',
  'framework/views',
  'logs',
]

/** Creates Laravel's storage skeleton in shared/ (idempotent). */
export function storageSkeletonScript(layout: Layout): Command {
  return sh`mkdir -p ${STORAGE_DIRS.map((dir) => `${layout.sharedDir}/storage/${dir}`)}`
}

/** The shared .env a release links to when the dotenv setting is not used. */
export function sharedEnvPath(layout: Layout): string {
  return `${layout.sharedDir}/.env`
}

/** Where the new .env is uploaded (inside the new release) before it is renamed into place. */
export function envUploadPath(releasePath: string): string {
  return `${releasePath}/.env.deployfile-new`
}

/**
 * Makes the uploaded .env the release's own (a 0600 file, not a link to
 * shared/): the live release keeps reading its own .env until the switch,
 * and a revert brings the old one back with the old release.
 */
export function releaseEnvScript(releasePath: string): Command {
  return sh`chmod 600 -- ${envUploadPath(releasePath)} && rm -f -- ${`${releasePath}/.env`} && mv -f -- ${envUploadPath(releasePath)} ${`${releasePath}/.env`}`
}

/** Seeds shared/.env from the release's .env.example, only when no shared .env exists. */
export function seedEnvScript(layout: Layout, releasePath: string): Command {
  const shared = sharedEnvPath(layout)
  const example = `${releasePath}/.env.example`
  return sh`if [ ! -f ${shared} ] && [ -f ${example} ]; then (umask 077; cp -- ${example} ${shared}); fi`
}

/**
 * Creates the SQLite database file named in the .env the release reads when
 * missing (Laravel does not create it). Only absolute paths: a relative one
 * would resolve inside a release and be lost at the next deploy.
 */
export function sqliteFileScript(env: string): Command {
  return sh`if [ -f ${env} ] && grep -Eq '^DB_CONNECTION=("|'"'"')?sqlite' ${env}; then
  db=$(grep -E '^DB_DATABASE=' ${env} | tail -n 1 | cut -d= -f2- | sed -e 's/^["'"'"']//' -e 's/["'"'"']$//')
  case "$db" in
    /*) if [ ! -f "$db" ]; then mkdir -p "$(dirname "$db")" && touch "$db"; fi ;;
    '') echo 'deployfile: DB_DATABASE is empty in shared/.env; set an absolute path in shared/ so the database survives releases' >&2 ;;
    *) echo "deployfile: DB_DATABASE=$db is relative; use an absolute path in shared/ so the database survives releases" >&2 ;;
  esac
fi`
}

/**
 * deploy:vendors: composer install with Deployer's options, vendors copied
 * from the live release first when asked, and the Laravel version reported
 * in the same round trip.
 */
export function vendorsScript(options: {
  layout: Layout
  releasePath: string
  php: string
  composer?: string
  composerOptions: string
  copyVendors: boolean
}): Command {
  const composerPhar = `${options.layout.depDir}/composer.phar`
  const liveVendor = `${options.layout.currentPath}/vendor`
  const composer = options.composer
    ? sh`COMPOSER_BIN=${options.composer}`
    : sh`if command -v composer >/dev/null 2>&1; then COMPOSER_BIN=composer
elif [ -f ${composerPhar} ]; then COMPOSER_BIN=${`${options.php} ${composerPhar}`}
else echo 'deployfile: composer is not installed on this host; install it, or set bin/composer' >&2; exit ${ScriptExit.MissingPrerequisite}; fi`
  const copy = options.copyVendors
    ? sh`if [ -d ${liveVendor} ] && [ ! -d vendor ]; then cp -a ${liveVendor} vendor; fi`
    : sh`:`
  return sh`set -e
cd ${options.releasePath}
${composer}
${copy}
$COMPOSER_BIN install ${raw(options.composerOptions)}
printf '@laravel_version %s\\n' "$(${raw(options.php)} artisan --version 2>/dev/null | sed -n 's/.* \\([0-9][0-9.]*\\).*/\\1/p')"`
}

/** The Laravel version vendorsScript reported (its `@laravel_version` line), if artisan said one. */
export function reportedLaravelVersion(output: string): string | undefined {
  return parseMarkers(output).get('laravel_version')
}

/** An artisan command run inside the release directory (never through `current`: caches bake paths). */
export function artisanScript(php: string, releasePath: string, args: string): Command {
  return sh`cd ${releasePath} && ${raw(php)} artisan ${raw(args)}`
}

/** artisan:migrate: skipped (and says so) when the release has no usable .env. */
export function migrateScript(php: string, releasePath: string, args: string): Command {
  const env = `${releasePath}/.env`
  return sh`if [ ! -s ${env} ]; then echo '@skip .env is missing or empty'; exit 0; fi
cd ${releasePath} && ${raw(php)} artisan ${raw(args)}`
}

/** Why migrateScript skipped the migrations (its `@skip` line), if it did. */
export function migrationsSkipped(output: string): string | undefined {
  return parseMarkers(output).get('skip')
}
