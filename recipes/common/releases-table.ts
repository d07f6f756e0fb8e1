import { kindOf } from './fleet.js'
import type { LedgerEntry } from './ledger.js'
import type { HostView } from './probe.js'
import { formatTable } from './table.js'


/** A git sha shortened; anything else (an upload's label) in full. */
function shortRevision(revision: string | undefined): string {
  if (!revision) return ''
  return /^[0-9a-f]{40}$/.test(revision) ? revision.slice(0, 12) : revision
}

function stateOf(view: HostView, name: string, entries: LedgerEntry[]): string {
  if (name === view.current) return 'live now'
  const release = view.releases.find((r) => r.name === name)
  const last = entries.filter((e) => e.status !== 'drifted').pop()
  const fromLedger = { live: 'was live', failed: 'failed', rolled_back: 'rolled back', prepared: 'never went live', drifted: '' }
  if (!release) return `${last ? fromLedger[last.status] : '?'} (removed)`
  const kind = kindOf(view, release)
  if (kind === 'adopted') return `adopted${entries[0]?.origin ? ` (${entries[0].origin})` : ''}`
  if (kind === 'incomplete') return 'empty directory'
  if (kind === 'bad' && release.markedBad) return 'bad (BAD_RELEASE)'
  if (kind === 'unfinished') return 'never went live'
  return last ? fromLedger[last.status] : 'was live'
}

/**
 * `dep releases` for one host: each release with what a person needs — is it
 * live now, was it live before, did it fail — when it was deployed and by
 * whom (its first record, not a later rollback), and its revision.
 */
export function releasesTable(view: HostView, order: (a: string, b: string) => number): string {
  const byRelease = new Map<string, LedgerEntry[]>()
  for (const entry of view.ledger) byRelease.set(entry.release, [...(byRelease.get(entry.release) ?? []), entry])
  const names = [...new Set([...view.releases.map((r) => r.name), ...byRelease.keys()])].sort(order)
  const rows = names.map((name) => {
    const entries = byRelease.get(name) ?? []
    const first = entries[0]
    const revision = view.releases.find((r) => r.name === name)?.revision ?? entries.find((e) => e.revision)?.revision
    return [`${name === view.current ? '●' : ' '} ${name}`, stateOf(view, name, entries), first?.at ?? '', first?.user ?? '', shortRevision(revision)]
  })
  const current = view.current === undefined && view.currentTarget ? [`  current → ${view.currentTarget} (outside the releases directory)`] : []
  return [`releases on ${view.alias}:`, ...formatTable([['  release', 'state', 'deployed', 'by', 'revision'], ...rows]).map((l) => `  ${l}`), ...current].join('\n')
}
