import { parseLedger, type LedgerEntry } from './ledger.js'

/** What the probe learned about a host in one round trip. */
export interface HostState {
  /** This run holds the host's deploy lock. */
  lockTaken: boolean
  /** owner.json of the lock when another run holds it. */
  owner?: LockOwner
  /** The host's clock (seconds), for the lock's age. */
  now: number
  /** The release `current` pointed to when the run started (name), if any. */
  current?: string
  /** Release directories present. */
  releases: string[]
  ledger: LedgerEntry[]
  /** `mv -T` (atomic replace of a link) is available. */
  mvT: boolean
  /** This run created the release directory. */
  releaseCreated: boolean
  /** The revision this run deployed. */
  revision?: string
}

/** Who holds a deploy lock. */
export interface LockOwner {
  user?: string
  machine?: string
  pid?: number
  run_id?: string
  started_at?: string
}

/**
 * Parses the probe's output: `@key value` lines, and the ledger between
 * `@ledger_begin` and `@ledger_end`.
 */
export function parseProbe(output: string): Omit<HostState, 'releaseCreated'> {
  const lines = output.split('\n')
  const value = (key: string) => lines.find((l) => l.startsWith(`@${key} `) || l === `@${key}`)?.slice(key.length + 2).trim() ?? ''
  const begin = lines.indexOf('@ledger_begin')
  const end = lines.indexOf('@ledger_end')
  const ledgerText = begin >= 0 && end > begin ? lines.slice(begin + 1, end).join('\n') : ''
  let owner: LockOwner | undefined
  const ownerText = value('owner')
  if (ownerText) {
    try {
      owner = JSON.parse(ownerText) as LockOwner
    } catch {
      owner = { user: ownerText }
    }
  }
  const currentLink = value('current')
  return {
    lockTaken: value('lock') === 'taken',
    owner,
    now: Number(value('now')) || Math.floor(Date.now() / 1000),
    current: currentLink ? currentLink.replace(/\/+$/, '').split('/').pop() : undefined,
    releases: value('releases').split(/\s+/).filter(Boolean),
    ledger: parseLedger(ledgerText),
    mvT: value('mv_t') === 'yes',
  }
}

/** "alice on laptop (pid 42, run 1f2e…) for 5 min" */
export function describeOwner(owner: LockOwner | undefined, now: number): string {
  if (!owner) return 'an unknown run (no owner.json: the lock may have just been taken)'
  const started = owner.started_at ? Date.parse(owner.started_at) : Number.NaN
  const age = Number.isNaN(started) ? '' : ` for ${formatAge(now * 1000 - started)}`
  const parts = [owner.pid ? `pid ${owner.pid}` : '', owner.run_id ? `run ${owner.run_id.slice(0, 8)}` : ''].filter(Boolean).join(', ')
  return `${owner.user ?? 'someone'}${owner.machine ? ` on ${owner.machine}` : ''}${parts ? ` (${parts})` : ''}${age}`
}

function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000))
  if (seconds < 120) return `${seconds} s`
  const minutes = Math.round(seconds / 60)
  if (minutes < 120) return `${minutes} min`
  return `${Math.round(minutes / 60)} h`
}
