import { posix } from 'node:path'
import { sh, raw, type Command } from 'deployfile'
import type { LedgerEntry } from './ledger.js'
import type { LockOwner } from './host-state.js'

/*
 * Every script here is built with `sh`, so each path and value is POSIX
 * single-quoted: deploy paths with spaces, quotes or `$(…)` are safe on dash.
 */

const lockDir = (deployPath: string) => `${deployPath}/.dep/deploy.lock`
const ledgerFile = (deployPath: string) => `${deployPath}/.dep/releases_log`

/** Refuses a `current` that is a real directory (it cannot be switched atomically). */
export function refuseRealCurrent(deployPath: string): Command {
  const current = `${deployPath}/current`
  return sh`if [ -d ${current} ] && [ ! -L ${current} ]; then echo ${`deployfile: ${current} is a real directory, not a link; move it away (e.g. into releases/) before deploying`} >&2; exit 3; fi`
}

/** deploy:setup: the layout, created when missing. */
export function setupScript(deployPath: string): Command {
  return sh`${refuseRealCurrent(deployPath)}
mkdir -p ${`${deployPath}/.dep`} ${`${deployPath}/releases`} ${`${deployPath}/shared`}`
}

/**
 * The probe: one round trip that creates the layout, optionally takes the lock
 * (mkdir is atomic), and reports everything later steps need. `setup: false`
 * when deploy:setup already queued the layout script: it travels in the same
 * round trip, and repeating it ran (and, with -v, showed) it twice.
 */
export function probeScript(deployPath: string, lockOwner?: LockOwner, options: { setup?: boolean } = {}): Command {
  const lock = lockDir(deployPath)
  const take = lockOwner
    ? sh`if mkdir ${lock} 2>/dev/null; then
  printf '%s\\n' ${JSON.stringify(lockOwner)} > ${`${lock}/owner.json`}
  echo '@lock taken'
else
  echo '@lock held'
  printf '@owner %s\\n' "$(tr -d '\\n' < ${`${lock}/owner.json`} 2>/dev/null)"
fi`
    : sh`if [ -d ${lock} ]; then echo '@lock held'; printf '@owner %s\\n' "$(tr -d '\\n' < ${`${lock}/owner.json`} 2>/dev/null)"; else echo '@lock free'; fi`
  const head = options.setup === false ? sh`set -e` : sh`set -e
${setupScript(deployPath)}`
  return sh`${head}
${take}
echo "@now $(date +%s)"
echo "@current $(readlink ${`${deployPath}/current`} 2>/dev/null || true)"
echo "@releases $(ls -1 ${`${deployPath}/releases`} 2>/dev/null | tr '\\n' ' ')"
if mv --help 2>&1 | grep -q -- '--no-target-directory'; then echo '@mv_t yes'; else echo '@mv_t no'; fi
echo '@ledger_begin'
cat ${ledgerFile(deployPath)} 2>/dev/null || true
echo
echo '@ledger_end'`
}

/** Appends one record to the ledger. */
export function ledgerAppend(deployPath: string, entry: LedgerEntry): Command {
  return sh`printf '%s\\n' ${JSON.stringify(entry)} >> ${ledgerFile(deployPath)}`
}

/** Removes the lock only when this run holds it (its run id is in owner.json). */
export function unlockScript(deployPath: string, runId: string): Command {
  const lock = lockDir(deployPath)
  return sh`if [ -d ${lock} ] && grep -q ${`"run_id":"${runId}"`} ${`${lock}/owner.json`} 2>/dev/null; then rm -rf ${lock}; fi`
}

/** Removes the lock whoever holds it, printing the owner first (`deploy:unlock --force`). */
export function forceUnlockScript(deployPath: string): Command {
  const lock = lockDir(deployPath)
  return sh`if [ -d ${lock} ]; then printf 'removed lock of %s\\n' "$(tr -d '\\n' < ${`${lock}/owner.json`} 2>/dev/null)"; rm -rf ${lock}; else echo 'not locked'; fi`
}

/** deploy:release: the release directory and the `release` link. */
export function createReleaseScript(deployPath: string, name: string): Command {
  return sh`mkdir ${`${deployPath}/releases/${name}`}
ln -sfn ${`releases/${name}`} ${`${deployPath}/release`}`
}

/**
 * Points `link` at `target` atomically: a new link under a temporary name,
 * renamed over the old one (`mv -T`). Without `mv -T`, `ln -sfn` is the best
 * the host offers.
 */
export function atomicLink(linkPath: string, target: string, mvT: boolean): Command {
  const temporary = `${linkPath}.deployfile-tmp`
  return mvT
    ? sh`ln -sfn ${target} ${temporary} && mv -fT ${temporary} ${linkPath}`
    : sh`ln -sfn ${target} ${linkPath}`
}

/** deploy:update_code for the git strategy: a bare mirror updated, the revision exported. */
export function gitExportScript(options: { deployPath: string; releasePath: string; repository: string; ref: string; git: string }): Command {
  const repo = `${options.deployPath}/.dep/repo`
  const git = raw(options.git)
  return sh`set -e
if [ -d ${repo} ]; then
  ${git} -C ${repo} remote set-url origin ${options.repository}
  ${git} -C ${repo} fetch --quiet --prune --tags origin '+refs/heads/*:refs/heads/*'
else
  ${git} clone --quiet --mirror ${options.repository} ${repo}
fi
rev=$(${git} -C ${repo} rev-parse --verify --quiet ${`${options.ref}^{commit}`}) || { echo ${`deployfile: revision "${options.ref}" not found in ${options.repository}`} >&2; exit 4; }
${git} -C ${repo} archive --format=tar "$rev" | tar -x -f - -C ${options.releasePath}
printf '%s\\n' "$rev" > ${`${options.releasePath}/REVISION`}
echo "@revision $rev"`
}

/** The relative path from the directory holding `from` to `to`, for links that survive a moved deploy_path. */
export function relativeLink(from: string, to: string): string {
  return posix.relative(posix.dirname(from), to)
}

/** deploy:shared: shared dirs and files seeded from the release when missing, then linked into it. */
export function sharedScript(deployPath: string, releasePath: string, dirs: string[], files: string[]): Command {
  const parts: Command[] = [sh`set -e`]
  for (const dir of dirs.map(cleanRelative)) {
    const shared = `${deployPath}/shared/${dir}`
    const inRelease = `${releasePath}/${dir}`
    parts.push(sh`if [ ! -d ${shared} ]; then
  mkdir -p ${posix.dirname(shared)}
  if [ -d ${inRelease} ]; then cp -a ${inRelease} ${shared}; else mkdir -p ${shared}; fi
fi
rm -rf ${inRelease}
mkdir -p ${posix.dirname(inRelease)}
ln -s ${relativeLink(inRelease, shared)} ${inRelease}`)
  }
  for (const file of files.map(cleanRelative)) {
    const shared = `${deployPath}/shared/${file}`
    const inRelease = `${releasePath}/${file}`
    parts.push(sh`if [ ! -f ${shared} ]; then
  mkdir -p ${posix.dirname(shared)}
  if [ -f ${inRelease} ]; then cp -a ${inRelease} ${shared}; else touch ${shared}; fi
fi
rm -rf ${inRelease}
mkdir -p ${posix.dirname(inRelease)}
ln -s ${relativeLink(inRelease, shared)} ${inRelease}`)
  }
  return joinCommands(parts)
}

/** deploy:writable in one of its modes; a mode the host cannot do fails with the reason. */
export function writableScript(options: {
  releasePath: string
  dirs: string[]
  mode: 'acl' | 'chmod' | 'chown' | 'chgrp' | 'skip'
  recursive: boolean
  chmodMode: string
  httpUser?: string
  httpGroup?: string
}): Command | undefined {
  const dirs = options.dirs.map(cleanRelative)
  if (dirs.length === 0 || options.mode === 'skip') return undefined
  const R = raw(options.recursive ? '-R' : '')
  const detectUser = sh`HTTP_USER=${options.httpUser ?? ''}
if [ -z "$HTTP_USER" ]; then HTTP_USER=$(ps axo user,comm | grep -E '[a]pache|[h]ttpd|[_]www|[w]ww-data|[n]ginx' | grep -v root | head -n 1 | cut -d' ' -f1); fi
if [ -z "$HTTP_USER" ]; then echo 'deployfile: writable_mode needs http_user (no web server user found); set http_user, or writable_mode chmod/skip' >&2; exit 5; fi`
  const body = {
    acl: sh`command -v setfacl >/dev/null 2>&1 || { echo 'deployfile: writable_mode "acl" needs setfacl, which is not installed on this host (apt-get install acl), or set writable_mode to chmod, chown, chgrp or skip' >&2; exit 5; }
${detectUser}
ME=$(id -un)
setfacl ${R} -L -m "u:$HTTP_USER:rwX" -m "u:$ME:rwX" ${dirs}
setfacl ${R} -dL -m "u:$HTTP_USER:rwX" -m "u:$ME:rwX" ${dirs}`,
    chmod: sh`chmod ${R} ${options.chmodMode} ${dirs}`,
    chown: sh`${detectUser}
chown ${R} "$HTTP_USER" ${dirs} || { echo 'deployfile: writable_mode "chown" failed: the deploy user may not change owners (use acl or chgrp)' >&2; exit 5; }`,
    chgrp: options.httpGroup
      ? sh`chgrp ${R} ${options.httpGroup} ${dirs} && chmod ${R} g+rwX ${dirs}`
      : sh`echo 'deployfile: writable_mode "chgrp" needs http_group' >&2; exit 5`,
  }[options.mode]
  return sh`set -e
cd ${options.releasePath}
mkdir -p ${dirs}
${body}`
}

/** deploy:clear_paths. */
export function clearPathsScript(releasePath: string, paths: string[]): Command | undefined {
  if (paths.length === 0) return undefined
  return sh`cd ${releasePath} && rm -rf ${paths.map(cleanRelative)}`
}

/** deploy:copy_dirs: copies dirs from the live release into the new one (e.g. vendor, to make installs faster). */
export function copyDirsScript(deployPath: string, releasePath: string, dirs: string[]): Command | undefined {
  if (dirs.length === 0) return undefined
  const parts = dirs.map(cleanRelative).map((dir) => {
    const from = `${deployPath}/current/${dir}`
    const to = `${releasePath}/${dir}`
    return sh`if [ -d ${from} ]; then mkdir -p ${posix.dirname(to)} && cp -a ${from} ${to}; fi`
  })
  return joinCommands(parts)
}

/** Removes releases (cleanup and discarded releases). */
export function removeReleasesScript(deployPath: string, names: string[]): Command | undefined {
  if (names.length === 0) return undefined
  return sh`rm -rf ${names.map((name) => `${deployPath}/releases/${name}`)}`
}

/** A path inside the release: no absolute paths, no `..`. */
export function cleanRelative(path: string): string {
  const normal = posix.normalize(path).replace(/^\/+|\/+$/g, '')
  if (!normal || normal === '.' || normal.startsWith('..')) throw new Error(`"${path}" must be a path inside the release`)
  return normal
}

/** Joins commands into one script, one per line. */
export function joinCommands(parts: Command[]): Command {
  return parts.slice(1).reduce((all, part) => sh`${all}
${part}`, parts[0])
}
