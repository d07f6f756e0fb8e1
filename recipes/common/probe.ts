import { posix } from 'node:path'
import { parseMarkers, sh, type Command } from 'deployfile'
import { parseCapistranoLog, parseLedger, type LedgerEntry } from './ledger.js'
import type { Layout } from './layout.js'
import { heldOrBroken, takeLockScript, type LockInfo, type LockOwner } from './lock.js'

/** A release directory found on the host. */
export interface ReleaseDir {
  name: string
  /** First line of its REVISION file, when it has one. */
  revision?: string
  /** The directory holds something (an empty one was never a release). */
  complete: boolean
  /** Deployer's BAD_RELEASE marker is inside. */
  markedBad: boolean
}

/** What one probe learned about a host: the input of every fleet decision. */
export interface HostView {
  alias: string
  /** The host's clock (seconds), for the lock's age. */
  now: number
  /** Exactly what `current` pointed to (readlink), if it is a link. */
  currentTarget?: string
  /** The release `current` points to, when it points into the releases directory. */
  current?: string
  /** The release the `release` link points at: one a run was preparing. */
  preparing?: string
  /** `current` is a real directory, not a link: it cannot be switched atomically. */
  currentIsDirectory: boolean
  releases: ReleaseDir[]
  /** Our ledger, Deployer 7's records in it, and Capistrano's revisions.log. */
  ledger: LedgerEntry[]
  lock: LockInfo
  /** `mv -T` (atomic replace of a link) is available. */
  mvT: boolean
  /** Creating the layout failed (permission, no space, bad path): the shell's message. */
  setupError?: string
}

/**
 * The probe: one round trip that reads everything the fleet view needs. With
 * `lockOwner` it first creates the layout and takes the lock; without, it
 * only reads (dep releases, dry runs).
 */
export function probeScript(layout: Layout, lockOwner?: LockOwner): Command {
  const releases = layout.releasesDir
  // A current_path elsewhere (/var/www/html) needs its directory for the switch's rename.
  const currentDir = posix.dirname(layout.currentPath)
  const dirs = [layout.depDir, releases, layout.sharedDir, ...(currentDir === layout.deployPath ? [] : [currentDir])]
  const prepare = lockOwner
    ? sh`if ! err=$(mkdir -p -- ${dirs} 2>&1); then
  printf '@setup_error %s\\n' "$(printf '%s' "$err" | tr '\\n' ' ')"
  exit 0
fi
${takeLockScript(layout, lockOwner)}`
    : sh`if [ -d ${layout.lockDir} ]; then ${heldOrBroken(layout)}; else echo '@lock free'; fi`
  return sh`${prepare}
echo "@now $(date +%s)"
if [ -L ${layout.currentPath} ]; then printf '@current %s\\n' "$(readlink -- ${layout.currentPath})"; elif [ -d ${layout.currentPath} ]; then echo '@current_directory'; fi
if [ -L ${layout.releaseLink} ]; then printf '@release_link %s\n' "$(readlink -- ${layout.releaseLink})"; fi
for d in ${releases}/*/; do
  [ -d "$d" ] || continue
  n=\${d%/}; n=\${n##*/}
  c=0; for f in "$d"* "$d".[!.]* "$d"..?*; do if [ -e "$f" ] || [ -L "$f" ]; then c=1; break; fi; done
  b=0; [ -e "$d/BAD_RELEASE" ] && b=1
  r=; [ -f "$d/REVISION" ] && { IFS= read -r r < "$d/REVISION" || true; }
  printf '@release\\t%s\\t%s\\t%s\\t%s\\n' "$c" "$b" "$r" "$n"
done
if mv --help 2>&1 | grep -q -- '--no-target-directory'; then echo '@mv_t yes'; fi
echo '@ledger_begin'
cat -- ${layout.ledgerFile} 2>/dev/null || true
echo
echo '@ledger_end'
if [ -f ${layout.capistranoLog} ]; then echo '@capistrano_begin'; tail -n 200 -- ${layout.capistranoLog}; echo; echo '@capistrano_end'; fi
true`
}

/** Parses the probe's output (`@key value` lines and the ledgers between markers). */
export function parseProbe(alias: string, layout: Layout, output: string): HostView {
  const markers = parseMarkers(output)
  const value = (key: string) => markers.get(key) ?? ''
  const has = (key: string) => markers.has(key)
  const releases: ReleaseDir[] = markers
    .all('release')
    .map((l) => {
      const [complete, bad, revision, ...name] = l.split('\t')
      return { name: name.join('\t'), complete: complete === '1', markedBad: bad === '1', revision: revision || undefined }
    })
    .filter((r) => r.name && !r.name.includes('\n'))
  const currentTarget = has('current') ? value('current').replace(/\/+$/, '') : undefined
  const ledger = [...parseLedger(markers.block('ledger')), ...parseCapistranoLog(markers.block('capistrano'))]
  const setupError = has('setup_error') ? value('setup_error').trim() : undefined
  return {
    alias,
    now: Number(value('now')) || Math.floor(Date.now() / 1000),
    currentTarget: currentTarget || undefined,
    current: currentTarget ? releaseNameOf(layout, currentTarget) : undefined,
    currentIsDirectory: has('current_directory'),
    preparing: has('release_link') ? releaseNameOf(layout, value('release_link'), layout.releaseLink) : undefined,
    releases,
    ledger,
    lock: parseLock(value('lock'), value('owner')),
    mvT: has('mv_t'),
    setupError,
  }
}

/** The release a link target names, when it points into the releases directory (relative or absolute). */
export function releaseNameOf(layout: Layout, target: string, link = layout.currentPath): string | undefined {
  const absolute = posix.resolve(posix.dirname(link), target)
  return posix.dirname(absolute) === layout.releasesDir ? posix.basename(absolute) : undefined
}

function parseLock(state: string, ownerText: string): LockInfo {
  const [word, ...rest] = state.split(' ')
  if (word === 'taken' || word === 'free') return { state: word }
  if (word === 'error') return { state: 'error', error: rest.join(' ').trim() || 'unknown error' }
  if (word === 'broken') return { state: 'broken' }
  if (word !== 'held') return { state: 'error', error: 'the probe said nothing about the lock' }
  let owner: LockOwner | undefined
  try {
    owner = JSON.parse(ownerText) as LockOwner
  } catch {
    owner = { user: ownerText || undefined }
  }
  return { state: 'held', owner }
}
