/** The release policy as pure functions of the fleet view: no SSH, plain data. */
import { describe, expect, it } from 'vitest'
import {
  describeDrift,
  fleetBad,
  kindOf,
  nextReleaseName,
  releaseNameConflict,
  releaseOrder,
  releasesToRemove,
  rollbackTarget,
  runsThatDrifted,
} from '../../recipes/common/fleet.js'
import type { LedgerEntry } from '../../recipes/common/ledger.js'
import { parseLedger } from '../../recipes/common/ledger.js'
import type { HostView } from '../../recipes/common/probe.js'

let clock = Date.parse('2026-01-01T00:00:00Z')
const at = () => new Date((clock += 60_000)).toISOString()
const live = (release: string, extra: Partial<LedgerEntry> = {}): LedgerEntry => ({ release, status: 'live', at: at(), ...extra })
const failed = (release: string, extra: Partial<LedgerEntry> = {}): LedgerEntry => ({ release, status: 'failed', at: at(), ...extra })

function view(alias: string, options: { releases: Array<string | [string, string]>; current?: string; ledger?: LedgerEntry[]; currentTarget?: string }): HostView {
  return {
    alias,
    now: 0,
    current: options.current,
    currentTarget: options.currentTarget ?? (options.current ? `releases/${options.current}` : undefined),
    currentIsDirectory: false,
    releases: options.releases.map((r) => (Array.isArray(r) ? { name: r[0], revision: r[1], complete: true, markedBad: false } : { name: r, complete: true, markedBad: false })),
    ledger: options.ledger ?? [],
    lock: { state: 'free' },
    mvT: true,
  }
}

describe('release names', () => {
  it('the next name is one more than any number on disk or in any ledger of the fleet, never reused', () => {
    const views = [view('h1', { releases: ['1', '2'], ledger: [live('1'), live('2')] }), view('h2', { releases: ['2'], ledger: [failed('9')] })]
    expect(nextReleaseName(views)).toBe('10')
    expect(nextReleaseName([view('h1', { releases: [] })])).toBe('1')
    // Capistrano's timestamps stay numbers (no float rounding).
    expect(nextReleaseName([view('h1', { releases: ['20240101120000123'] })])).toBe('20240101120000124')
  })

  it('a name given by the user must be new on every host', () => {
    const views = [view('h1', { releases: ['v1'] }), view('h2', { releases: [], ledger: [failed('v2')] })]
    expect(releaseNameConflict(views, 'v2')).toMatch(/v2 already exists \(or existed\) on h2/)
    expect(releaseNameConflict(views, 'v3')).toBeUndefined()
  })

  it('orders numbers numerically, other names by first record, then naturally (v9 before v10)', () => {
    const order = releaseOrder([view('h1', { releases: [] })])
    expect(['10', '9', '100', '2'].sort(order)).toEqual(['2', '9', '10', '100'])
    expect(['v10', 'v8', 'v9'].sort(order)).toEqual(['v8', 'v9', 'v10'])
    const byLedger = releaseOrder([view('h1', { releases: [], ledger: [live('zeta'), live('alpha')] })])
    expect(['alpha', 'zeta'].sort(byLedger)).toEqual(['zeta', 'alpha'])
  })
})

describe('fleet-wide rollback', () => {
  it('goes to the newest good release every host has, older than the one the fleet serves', () => {
    const ledger = [live('7'), live('8'), live('9')]
    const views = ['h1', 'h2', 'h3'].map((alias) => view(alias, { releases: ['7', '8', '9'], current: '9', ledger }))
    expect(rollbackTarget(views)).toEqual({ target: '8' })
  })

  it('a release missing on one host is not a target; a failed one anywhere neither', () => {
    const views = [
      view('h1', { releases: ['7', '8', '9'], current: '9', ledger: [live('7'), live('8'), live('9')] }),
      view('h2', { releases: ['7', '9'], current: '9', ledger: [live('7'), live('9')] }),
      view('h3', { releases: ['6', '7', '9'], current: '9', ledger: [live('6'), live('7'), live('9'), failed('6')] }),
    ]
    expect(rollbackTarget(views)).toEqual({ target: '7' })
  })

  it('converges a drifted fleet: h3 still on failed 10, the others on 9 → all to 9', () => {
    const others = { releases: ['8', '9'], current: '9', ledger: [live('8'), live('9'), failed('10', { drifted: ['h3'] })] }
    const views = [view('h1', others), view('h2', others), view('h3', { releases: ['8', '9', '10'], current: '10', ledger: [live('8'), live('9'), live('10')] })]
    expect(rollbackTarget(views)).toEqual({ target: '9' })
  })

  it('subset deploys that made the same name with different revisions never count as one release', () => {
    const views = [
      view('h1', { releases: [['36', 'aaa'], ['37', 'bbb']], current: '37', ledger: [live('36'), live('37')] }),
      view('h2', { releases: [['36', 'aaa'], ['37', 'ccc']], current: '37', ledger: [live('36'), live('37')] }),
    ]
    // They "agree" on 37 by name only; 36 is the newest release they really share.
    expect(rollbackTarget(views)).toEqual({ target: '36' })
    expect(rollbackTarget(views, '37')).toMatchObject({ reason: expect.stringMatching(/same revision/) })
  })

  it('rollback_to names a release as a string, which must be on every host', () => {
    const views = ['h1', 'h2'].map((alias) => view(alias, { releases: ['4', '40'], current: '40', ledger: [live('4'), live('40')] }))
    expect(rollbackTarget(views, '4')).toEqual({ target: '4' })
    expect(rollbackTarget([...views, view('h3', { releases: ['40'], current: '40' })], '4')).toMatchObject({ reason: expect.stringMatching(/not on every/) })
  })

  it('with nothing to go back to, says so instead of choosing per host', () => {
    const views = [view('h1', { releases: ['1'], current: '1', ledger: [live('1')] }), view('h2', { releases: ['1'], current: '1', ledger: [live('1')] })]
    expect(rollbackTarget(views)).toEqual({ reason: 'no good release older than 1 is on every selected host' })
  })

  it('adopted releases (no ledger: another tool, or .dep/ removed) are valid targets', () => {
    const views = ['h1', 'h2'].map((alias) => view(alias, { releases: ['1', '2', '3'], current: '3' }))
    expect(kindOf(views[0], views[0].releases[0])).toBe('adopted')
    expect(rollbackTarget(views)).toEqual({ target: '2' })
  })
})

describe('cleanup', () => {
  const order = releaseOrder([])

  it('never deletes what it did not make beyond keep_releases of the newest, nor the live one or the one before', () => {
    const adopted = view('h1', { releases: ['1', '2', '3'], current: '3' })
    expect(releasesToRemove(adopted, 5, order)).toEqual([])
    expect(releasesToRemove(adopted, 1, order)).toEqual(['1'])
  })

  it('failed and never-live releases go first and do not count', () => {
    const v = view('h1', { releases: ['1', '2', '3', '4', '5'], current: '5', ledger: [live('1'), live('2'), failed('3'), { release: '4', status: 'prepared', at: at() }, live('5')] })
    expect(releasesToRemove(v, 2, order).sort()).toEqual(['1', '3', '4'])
  })

  it('a release failed on another host is bad for the whole fleet', () => {
    const h3 = view('h3', { releases: ['9', '10', '11'], current: '11', ledger: [live('9'), live('10'), live('11')] })
    const h1 = view('h1', { releases: ['9', '11'], current: '11', ledger: [live('9'), failed('10'), live('11')] })
    expect(releasesToRemove(h3, 5, order, ['11'], fleetBad([h1, h3]))).toEqual(['10'])
  })

  it('a release a host was left out of (--max-fail) is bad on that host only: the others keep it', () => {
    // Release 10 went live on h1..h5; h6 failed, was left out and went back to 9.
    const h1 = view('h1', { releases: ['9', '10', '11'], current: '11', ledger: [live('9'), live('10'), live('11')] })
    const h6 = view('h6', { releases: ['9', '11'], current: '11', ledger: [live('9'), live('10'), failed('10', { left_out: true }), live('11')] })
    expect(fleetBad([h1, h6]).has('10')).toBe(false)
    expect(releasesToRemove(h1, 3, order, ['11'], fleetBad([h1, h6]))).toEqual([])
    expect(kindOf(h6, { name: '10', complete: true, markedBad: false })).toBe('bad')
  })

  it('keeps a live release outside the usual order and the one before it', () => {
    const v = view('h1', { releases: ['1', '2', '3', '4'], current: '2', ledger: ['1', '2', '3', '4'].map((n) => live(n)) })
    expect(releasesToRemove(v, 1, order).sort()).toEqual(['3'])
  })
})

describe('drift', () => {
  it('names the drifted host and what each group serves', () => {
    expect(
      describeDrift([
        { alias: 'h1', serves: '9', drifted: false },
        { alias: 'h2', serves: '9', drifted: false },
        { alias: 'h3', serves: '10', drifted: true },
      ]),
    ).toBe('h3 still serves 10; h1, h2 serve 9')
    expect(describeDrift([{ alias: 'h1', serves: '9', drifted: false }, { alias: 'h2', serves: '9', drifted: false }])).toBeUndefined()
    // Left with a lock, but serving what the others serve: not split.
    expect(describeDrift([{ alias: 'h1', serves: '9', drifted: false }, { alias: 'h3', serves: '9', drifted: true }])).toBeUndefined()
  })

  it('a run recorded as leaving a host drifted is known to every host', () => {
    const views = [view('h1', { releases: [], ledger: [failed('10', { run_id: 'run-x', drifted: ['h3'] })] }), view('h3', { releases: [] })]
    expect([...runsThatDrifted(views, 'h3')]).toEqual(['run-x'])
    expect([...runsThatDrifted(views, 'h1')]).toEqual([])
  })
})

describe('ledgers of other tools', () => {
  it("reads Deployer 7's release log lines", () => {
    const entries = parseLedger('{"created_at":"2024-05-01T10:00:00+00:00","release_name":"12","user":"dave","target":"main"}\n{"release":"13","status":"live","at":"x"}\n{torn')
    expect(entries).toEqual([
      expect.objectContaining({ release: '12', status: 'live', user: 'dave', origin: 'deployer' }),
      expect.objectContaining({ release: '13', status: 'live' }),
    ])
  })
})
