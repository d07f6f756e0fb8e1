import { DeployError, ExitCode, parseMarkers, sh, type Command } from 'deployfile'
import type { Layout } from './layout.js'

/** Who holds a deploy lock (owner.json). */
export interface LockOwner {
  user?: string
  machine?: string
  pid?: number
  run_id?: string
  started_at?: string
  /** Set when the run could not finish: `interrupted` (aborted at once) or `drifted` (hosts left apart). */
  state?: 'interrupted' | 'drifted'
}

/** The lock as the probe found it. */
export interface LockInfo {
  /** `taken`: by this run now; `held`: by another run; `broken`: a lock directory without an owner; `error`: could not be created. */
  state: 'taken' | 'free' | 'held' | 'broken' | 'error'
  owner?: LockOwner
  /** The shell's message when the lock could not be created. */
  error?: string
}

/** Prints `@lock held` and the owner, or `@lock broken` when owner.json is missing or empty. */
export function heldOrBroken(layout: Layout): Command {
  const owner = `${layout.lockDir}/owner.json`
  return sh`o=$(tr -d '\\n' < ${owner} 2>/dev/null || true); if [ -n "$o" ]; then echo '@lock held'; printf '@owner %s\\n' "$o"; else echo '@lock broken'; fi`
}

/**
 * Takes the lock atomically with its owner inside (written by cat, which
 * names the errno — dash's printf only says "I/O error"): the directory is built
 * with owner.json under a temporary name, then renamed into place, so a lock
 * never exists without its owner. A failure to create it (permission, no
 * space, a bad path) is reported as `@lock error …`, never as held.
 */
export function takeLockScript(layout: Layout, owner: LockOwner): Command {
  const temporary = `${layout.lockDir}.${owner.run_id ?? 'new'}.tmp`
  return sh`if [ -d ${layout.lockDir} ]; then
  ${heldOrBroken(layout)}
elif err=$( { mkdir -- ${temporary} && printf '%s\\n' ${JSON.stringify(owner)} | cat > ${`${temporary}/owner.json`} && mv -T -- ${temporary} ${layout.lockDir}; } 2>&1 ); then
  echo '@lock taken'
else
  rm -rf -- ${temporary} 2>/dev/null || true
  if [ -d ${layout.lockDir} ]; then ${heldOrBroken(layout)}; else printf '@lock error %s\\n' "$(printf '%s' "$err" | tr '\\n' ' ')"; fi
fi`
}

/**
 * Takes over a lock whose owner is known to be gone (it was interrupted, or
 * its run recorded that it drifted): only if owner.json still names that run.
 */
export function takeoverLockScript(layout: Layout, staleRunId: string, owner: LockOwner): Command {
  const file = `${layout.lockDir}/owner.json`
  return sh`if grep -q -- ${`"run_id":"${staleRunId}"`} ${file} 2>/dev/null && printf '%s\\n' ${JSON.stringify(owner)} > ${`${file}.tmp`} && mv -f -- ${`${file}.tmp`} ${file}; then echo '@lock taken'; else ${heldOrBroken(layout)}; fi`
}

/** Whether a lock script took the lock (its `@lock taken` line). */
export function tookLock(output: string): boolean {
  return parseMarkers(output).get('lock') === 'taken'
}

/** Removes the lock only when this run holds it (its run id is in owner.json). */
export function unlockScript(layout: Layout, runId: string): Command {
  return sh`if [ -d ${layout.lockDir} ] && grep -q -- ${`"run_id":"${runId}"`} ${`${layout.lockDir}/owner.json`} 2>/dev/null; then rm -rf -- ${layout.lockDir}; fi`
}

/** Removes the lock whoever holds it, printing the owner first (`deploy:unlock --force`). */
export function forceUnlockScript(layout: Layout): Command {
  const owner = `${layout.lockDir}/owner.json`
  return sh`if [ -d ${layout.lockDir} ]; then o=$(tr -d '\\n' < ${owner} 2>/dev/null || true); printf 'removed the lock of %s\\n' "\${o:-nobody (it was broken: no owner.json)}"; rm -rf -- ${layout.lockDir}; else echo 'not locked'; fi`
}

/** Writes `state` into this run's owner.json (the lock stays: the next run sees why). */
export function markLockScript(layout: Layout, owner: LockOwner, state: NonNullable<LockOwner['state']>): Command {
  const file = `${layout.lockDir}/owner.json`
  return sh`if grep -q -- ${`"run_id":"${owner.run_id}"`} ${file} 2>/dev/null; then printf '%s\\n' ${JSON.stringify({ ...owner, state })} > ${`${file}.tmp`} && mv -f -- ${`${file}.tmp`} ${file}; fi`
}

/** "alice on laptop (pid 42, run 1f2e…) for 5 min" */
export function describeOwner(owner: LockOwner | undefined, now: number): string {
  if (!owner) return 'an unknown run'
  const started = owner.started_at ? Date.parse(owner.started_at) : Number.NaN
  const age = Number.isNaN(started) ? '' : ` for ${formatAge(now * 1000 - started)}`
  const parts = [owner.pid ? `pid ${owner.pid}` : '', owner.run_id ? `run ${owner.run_id.slice(0, 8)}` : ''].filter(Boolean).join(', ')
  const state = owner.state ? ` — that run ${owner.state === 'interrupted' ? 'was aborted' : 'left hosts drifted'}` : ''
  return `${owner.user ?? 'someone'}${owner.machine ? ` on ${owner.machine}` : ''}${parts ? ` (${parts})` : ''}${age}${state}`
}

function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000))
  if (seconds < 120) return `${seconds} s`
  const minutes = Math.round(seconds / 60)
  if (minutes < 120) return `${minutes} min`
  return `${Math.round(minutes / 60)} h`
}

/**
 * The error for a lock that could not be created: its own cause, never
 * "held". No space or a read-only disk is the host's condition (exit 3); a
 * permission or a path is the setup's (exit 2).
 */
export function lockCreateError(alias: string, path: string, message: string): DeployError {
  const hostCondition = /no space|quota|read-only/i.test(message)
  const hint = /no space|quota/i.test(message)
    ? 'Free space on the host, then deploy again. No lock was left behind.'
    : /permission/i.test(message)
      ? `The deploy user cannot write there: fix the owner or mode of ${parentOf(namedPath(message) ?? path)} (or deploy as its owner).`
      : /too long/i.test(message)
        ? 'deploy_path is longer than the host allows: choose a shorter deploy_path.'
        : 'Check deploy_path and the permissions on the host.'
  return new DeployError(`Cannot create the deploy lock on ${alias} (${path}): ${message}`, {
    exitCode: hostCondition ? ExitCode.HostUnreachable : ExitCode.ConfigError,
    hint,
  })
}

/** The path a shell message names (`mkdir: cannot create directory '/var/www': Permission denied`). */
function namedPath(message: string): string | undefined {
  return /'(\/[^']*)'/.exec(message)?.[1]
}

function parentOf(path: string): string {
  return path.replace(/\/[^/]+$/, '') || '/'
}
