/** One line of `.dep/releases_log`. */
export interface LedgerEntry {
  release: string
  status: 'prepared' | 'live' | 'failed' | 'rolled_back'
  at: string
  user?: string
  run_id?: string
  revision?: string
  reason?: string
}

/** The last recorded status of each release, in the order releases first appeared. */
export function releaseStatuses(entries: LedgerEntry[]): Map<string, LedgerEntry['status']> {
  const statuses = new Map<string, LedgerEntry['status']>()
  for (const entry of entries) statuses.set(entry.release, entry.status)
  return statuses
}

/** Parses JSON lines, skipping lines a crash may have cut short. */
export function parseLedger(text: string): LedgerEntry[] {
  const entries: LedgerEntry[] = []
  for (const line of text.split('\n')) {
    const trimmed = line.trim()
    if (!trimmed) continue
    try {
      const entry = JSON.parse(trimmed) as LedgerEntry
      if (entry && typeof entry.release === 'string') entries.push(entry)
    } catch {
      // a torn line: ignore it
    }
  }
  return entries
}

/** Sorts release names: numbers numerically, then anything else by name. */
export function compareReleases(a: string, b: string): number {
  const na = /^\d+$/.test(a) ? Number(a) : Number.NaN
  const nb = /^\d+$/.test(b) ? Number(b) : Number.NaN
  if (!Number.isNaN(na) && !Number.isNaN(nb)) return na - nb
  if (!Number.isNaN(na)) return -1
  if (!Number.isNaN(nb)) return 1
  return a.localeCompare(b)
}

/** Releases that were live at some point (a half-prepared release left by a killed run never was). */
export function wentLive(entries: LedgerEntry[]): Set<string> {
  return new Set(entries.filter((e) => e.status === 'live').map((e) => e.release))
}

/** A release that must never be switched to or kept for: it failed or was rolled back. */
export function isBad(status: LedgerEntry['status'] | undefined): boolean {
  return status === 'failed' || status === 'rolled_back'
}
