import { posix } from 'node:path'
import { parseMarkers, ScriptExit, sh, raw, type Command } from 'deployfile'
import type { LedgerEntry } from './ledger.js'
import { linkTarget, releaseDir, type Layout } from './layout.js'

/*
 * Every script here is built with `sh`, so each path and value is POSIX
 * single-quoted (safe on dash), and every path argument comes after `--` so a
 * name with a leading dash is never read as an option.
 */

/** Refuses a `current` that is a real directory (it cannot be switched atomically). */
export function refuseRealCurrent(layout: Layout): Command {
  const current = layout.currentPath
  return sh`if [ -d ${current} ] && [ ! -L ${current} ]; then echo ${`deployfile: ${current} is a real directory, not a link; move it away (e.g. into releases/) before deploying`} >&2; exit ${ScriptExit.RefusedState}; fi`
}

/** Appends records to the ledger. */
export function ledgerAppend(layout: Layout, ...entries: LedgerEntry[]): Command {
  return joinCommands(entries.map((entry) => sh`printf '%s\\n' ${JSON.stringify(entry)} >> ${layout.ledgerFile}`))
}

/** deploy:release: the release directory and the `release` link. */
export function createReleaseScript(layout: Layout, name: string): Command {
  const dir = releaseDir(layout, name)
  return sh`${refuseRealCurrent(layout)}
mkdir -- ${dir}
ln -sfn -- ${linkTarget(layout.releaseLink, dir)} ${layout.releaseLink}`
}

/**
 * The one switch: points `current_path` to exactly `target` with one rename
 * (`mv -T` of a new link, made next to it, over the old one): atomic, wherever
 * current_path is. Without `mv -T`, `ln -sfn` is the best the host offers.
 */
export function pointCurrentScript(layout: Layout, target: string, mvT: boolean): Command {
  const current = layout.currentPath
  const temporary = `${current}.deployfile-tmp`
  return mvT ? sh`ln -sfn -- ${target} ${temporary} && mv -fT -- ${temporary} ${current}` : sh`ln -sfn -- ${target} ${current}`
}

/**
 * deploy:symlink and rollback: `current` goes to release `name` (checking
 * first that its directory is there), and the ledger records it, in one script.
 */
export function switchScript(layout: Layout, name: string, mvT: boolean, entries: LedgerEntry[]): Command {
  const dir = releaseDir(layout, name)
  return sh`set -e
[ -d ${dir} ] || { echo ${`deployfile: ${dir} is missing`} >&2; exit ${ScriptExit.MissingRelease}; }
${pointCurrentScript(layout, linkTarget(layout.currentPath, dir), mvT)}
if [ -L ${layout.releaseLink} ]; then rm -f -- ${layout.releaseLink}; fi
${ledgerAppend(layout, ...entries)}`
}

/**
 * Undoes this run on a host: if `current` points at the new release, it is
 * restored to exactly the link target it had before (wherever that was), or
 * removed when there was none; the new release and its link go; the ledger
 * records the failure. Prints `@switched_back` when it moved `current`.
 */
export function revertScript(options: {
  layout: Layout
  name: string
  previousTarget?: string
  mvT: boolean
  dropRelease: boolean
  entries: LedgerEntry[]
}): Command {
  const { layout, name } = options
  const dir = releaseDir(layout, name)
  const newTarget = linkTarget(layout.currentPath, dir)
  const back = options.previousTarget !== undefined ? pointCurrentScript(layout, options.previousTarget, options.mvT) : sh`rm -f -- ${layout.currentPath}`
  return sh`set -e
now=$(readlink -- ${layout.currentPath} 2>/dev/null || true)
if [ "$now" = ${newTarget} ] || [ "$now" = ${dir} ]; then
  ${back}
  echo '@switched_back'
fi
if [ -L ${layout.releaseLink} ]; then rm -f -- ${layout.releaseLink}; fi
${options.dropRelease ? sh`rm -rf -- ${dir}` : sh`:`}
${ledgerAppend(layout, ...options.entries)}`
}

/** Whether revertScript moved `current` back (its `@switched_back` line). */
export function switchedBack(output: string): boolean {
  return parseMarkers(output).has('switched_back')
}

/** deploy:update_code for the git strategy: a bare mirror updated, the revision exported. */
export function gitExportScript(options: { layout: Layout; releasePath: string; repository: string; ref: string; git: string }): Command {
  const repo = options.layout.repoDir
  const git = raw(options.git)
  return sh`set -e
if [ -d ${repo} ]; then
  ${git} -C ${repo} remote set-url origin ${options.repository}
  ${git} -C ${repo} fetch --quiet --prune --tags origin '+refs/heads/*:refs/heads/*'
else
  ${git} clone --quiet --mirror -- ${options.repository} ${repo}
fi
rev=$(${git} -C ${repo} rev-parse --verify --quiet ${`${options.ref}^{commit}`}) || { echo ${`deployfile: revision "${options.ref}" not found in ${options.repository}`} >&2; exit ${ScriptExit.NotFound}; }
${git} -C ${repo} archive --format=tar "$rev" | tar -x -f - -C ${options.releasePath}
printf '%s\\n' "$rev" > ${`${options.releasePath}/REVISION`}
echo "@revision $rev"`
}

/** The revision gitExportScript exported (its `@revision` line). */
export function exportedRevision(output: string): string | undefined {
  return parseMarkers(output).get('revision') || undefined
}

/** deploy:update_code for an upload: the REVISION file a git export writes too. */
export function revisionFileScript(releasePath: string, revision: string): Command {
  return sh`printf '%s\\n' ${revision} > ${`${releasePath}/REVISION`}`
}

/** Run locally: the git HEAD of an uploaded directory, or nothing when it is not a repository. */
export function localHeadScript(directory: string): Command {
  return sh`git -C ${directory} rev-parse HEAD 2>/dev/null || true`
}

/** What `current` points to now, exactly (nothing when it is no link). */
export function readCurrentScript(layout: Layout): Command {
  return sh`readlink -- ${layout.currentPath} || true`
}

/** The relative path from the directory holding `from` to `to`, for links that survive a moved deploy_path. */
export function relativeLink(from: string, to: string): string {
  return posix.relative(posix.dirname(from), to)
}

/** deploy:shared: shared dirs and files seeded from the release when missing, then linked into it. */
export function sharedScript(layout: Layout, releasePath: string, dirs: string[], files: string[]): Command | undefined {
  if (dirs.length + files.length === 0) return undefined
  const link = (kind: 'd' | 'f', path: string) => {
    const shared = `${layout.sharedDir}/${path}`
    const inRelease = `${releasePath}/${path}`
    const seed = kind === 'd' ? sh`if [ -d ${inRelease} ]; then cp -a -- ${inRelease} ${shared}; else mkdir -p -- ${shared}; fi` : sh`if [ -f ${inRelease} ]; then cp -a -- ${inRelease} ${shared}; else touch -- ${shared}; fi`
    return sh`if [ ! -${raw(kind)} ${shared} ]; then
  mkdir -p -- ${posix.dirname(shared)}
  ${seed}
fi
rm -rf -- ${inRelease}
mkdir -p -- ${posix.dirname(inRelease)}
ln -s -- ${relativeLink(inRelease, shared)} ${inRelease}`
  }
  return joinCommands([sh`set -e`, ...dirs.map(cleanRelative).map((d) => link('d', d)), ...files.map(cleanRelative).map((f) => link('f', f))])
}

/** How deploy:writable makes `dirs` of the release writable (the writable_* and http_* settings). */
export interface WritableOptions {
  dirs: string[]
  mode: 'acl' | 'chmod' | 'chown' | 'chgrp' | 'skip'
  recursive: boolean
  chmodMode: string
  httpUser?: string
  httpGroup?: string
}

/** deploy:writable in one of its modes; a mode the host cannot do fails with the reason. */
export function writableScript(options: WritableOptions & { releasePath: string }): Command | undefined {
  // ./-relative: a directory named like an option stays a directory.
  const dirs = options.dirs.map(cleanRelative).map((d) => `./${d}`)
  if (dirs.length === 0 || options.mode === 'skip') return undefined
  const R = raw(options.recursive ? '-R' : '')
  const detectUser = sh`HTTP_USER=${options.httpUser ?? ''}
if [ -z "$HTTP_USER" ]; then HTTP_USER=$(ps axo user,comm | grep -E '[a]pache|[h]ttpd|[_]www|[w]ww-data|[n]ginx' | grep -v root | head -n 1 | cut -d' ' -f1); fi
if [ -z "$HTTP_USER" ]; then echo 'deployfile: writable_mode needs http_user (no web server user found); set http_user, or writable_mode chmod/skip' >&2; exit ${ScriptExit.MissingPrerequisite}; fi`
  const body = {
    acl: sh`command -v setfacl >/dev/null 2>&1 || { echo 'deployfile: writable_mode "acl" needs setfacl, which is not installed on this host (apt-get install acl), or set writable_mode to chmod, chown, chgrp or skip' >&2; exit ${ScriptExit.MissingPrerequisite}; }
${detectUser}
ME=$(id -un)
setfacl ${R} -L -m "u:$HTTP_USER:rwX" -m "u:$ME:rwX" ${dirs}
setfacl ${R} -dL -m "u:$HTTP_USER:rwX" -m "u:$ME:rwX" ${dirs}`,
    chmod: sh`chmod ${R} ${options.chmodMode} ${dirs}`,
    chown: sh`${detectUser}
chown ${R} "$HTTP_USER" ${dirs} || { echo 'deployfile: writable_mode "chown" failed: the deploy user may not change owners (use acl or chgrp)' >&2; exit ${ScriptExit.MissingPrerequisite}; }`,
    chgrp: options.httpGroup
      ? sh`chgrp ${R} ${options.httpGroup} ${dirs} && chmod ${R} g+rwX ${dirs}`
      : sh`echo 'deployfile: writable_mode "chgrp" needs http_group' >&2; exit ${ScriptExit.MissingPrerequisite}`,
  }[options.mode]
  return sh`set -e
cd -- ${options.releasePath}
mkdir -p -- ${dirs}
${body}`
}

/** deploy:clear_paths. */
export function clearPathsScript(releasePath: string, paths: string[]): Command | undefined {
  if (paths.length === 0) return undefined
  return sh`cd -- ${releasePath} && rm -rf -- ${paths.map(cleanRelative)}`
}

/** deploy:copy_dirs: copies dirs from the live release into the new one (e.g. vendor, to make installs faster). */
export function copyDirsScript(layout: Layout, releasePath: string, dirs: string[]): Command | undefined {
  if (dirs.length === 0) return undefined
  return joinCommands(
    dirs.map(cleanRelative).map((dir) => {
      const from = `${layout.currentPath}/${dir}`
      const to = `${releasePath}/${dir}`
      return sh`if [ -d ${from} ]; then mkdir -p -- ${posix.dirname(to)} && cp -a -- ${from} ${to}; fi`
    }),
  )
}

/** Removes releases (cleanup). */
export function removeReleasesScript(layout: Layout, names: string[]): Command {
  return sh`rm -rf -- ${names.map((name) => releaseDir(layout, name))}`
}

/** A path inside the release: no absolute paths, no `..`. */
export function cleanRelative(path: string): string {
  const normal = posix.normalize(path).replace(/^\/+|\/+$/g, '')
  if (!normal || normal === '.' || normal.startsWith('..')) throw new Error(`"${path}" must be a path inside the release`)
  return normal
}

/** Joins commands into one script, one per line. */
export function joinCommands(parts: Command[]): Command {
  if (parts.length === 0) return sh`:`
  return parts.slice(1).reduce((all, part) => sh`${all}
${part}`, parts[0])
}
