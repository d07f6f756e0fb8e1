/**
 * The cost of a rolling deploy (BENCH_ROLLING=1 in `npm run bench`): the same hosts deployed all at
 * once, then with `--strategy rolling --batch N` for each N, on loopback and through a delay proxy
 * per host. Each batch runs its 'switch' and 'post-switch' steps and sends its queued commands
 * before the next one starts, so every extra batch adds at least the round trips of one switch,
 * in turn: the figure to know is the wall time per extra batch.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { assertOk, commonDeployfile, median, runDep, tripsRange, type HostSpec } from './lib.js'

/** One way of deploying the same hosts: all at once (`batch` undefined) or rolling by `batch`. */
export interface RollingRow {
  /** Added round-trip time (0: loopback). */
  delayMs: number
  /** Hosts per batch; undefined for all at once (the default strategy). */
  batch: number | undefined
  batches: number
  /** Medians over the steady runs: spawn to exit, and inside the executor (run:end durationMs). */
  steadyMs: number
  runMs: number
  runsMs: number[]
  trips: { min: number; max: number } | undefined
  /** (steady − the all-at-once steady of the same delay) / (batches − 1): what one more batch costs. */
  perExtraBatchMs: number | undefined
}

/**
 * Deploys `hosts` (a project in `dir`) once to warm them, then `runs` times all at once and `runs`
 * times for each batch size, alternating nothing: rows are measured one after the other.
 */
export async function rollingRows(cli: string, dir: string, appDir: string, hosts: HostSpec[], batchSizes: number[], runs: number, delayMs: number): Promise<RollingRow[]> {
  await mkdir(dir, { recursive: true })
  await writeFile(path.join(dir, 'deployfile.ts'), commonDeployfile(appDir, hosts))
  assertOk(await runDep(cli, ['deploy', '--json'], dir), `rolling (+${delayMs} ms): first deploy`)
  const rows: RollingRow[] = []
  for (const batch of [undefined, ...batchSizes]) {
    const args = batch === undefined ? ['deploy', '--json'] : ['deploy', '--json', '--strategy', 'rolling', '--batch', String(batch)]
    const steady = []
    for (let i = 0; i < runs; i++) {
      const run = await runDep(cli, args, dir)
      assertOk(run, `rolling (+${delayMs} ms) ${args.slice(2).join(' ') || 'all at once'}: run ${i + 1}`)
      steady.push(run)
    }
    const batches = batch === undefined ? 1 : Math.ceil(hosts.length / batch)
    const steadyMs = median(steady.map((r) => r.wallMs))
    const all = rows.find((r) => r.batch === undefined)
    rows.push({
      delayMs,
      batch,
      batches,
      steadyMs,
      runMs: median(steady.map((r) => r.runEnd?.durationMs ?? 0)),
      runsMs: steady.map((r) => Math.round(r.wallMs)),
      trips: tripsRange(steady.at(-1)?.runEnd?.roundTrips),
      perExtraBatchMs: all && batches > 1 ? Math.round((steadyMs - all.steadyMs) / (batches - 1)) : undefined,
    })
  }
  return rows
}

/** The rows as a table. */
export function formatRollingRows(hosts: number, rows: RollingRow[], runs: number): string[] {
  const s = (ms: number) => (ms / 1000).toFixed(2)
  const lines = [`rolling deploys, ${hosts} hosts (steady median of ${runs}; per extra batch = (steady − all at once) / (batches − 1)):`]
  lines.push('RTT added  strategy            batches  steady s  run s  trips/host  per extra batch ms')
  for (const row of rows) {
    const strategy = row.batch === undefined ? 'all at once' : `rolling --batch ${row.batch}`
    const trips = row.trips ? (row.trips.min === row.trips.max ? String(row.trips.min) : `${row.trips.min}–${row.trips.max}`) : '-'
    lines.push(
      `${(row.delayMs ? `+${row.delayMs} ms` : '-').padStart(9)}  ${strategy.padEnd(18)}  ${String(row.batches).padStart(7)}  ${s(row.steadyMs).padStart(8)}  ${s(row.runMs).padStart(5)}  ${trips.padStart(10)}  ${String(row.perExtraBatchMs ?? '-').padStart(18)}`,
    )
  }
  return lines
}
