/**
 * Rolling and canary deploys: how the hosts of a run are cut into batches for
 * the steps of the 'switch' and 'post-switch' phases, and how many hosts may
 * fail before the whole fleet goes back. Pure: the CLI parses the options
 * here, the plan carries the result, the executor runs it.
 */
import { ConfigError } from '../model/errors.js'
import type { Host } from '../model/host.js'

/** A size given on the command line: a count of hosts, or a percentage of the selected hosts. */
export type HostAmount = { count: number } | { percent: number }

/** What the user asked for with --strategy, --batch, --canary and --max-fail (unparsed). */
export interface RolloutOptions {
  strategy?: string
  batch?: string
  canary?: string
  maxFail?: string
}

/** How a run switches its hosts: every host at once (the default), or batch by batch. */
export interface Rollout {
  /** The batches, in order, covering every selected host once (the canary first, when there is one). */
  batches: Host[][]
  /** The first batch is a canary: a failure there always stops the run (never left out by --max-fail). */
  canary: boolean
  /** Most hosts that may fail and be left out while the others carry on (0: any failure stops the run). */
  maxFail: number
}

const STRATEGIES = ['all', 'rolling']

/** Parses `25%` or `2` for option `name`; 0, more than 100 %, and anything else are a ConfigError naming it. */
export function parseAmount(name: string, value: string, allowPercent = true): HostAmount {
  const text = value.trim()
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text)
  if (percent && allowPercent) {
    const n = Number(percent[1])
    if (n > 0 && n <= 100) return { percent: n }
    throw new ConfigError(`${name} ${value}: a percentage must be more than 0% and at most 100%.`, `For example: ${name} 25%`)
  }
  if (/^\d+$/.test(text) && Number(text) >= 1) return { count: Number(text) }
  const form = allowPercent ? 'a number of hosts (2) or a percentage of the selected hosts (25%)' : 'a number of hosts of at least 1'
  throw new ConfigError(`${name} ${value}: expected ${form}.`, `For example: ${name} ${allowPercent ? '25%' : '1'}`)
}

/** Hosts an amount stands for among `total`: a percentage rounded up for a batch (at least 1). */
export function batchSize(amount: HostAmount, total: number): number {
  const n = 'count' in amount ? amount.count : Math.ceil((total * amount.percent) / 100)
  return Math.max(1, Math.min(total, n))
}

/** Hosts that may fail among `total`: a percentage rounded down (10% of 6 hosts is 0). */
export function maxFailCount(amount: HostAmount | undefined, total: number): number {
  if (!amount) return 0
  return 'count' in amount ? Math.min(amount.count, total) : Math.floor((total * amount.percent) / 100)
}

/** The hosts in order, cut into the canary batch (when `canary` > 0) and batches of `size`. */
export function batchesOf<T>(hosts: T[], size: number, canary = 0): T[][] {
  const batches: T[][] = []
  let rest = hosts
  if (canary > 0) {
    batches.push(rest.slice(0, canary))
    rest = rest.slice(canary)
  }
  for (let i = 0; i < rest.length; i += size) batches.push(rest.slice(i, i + size))
  return batches
}

/**
 * The rollout of a run from the command-line options, or undefined for the
 * default (every host at once). Options that only make sense with
 * `--strategy rolling` are refused without it.
 */
export function parseRollout(options: RolloutOptions, hosts: Host[]): Rollout | undefined {
  const strategy = options.strategy ?? 'all'
  if (!STRATEGIES.includes(strategy)) {
    throw new ConfigError(`--strategy ${strategy}: expected one of ${STRATEGIES.join(', ')}.`, 'For example: --strategy rolling --batch 25%')
  }
  if (strategy !== 'rolling') {
    const given = (['batch', 'canary', 'maxFail'] as const).filter((key) => options[key] !== undefined)
    if (given.length === 0) return undefined
    const names = given.map((key) => (key === 'maxFail' ? '--max-fail' : `--${key}`))
    throw new ConfigError(`${names.join(', ')} only ${names.length === 1 ? 'goes' : 'go'} with --strategy rolling.`, `For example: --strategy rolling ${names.map((n) => `${n} ${n === '--canary' ? '1' : '25%'}`).join(' ')}`)
  }
  const batch = options.batch === undefined ? { percent: 100 } : parseAmount('--batch', options.batch)
  const canary = options.canary === undefined ? 0 : (parseAmount('--canary', options.canary, false) as { count: number }).count
  const maxFail = options.maxFail === undefined ? undefined : parseAmount('--max-fail', options.maxFail)
  const canaryHosts = Math.min(canary, hosts.length)
  // A percentage is of every selected host (25% of 8 hosts: batches of 2), canary or not.
  const batches = batchesOf(hosts, batchSize(batch, Math.max(1, hosts.length)), canaryHosts)
  return { batches, canary: canaryHosts > 0, maxFail: maxFailCount(maxFail, hosts.length) }
}
