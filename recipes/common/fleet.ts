/**
 * The release policy: every decision that must agree across hosts, as pure
 * functions of the fleet view (one HostView per selected host). No I/O here;
 * test/unit/fleet-policy.test.ts proves each rule with plain data.
 */
import { isBad, releaseStatuses, wentLive, type LedgerEntry } from './ledger.js'
import type { HostView, ReleaseDir } from './probe.js'

const isNumber = (name: string) => /^\d+$/.test(name)

/**
 * Orders release names, oldest first: numbers numerically; otherwise the
 * order in which the ledgers first recorded them; otherwise a natural sort
 * (v9 before v10).
 */
export function releaseOrder(views: HostView[]): (a: string, b: string) => number {
  const firstSeen = new Map<string, number>()
  for (const view of views) {
    view.ledger.forEach((entry, index) => {
      const time = Date.parse(entry.at)
      const rank = Number.isNaN(time) ? index : time
      if (!firstSeen.has(entry.release) || rank < firstSeen.get(entry.release)!) firstSeen.set(entry.release, rank)
    })
  }
  return (a, b) => {
    if (isNumber(a) && isNumber(b)) return BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0
    const ra = firstSeen.get(a)
    const rb = firstSeen.get(b)
    if (ra !== undefined && rb !== undefined && ra !== rb && !isNumber(a) && !isNumber(b)) return ra - rb
    return a.localeCompare(b, 'en', { numeric: true })
  }
}

/** Every release name a host knows: on disk or in its ledger (removed ones included). */
function namesOf(view: HostView): string[] {
  return [...view.releases.map((r) => r.name), ...view.ledger.map((e) => e.release)]
}

/**
 * The next release name: one more than the highest number any selected host
 * has on disk or ever recorded, so a name is never reused.
 */
export function nextReleaseName(views: HostView[]): string {
  let highest = 0n
  for (const view of views) for (const name of namesOf(view)) if (isNumber(name) && BigInt(name) > highest) highest = BigInt(name)
  return String(highest + 1n)
}

/** Why a release name given by the user cannot be used, if it cannot. */
export function releaseNameConflict(views: HostView[], name: string): string | undefined {
  const users = views.filter((view) => namesOf(view).includes(name)).map((v) => v.alias)
  return users.length ? `release ${name} already exists (or existed) on ${users.join(', ')}` : undefined
}

/** How a host regards one of its release directories. */
export type ReleaseKind = 'good' | 'bad' | 'unfinished' | 'adopted' | 'incomplete'

/**
 * `good`: went live by our ledger and was never marked bad; `adopted`: made by
 * another tool (or before the ledger was lost) and holds a release; `bad`:
 * failed or rolled back; `unfinished`: prepared by a run that never switched;
 * `incomplete`: an empty directory.
 */
export function kindOf(view: HostView, release: ReleaseDir, bad: Set<string> = new Set()): ReleaseKind {
  if (!release.complete) return 'incomplete'
  if (release.markedBad || bad.has(release.name)) return 'bad'
  // The `release` link points at a release being prepared: a run died (or is still) preparing it.
  if (view.preparing === release.name) return 'unfinished'
  const ours = view.ledger.filter((e) => e.release === release.name && !e.origin)
  if (ours.length === 0) return 'adopted'
  const status = releaseStatuses(ours).get(release.name)
  if (isBad(status)) return 'bad'
  return wentLive(ours).has(release.name) ? 'good' : 'unfinished'
}

/**
 * Releases some host's ledger marks failed or rolled back: bad for the whole fleet. A host left out
 * of a run (`--max-fail`) marks the release bad for itself only: it went live on the others.
 */
export function fleetBad(views: HostView[]): Set<string> {
  const bad = new Set<string>()
  for (const view of views) {
    for (const [name, status] of releaseStatuses(view.ledger.filter((entry) => !entry.left_out))) if (isBad(status)) bad.add(name)
  }
  return bad
}

/** Releases a host could serve: good or adopted, on disk. */
export function servableReleases(view: HostView): ReleaseDir[] {
  return view.releases.filter((r) => ['good', 'adopted'].includes(kindOf(view, r)))
}

/** The live release of each host, by alias (undefined: no current link, or one outside releases/). */
export function currentsOf(views: HostView[]): Map<string, string | undefined> {
  return new Map(views.map((v) => [v.alias, v.current]))
}

/** The release a fleet agrees it serves, or undefined when hosts disagree (or none serves a release). */
export function fleetCurrent(views: HostView[]): string | undefined {
  const currents = new Set(views.map((v) => v.current ?? ''))
  return currents.size === 1 ? [...currents][0] || undefined : undefined
}

/** The decision of `dep rollback`: one release for every host, or why there is none. */
export type RollbackDecision = { target: string } | { reason: string }

/**
 * The newest release that is servable and present, with the same revision,
 * on every host; older than what the fleet serves when it agrees on one. A
 * named release (`rollback_to`) must exist, complete, on every host.
 */
export function rollbackTarget(views: HostView[], wanted?: string): RollbackDecision {
  const order = releaseOrder(views)
  const onAll = (name: string, usable: (view: HostView, release: ReleaseDir) => boolean) =>
    views.every((view) => {
      const release = view.releases.find((r) => r.name === name)
      return release !== undefined && usable(view, release)
    }) && sameRevision(views, name)
  if (wanted) {
    if (onAll(wanted, (_view, release) => release.complete)) return { target: wanted }
    return { reason: `release ${wanted} is not on every selected host with the same revision` }
  }
  const agreed = fleetCurrent(views)
  const bad = fleetBad(views)
  const candidates = [...new Set(views.flatMap((v) => v.releases.map((r) => r.name)))]
    .filter((name) => onAll(name, (view, release) => ['good', 'adopted'].includes(kindOf(view, release, bad))))
    .filter((name) => agreed === undefined || order(name, agreed) < 0)
    .sort(order)
  const target = candidates.pop()
  if (target) return { target }
  return {
    reason: agreed
      ? `no good release older than ${agreed} is on every selected host`
      : 'no good release is on every selected host',
  }
}

function sameRevision(views: HostView[], name: string): boolean {
  const revisions = new Set(views.map((v) => v.releases.find((r) => r.name === name)?.revision).filter(Boolean))
  return revisions.size <= 1
}

/** One line per host for an error: what it serves and what it could go back to. */
export function describeFleet(views: HostView[]): string {
  return views
    .map((view) => {
      const usable = servableReleases(view).map((r) => r.name).sort(releaseOrder(views))
      return `${view.alias}: serves ${view.current ?? view.currentTarget ?? 'nothing'}; good releases: ${usable.join(', ') || 'none'}`
    })
    .join('\n')
}

/**
 * What cleanup removes on one host: releases of ours that failed or never
 * went live first, then anything beyond the `keep` newest servable ones.
 * Never the live release, the one before it, or what this run just made.
 */
export function releasesToRemove(
  view: HostView,
  keep: number,
  order: (a: string, b: string) => number,
  protect: string[] = [],
  bad: Set<string> = new Set(),
): string[] {
  const live = view.current
  const sorted = [...view.releases].sort((a, b) => order(a.name, b.name))
  const kind = (r: ReleaseDir) => (protect.includes(r.name) ? 'good' : kindOf(view, r, bad))
  const servable = sorted.filter((r) => ['good', 'adopted'].includes(kind(r)))
  const before = live ? servable.filter((r) => order(r.name, live) < 0).pop()?.name : undefined
  const kept = new Set([live, before, ...protect, ...servable.slice(-Math.max(1, keep)).map((r) => r.name)].filter(Boolean))
  const junk = sorted.filter((r) => ['bad', 'unfinished'].includes(kind(r)) && !kept.has(r.name))
  const old = sorted.filter((r) => !kept.has(r.name) && !junk.includes(r))
  return [...junk, ...old].map((r) => r.name)
}

/** Where each host ended, for the summary: `h3 still serves 10; h1, h2 serve 9`. */
export interface HostEnd {
  alias: string
  /** The release (or link target) it serves now, as far as the run knows. */
  serves?: string
  /** It could not be brought to where the fleet went. */
  drifted: boolean
  /** Why, when drifted. */
  reason?: string
}

/**
 * Groups hosts by what they serve, drifted ones first; undefined when every
 * host serves the same (a host left with only a lock or a release dir of this
 * run is not split from the others).
 */
export function describeDrift(ends: HostEnd[]): string | undefined {
  if (new Set(ends.map((e) => e.serves)).size <= 1) return undefined
  const groups = new Map<string, HostEnd[]>()
  for (const end of ends) groups.set(end.serves ?? 'nothing', [...(groups.get(end.serves ?? 'nothing') ?? []), end])
  const parts = [...groups.entries()]
    .sort((a, b) => Number(b[1].some((e) => e.drifted)) - Number(a[1].some((e) => e.drifted)))
    .map(([serves, hosts]) => {
      const names = hosts.map((h) => h.alias).join(', ')
      const drifted = hosts.some((h) => h.drifted)
      const verb = drifted ? (hosts.length === 1 ? 'still serves' : 'still serve') : hosts.length === 1 ? 'serves' : 'serve'
      return `${names} ${verb} ${serves}`
    })
  return parts.join('; ')
}

/** Run ids that recorded, on some host, that they left `alias` drifted. */
export function runsThatDrifted(views: HostView[], alias: string): Set<string> {
  const ids = new Set<string>()
  for (const view of views) {
    for (const entry of view.ledger as LedgerEntry[]) {
      if (entry.run_id && (entry.drifted?.includes(alias) || (view.alias === alias && entry.status === 'drifted'))) ids.add(entry.run_id)
    }
  }
  return ids
}
