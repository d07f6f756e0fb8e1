/**
 * The cost of a rolling deploy (BENCH_ROLLING=1 in `npm run bench`): the same hosts deployed all at
 * once, then with `--strategy rolling --batch N` for each N, on loopback and through a delay proxy
 * per host. Each batch runs its 'switch' and 'post-switch' steps and sends its queued commands
 * before the next one starts, so every extra batch adds at least the round trips of one switch,
 * in turn: the figure to know is the wall time per extra batch.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { assertOk, commonDeployfile, median, runDep, tripsRange, type DepRun, type HostSpec } from './lib.js'

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
  /**
   * Median time from the first 'switch' step's start to the last 'switch'/'post-switch' step's end
   * (event times of `--json`): the part of the run that batches stretch out.
   */
  switchMs: number
  switchRunsMs: number[]
  trips: { min: number; max: number } | undefined
  /** (switch time − the all-at-once switch time of the same delay) / (batches − 1): what one more batch costs. */
  perExtraBatchMs: number | undefined
}

interface RunEvent {
  type: string
  phase?: string
  time: number
}

/** From the first switch step's start to the last switch or post-switch step's end, ms. */
function switchSpanMs(stdout: string): number {
  const events = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as RunEvent)
  const starts = events.filter((e) => e.type === 'step:start' && e.phase === 'switch').map((e) => e.time)
  const ends = events.filter((e) => e.type === 'step:end' && (e.phase === 'switch' || e.phase === 'post-switch')).map((e) => e.time)
  return Math.max(...ends) - Math.min(...starts)
}

/**
 * Deploys `hosts` (a project in `dir`) once to warm them, then `runs` rounds of one deploy per
 * strategy (all at once, then each batch size), interleaved so that other load on the machine
 * falls on every strategy alike.
 */
export async function rollingRows(cli: string, dir: string, appDir: string, hosts: HostSpec[], batchSizes: number[], runs: number, delayMs: number): Promise<RollingRow[]> {
  await mkdir(dir, { recursive: true })
  await writeFile(path.join(dir, 'deployfile.ts'), commonDeployfile(appDir, hosts))
  assertOk(await runDep(cli, ['deploy', '--json'], dir), `rolling (+${delayMs} ms): first deploy`)
  const strategies = [undefined, ...batchSizes]
  const argsOf = (batch: number | undefined) => (batch === undefined ? ['deploy', '--json'] : ['deploy', '--json', '--strategy', 'rolling', '--batch', String(batch)])
  const results = new Map<number | undefined, DepRun[]>(strategies.map((b) => [b, []]))
  for (let i = 0; i < runs; i++) {
    for (const batch of strategies) {
      const run = await runDep(cli, argsOf(batch), dir)
      assertOk(run, `rolling (+${delayMs} ms) ${batch === undefined ? 'all at once' : `--batch ${batch}`}: run ${i + 1}`)
      results.get(batch)!.push(run)
    }
  }
  const rows: RollingRow[] = []
  for (const batch of strategies) {
    const steady = results.get(batch)!
    const batches = batch === undefined ? 1 : Math.ceil(hosts.length / batch)
    const spans = steady.map((r) => switchSpanMs(r.stdout))
    const switchMs = median(spans)
    const all = rows.find((r) => r.batch === undefined)
    rows.push({
      delayMs,
      batch,
      batches,
      steadyMs: median(steady.map((r) => r.wallMs)),
      runMs: median(steady.map((r) => r.runEnd?.durationMs ?? 0)),
      switchMs,
      switchRunsMs: spans,
      trips: tripsRange(steady.at(-1)?.runEnd?.roundTrips),
      perExtraBatchMs: all && batches > 1 ? Math.round((switchMs - all.switchMs) / (batches - 1)) : undefined,
    })
  }
  return rows
}

/** The rows as a table. */
export function formatRollingRows(hosts: number, rows: RollingRow[], runs: number): string[] {
  const s = (ms: number) => (ms / 1000).toFixed(2)
  const lines = [
    `rolling deploys, ${hosts} hosts (medians of ${runs}, strategies interleaved; switch = first switch step start → last post-switch step end;`,
    'per extra batch = (switch − switch all at once) / (batches − 1)):',
  ]
  lines.push('RTT added  strategy            batches  wall s  run s  switch ms (runs)            trips/host  per extra batch ms')
  for (const row of rows) {
    const strategy = row.batch === undefined ? 'all at once' : `rolling --batch ${row.batch}`
    const trips = row.trips ? (row.trips.min === row.trips.max ? String(row.trips.min) : `${row.trips.min}–${row.trips.max}`) : '-'
    const spans = `${Math.round(row.switchMs)} (${row.switchRunsMs.join(', ')})`
    lines.push(
      `${(row.delayMs ? `+${row.delayMs} ms` : '-').padStart(9)}  ${strategy.padEnd(18)}  ${String(row.batches).padStart(7)}  ${s(row.steadyMs).padStart(6)}  ${s(row.runMs).padStart(5)}  ${spans.padEnd(26)}  ${trips.padStart(10)}  ${String(row.perExtraBatchMs ?? '-').padStart(18)}`,
    )
  }
  return lines
}
