/**
 * One line of `.dep/releases_log`. Deployer 7 writes the same file with its
 * own shape (`release_name`, `created_at`); those lines are read as records
 * of releases another tool made.
 */
export interface LedgerEntry {
  release: string
  /**
   * `prepared`: built, not live yet; `live`: switched to; `failed`: a deploy
   * that did not finish; `rolled_back`: left by `dep rollback`; `drifted`: a
   * note that this host kept serving `release` when the fleet went elsewhere.
   */
  status: 'prepared' | 'live' | 'failed' | 'rolled_back' | 'drifted'
  at: string
  user?: string
  run_id?: string
  revision?: string
  reason?: string
  /** On a failed run's record: the hosts that could not be brought back. */
  drifted?: string[]
  /**
   * On a `failed` record: this host was left out of a run that went on on the
   * other hosts (`--max-fail`): the release is bad here, not for the fleet.
   */
  left_out?: boolean
  /** Set on records read from another tool's log: `deployer` or `capistrano`. */
  origin?: 'deployer' | 'capistrano'
}

/** Parses JSON lines (ours and Deployer 7's), skipping lines a crash may have cut short. */
export function parseLedger(text: string): LedgerEntry[] {
  const entries: LedgerEntry[] = []
  for (const line of text.split('\n')) {
    const trimmed = line.trim()
    if (!trimmed) continue
    try {
      const entry = JSON.parse(trimmed) as Record<string, unknown>
      if (entry && typeof entry.release === 'string' && typeof entry.status === 'string') entries.push(entry as unknown as LedgerEntry)
      else if (entry && (typeof entry.release_name === 'string' || typeof entry.release_name === 'number')) {
        entries.push({
          release: String(entry.release_name),
          status: 'live',
          at: typeof entry.created_at === 'string' ? entry.created_at : '',
          user: typeof entry.user === 'string' ? entry.user : undefined,
          revision: typeof entry.revision === 'string' ? entry.revision : undefined,
          origin: 'deployer',
        })
      }
    } catch {
      // a torn line: ignore it
    }
  }
  return entries
}

/**
 * Capistrano's `revisions.log`: "Branch main (at abc123) deployed as release
 * 20240101120000 by alice", and "alice rolled back to release 2024…".
 */
export function parseCapistranoLog(text: string): LedgerEntry[] {
  const entries: LedgerEntry[] = []
  for (const line of text.split('\n')) {
    const deployed = /\(at (\S+)\) deployed as release (\S+) by (\S+)/.exec(line)
    if (deployed) entries.push({ release: deployed[2], status: 'live', at: '', revision: deployed[1], user: deployed[3], origin: 'capistrano' })
  }
  return entries
}

/** The last recorded status of each release (notes like `drifted` are not a release's status). */
export function releaseStatuses(entries: LedgerEntry[]): Map<string, LedgerEntry['status']> {
  const statuses = new Map<string, LedgerEntry['status']>()
  for (const entry of entries) if (entry.status !== 'drifted') statuses.set(entry.release, entry.status)
  return statuses
}

/** Releases that were live at some point (a half-prepared release left by a killed run never was). */
export function wentLive(entries: LedgerEntry[]): Set<string> {
  return new Set(entries.filter((e) => e.status === 'live').map((e) => e.release))
}

/** A release that must never be switched to or kept for: it failed or was rolled back. */
export function isBad(status: LedgerEntry['status'] | undefined): boolean {
  return status === 'failed' || status === 'rolled_back'
}
