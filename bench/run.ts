/**
 * `npm run bench`: how fast a deploy is, against real sshd daemons on loopback.
 *
 * - the common recipe (upload strategy, ~50 small files) to 1, 10 and 30 hosts: the first deploy, then the
 *   median of several steady-state deploys; round trips per host (the run:end event of `--json`); peak RSS
 *   of the dep process (GNU time);
 * - the same to 1 and 10 hosts through a delay proxy (+100 ms per round trip), and the time that adds;
 * - the floor (bench/floor.ts): one shell script per host over one ssh session doing the same remote work,
 *   wall time and sshd CPU per host against the deploy's (BENCH_FLOOR=0 skips it);
 * - start-up: `dep --version` and `dep list` on the repository's deployfile;
 * - the Laravel recipe (examples/laravel-app), when php and composer are installed: interleaved with its
 *   one-script floor (bench/laravel-floor.ts) at BENCH_LARAVEL_HOSTS hosts (default 1,3), on loopback
 *   and +2×DELAY_MS per round trip; dep's per-host timeline and the floor's steps for each row;
 * - sessions per host per deploy ("Starting session" lines of the daemons' VERBOSE logs), sshd CPU per
 *   host, dep CPU and peak RSS per extra host, and the wall time against the CPU floor
 *   ((dep CPU + sshd CPU) / cores), for each host count;
 * - a per-host timeline of one steady deploy to BENCH_TIMELINE_HOSTS hosts (default 3, 0 to skip);
 * - unless BENCH_LOAD=0, the 1-host steady deploy again while 2 busy loops (at most 60 s) hog the cores;
 * - 100 sequential commands on one host through the transport, with and without the command channel,
 *   against a daemon configured like a real server (bench/sequential.ts), quiet and (unless BENCH_LOAD=0) under
 *   the busy loops; BENCH_SEQUENTIAL=0 skips it;
 * - unless BENCH_ROLLING=0, BENCH_ROLLING_HOSTS hosts (default 6) all at once and with `--strategy rolling
 *   --batch N` for each N of BENCH_ROLLING_BATCHES (default 3,2,1), on loopback and +2×DELAY_MS per round
 *   trip: wall time and round trips, and the cost of one more batch (bench/rolling.ts);
 * - the client's floor per host: a bare ssh2 client connecting and running one command on BENCH_HOSTS hosts
 *   (bench/client-floor.ts; BENCH_CLIENT_FLOOR=0 skips it);
 * - deployfile against a hand-written Fabric fabfile (bench/fabric.ts), interleaved, for BENCH_HOSTS and
 *   BENCH_DELAY_HOSTS, when /usr/bin/python3 has Fabric (BENCH_FABRIC=0 skips it).
 *
 * Prints a table and writes bench/results.json (gitignored: numbers of one machine; docs/benchmarks.md
 * keeps the reference numbers). A benchmark, not a test: it asserts nothing about time.
 *
 * Environment: BENCH_RUNS (steady-state runs per row, default 5), BENCH_HOSTS (default 1,10,30),
 * BENCH_SCALE_HOSTS (default 100: more fleet sizes for the per-host costs only, at most 3 runs; 0 skips),
 * BENCH_DELAY_HOSTS (default 1,10), BENCH_DELAY_MS (one-way delay, default 50), BENCH_LARAVEL=0 to skip it,
 * BENCH_LARAVEL_HOSTS (default 1,3),
 * BENCH_TIMELINE_HOSTS (default 3), BENCH_LOAD=0 skips the under-load rows, BENCH_ROLLING=0 the rolling rows
 * (BENCH_ROLLING_HOSTS, BENCH_ROLLING_BATCHES).
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { startDelayProxy, type DelayProxy } from '../test/support/delay-proxy.js'
import { startSshServers, type SshServer, type SshServers } from '../test/support/sshd.js'
import { copyLaravelApp } from '../test/support/web.js'
import { hostCosts } from './costs.js'
import { startBusyLoops } from './load.js'
import { sequentialRows, type SequentialCase } from './sequential.js'
import { SESSION_LOG_CONFIG, SessionCounter } from './sessions.js'
import { floorRow, type FloorRow } from './floor.js'
import { clientFloorRows, perExtraHost, type ClientFloorRow } from './client-floor.js'
import { FABRIC_SKIPPED, fabricComparison, fabricVerdict, fabricVersion, formatFabricRows, type FabricComparisonRow } from './fabric.js'
import { formatLaravelFloorRows, LARAVEL_FLOOR_GOAL, laravelFloorRow, type LaravelFloorRow } from './laravel-floor.js'
import { formatRollingRows, rollingRows, type RollingRow } from './rolling.js'
import { formatTimeline, timelineOf, type Timeline } from './timeline.js'
import {
  assertOk,
  createCpuGroup,
  commonDeployfile,
  formatTrips,
  generateApp,
  laravelDeployfile,
  median,
  REPO_ROOT,
  runDep,
  snapshotBuild,
  TIME_BIN,
  tripsRange,
  type DepRun,
  type HostSpec,
} from './lib.js'

const STEADY_RUNS = Number(process.env.BENCH_RUNS ?? 5)
const HOST_COUNTS = (process.env.BENCH_HOSTS ?? '1,10,30').split(',').map(Number).filter(Boolean)
/** Fleet sizes measured only for the per-host costs (plain deploy, its floor, the bare client), with fewer runs. */
const SCALE_HOSTS = (process.env.BENCH_SCALE_HOSTS ?? '100').split(',').map(Number).filter((n) => n > 0 && !HOST_COUNTS.includes(n))
const COST_HOST_COUNTS = [...HOST_COUNTS, ...SCALE_HOSTS]
/** Steady runs of a row: fewer at the scale sizes (a 100-host deploy takes ~30 s on 2 cores). */
const runsAt = (count: number) => (SCALE_HOSTS.includes(count) ? Math.min(STEADY_RUNS, 3) : STEADY_RUNS)
const DELAY_HOSTS = (process.env.BENCH_DELAY_HOSTS ?? '1,10').split(',').map(Number).filter(Boolean)
const DELAY_MS = Number(process.env.BENCH_DELAY_MS ?? 50)
const STARTUP_RUNS = 10
const LARAVEL = process.env.BENCH_LARAVEL !== '0'
const LARAVEL_HOSTS = (process.env.BENCH_LARAVEL_HOSTS ?? '1,3').split(',').map(Number).filter(Boolean)
const TIMELINE_HOSTS = Number(process.env.BENCH_TIMELINE_HOSTS ?? 3)
const UNDER_LOAD = process.env.BENCH_LOAD !== '0'
const FLOOR = process.env.BENCH_FLOOR !== '0'
const ROLLING = process.env.BENCH_ROLLING !== '0'
const ROLLING_HOSTS = ROLLING ? Number(process.env.BENCH_ROLLING_HOSTS ?? 6) : 0
const ROLLING_BATCHES = (process.env.BENCH_ROLLING_BATCHES ?? '3,2,1').split(',').map(Number).filter(Boolean)
/** Busy loops of the under-load row: one per core of the reference 2-core machine. */
const LOAD_LOOPS = 2

interface DeployRow {
  hosts: number
  firstMs: number
  steadyMs: number
  steadyRunsMs: number[]
  /** Time inside the executor (run:end durationMs), median of the steady runs. */
  steadyRunMs: number
  /** CPU time (user + system) of the dep process, median of the steady runs. */
  steadyCpuMs: number | undefined
  /** CPU time of the server side (sshd sessions and what they ran), median of the steady runs. */
  steadyServerCpuMs: number | undefined
  tripsFirst: { min: number; max: number } | undefined
  tripsSteady: { min: number; max: number } | undefined
  peakRssMb: number | undefined
  /** Sessions per host (sshd "Starting session" lines) of the first deploy, and over the steady ones. */
  sessionsFirst: { min: number; max: number } | undefined
  sessionsSteady: { min: number; max: number } | undefined
}

interface DelayRow extends DeployRow {
  delayMs: number
  /** Steady median with delay minus steady median without. */
  addedMs: number | undefined
  /** Wire turn-arounds per host counted at the proxy over the steady runs (see test/support/delay-proxy.ts). */
  wireTurnArounds: { min: number; max: number } | undefined
}

const log = (message: string) => process.stderr.write(`${message}\n`)
const seconds = (ms: number | undefined) => (ms === undefined ? '-' : (ms / 1000).toFixed(2))
const mb = (kb: number | undefined) => (kb === undefined ? undefined : Math.round(kb / 102.4) / 10)

/** The first deploy, then `runs` steady-state deploys, of the deployfile in `dir`. */
async function deployRow(
  cli: string,
  dir: string,
  daemons: SshServer[],
  runs: number,
  what: string,
  afterRun?: (run: DepRun) => Promise<void>,
): Promise<DeployRow> {
  const hosts = daemons.length
  const firstSessions = new SessionCounter(daemons)
  const first = await runDep(cli, ['deploy', '--json'], dir)
  assertOk(first, `${what}: first deploy`)
  await serverCpuMs() // lets the daemons' last log lines arrive
  const sessionsFirst = rangeOf(firstSessions.perHost())
  await afterRun?.(first)
  const steady: DepRun[] = []
  const serverCpuRuns: number[] = []
  const steadySessions: Array<{ min: number; max: number } | undefined> = []
  for (let i = 0; i < runs; i++) {
    const before = await serverCpuMs()
    const sessions = new SessionCounter(daemons)
    const run = await runDep(cli, ['deploy', '--json'], dir)
    assertOk(run, `${what}: steady deploy ${i + 1}`)
    serverCpuRuns.push((await serverCpuMs()) - before)
    steadySessions.push(rangeOf(sessions.perHost()))
    await afterRun?.(run)
    steady.push(run)
  }
  const all = [first, ...steady]
  const rss = all.map((r) => r.peakRssKb).filter((kb): kb is number => kb !== undefined)
  const row: DeployRow = {
    hosts,
    firstMs: first.wallMs,
    steadyMs: median(steady.map((r) => r.wallMs)),
    steadyRunsMs: steady.map((r) => Math.round(r.wallMs)),
    steadyRunMs: median(steady.map((r) => r.runEnd?.durationMs ?? 0)),
    steadyCpuMs: steady.every((r) => r.cpuMs !== undefined) ? median(steady.map((r) => r.cpuMs!)) : undefined,
    steadyServerCpuMs: serverCpuRuns.every(Number.isFinite) ? median(serverCpuRuns) : undefined,
    tripsFirst: tripsRange(first.runEnd?.roundTrips),
    tripsSteady: mergeRanges(steady.map((r) => tripsRange(r.runEnd?.roundTrips))),
    peakRssMb: rss.length > 0 ? mb(Math.max(...rss)) : undefined,
    sessionsFirst,
    sessionsSteady: mergeRanges(steadySessions),
  }
  log(`  ${what}: first ${seconds(row.firstMs)} s, steady ${seconds(row.steadyMs)} s (${row.steadyRunsMs.join(', ')} ms), CPU ${seconds(row.steadyCpuMs)} s (server side ${seconds(row.steadyServerCpuMs)} s), trips ${formatTrips(row.tripsFirst)}/${formatTrips(row.tripsSteady)}, sessions ${formatTrips(row.sessionsFirst)}/${formatTrips(row.sessionsSteady)}, RSS ${row.peakRssMb ?? '?'} MB`)
  return row
}

function rangeOf(values: number[]): { min: number; max: number } | undefined {
  return values.length === 0 ? undefined : { min: Math.min(...values), max: Math.max(...values) }
}

/** The smallest min and the largest max of several ranges. */
function mergeRanges(ranges: Array<{ min: number; max: number } | undefined>): { min: number; max: number } | undefined {
  const known = ranges.filter((r): r is { min: number; max: number } => r !== undefined)
  if (known.length === 0) return undefined
  return { min: Math.min(...known.map((r) => r.min)), max: Math.max(...known.map((r) => r.max)) }
}

/** CPU of the server side so far (every sshd and what its sessions ran), ms; NaN without a cgroup. */
let serverCpu: () => Promise<number> = async () => Number.NaN

/** Waits a moment for the sessions of a finished run to end, then reads the server side's CPU. */
async function serverCpuMs(): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 100))
  return serverCpu()
}

function hostSpecs(servers: SshServers, count: number, root: string, port?: (index: number) => number): HostSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    alias: `h${i + 1}`,
    options: { ...servers.hostOptions(i), ...(port ? { port: port(i) } : {}) },
    deployPath: path.join(servers.workDir, root, `h${i + 1}`),
  }))
}

async function timeCommand(
  cli: string,
  args: string[] | ((run: number) => Promise<string[]>),
  runs: number,
): Promise<{ medianMs: number; runsMs: number[]; peakRssMb: number | undefined }> {
  const argsOf = typeof args === 'function' ? args : async () => args
  await runDep(cli, await argsOf(-1), REPO_ROOT) // warm the file cache
  const results: DepRun[] = []
  for (let i = 0; i < runs; i++) {
    const argv = await argsOf(i)
    const run = await runDep(cli, argv, REPO_ROOT)
    if (run.code !== 0) throw new Error(`dep ${argv.join(' ')} failed: ${run.stderr}`)
    results.push(run)
  }
  const rss = results.map((r) => r.peakRssKb).filter((kb): kb is number => kb !== undefined)
  return {
    medianMs: median(results.map((r) => r.wallMs)),
    runsMs: results.map((r) => Math.round(r.wallMs)),
    peakRssMb: rss.length ? mb(Math.max(...rss)) : undefined,
  }
}

function commandVersion(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0].trim()
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? ''
    return stderr.split('\n')[0].trim() || 'unknown'
  }
}

async function main(): Promise<void> {
  const started = performance.now()
  const loadBefore = os.loadavg().map((l) => Math.round(l * 100) / 100)
  const { cli, root: buildCopy } = await snapshotBuild()
  const base = await mkdtemp(path.join(os.tmpdir(), 'deployfile-bench-'))
  const maxHosts = Math.max(1, TIMELINE_HOSTS, ROLLING_HOSTS, ...COST_HOST_COUNTS, ...DELAY_HOSTS, ...(LARAVEL ? LARAVEL_HOSTS : []))
  const hasTime = existsSync(TIME_BIN)
  if (!hasTime) log(`${TIME_BIN} is missing (apt-get install time): peak RSS comes from polling /proc/<pid>/status VmHWM`)

  log(`starting ${maxHosts} sshd daemons…`)
  const sshdStart = performance.now()
  const servers = await startSshServers(maxHosts, { extraConfig: SESSION_LOG_CONFIG })
  const sshdStartMs = performance.now() - sshdStart
  log(`  ${servers.servers.length} daemons up in ${seconds(sshdStartMs)} s`)
  const proxies: DelayProxy[] = []
  const cpuGroup = await createCpuGroup('deployfile-bench-sshd')

  try {
    try {
      if (!cpuGroup) throw new Error('no writable cgroup v1 cpuacct hierarchy')
      for (const server of servers.servers) await cpuGroup.add(server.pid!)
      serverCpu = () => cpuGroup.usageMs()
    } catch (error) {
      log(`the server side CPU is not measured: ${(error as Error).message}`)
    }
    const appDir = path.join(base, 'app')
    const files = await generateApp(appDir)

    // 1. No added latency.
    const plain: DeployRow[] = []
    for (const count of COST_HOST_COUNTS) {
      const dir = path.join(base, `plain-${count}`)
      await mkdir(dir, { recursive: true })
      await writeFile(path.join(dir, 'deployfile.ts'), commonDeployfile(appDir, hostSpecs(servers, count, `plain-${count}`)))
      plain.push(await deployRow(cli, dir, servers.servers.slice(0, count), runsAt(count), `${count} host(s)`))
    }

    // 1a. The floor: one shell script per host over one ssh session doing the same remote work.
    const floor: FloorRow[] = []
    if (FLOOR) {
      for (const count of COST_HOST_COUNTS) {
        const row = await floorRow(appDir, hostSpecs(servers, count, `floor-${count}`), runsAt(count), serverCpuMs)
        log(`  floor (one ssh session per host), ${count} host(s): steady ${seconds(row.steadyMs)} s (${row.steadyRunsMs.join(', ')} ms), sshd CPU/host ${row.serverCpuPerHostMs ?? '?'} ms`)
        floor.push(row)
      }
    }

    // 1a'. The client's floor: a bare ssh2 client connecting, authenticating and running one command per host.
    let clientFloor: ClientFloorRow[] | undefined
    if (process.env.BENCH_CLIENT_FLOOR !== '0') {
      clientFloor = await clientFloorRows((count) => hostSpecs(servers, count, `client-floor-${count}`), COST_HOST_COUNTS, STEADY_RUNS)
      for (const row of clientFloor) log(`  bare ssh2 client, ${row.hosts} host(s): CPU ${row.cpuMs ?? '?'} ms, peak RSS ${row.peakRssMb ?? '?'} MB`)
    }

    // 1b. The same 1-host steady deploy while busy loops hog the cores (bounded: killed after the row, at most 60 s).
    let underLoad: (DeployRow & { loops: number; loadavg: number[] }) | undefined
    if (UNDER_LOAD) {
      const dir = path.join(base, 'load-1')
      await mkdir(dir, { recursive: true })
      await writeFile(path.join(dir, 'deployfile.ts'), commonDeployfile(appDir, hostSpecs(servers, 1, 'load-1')))
      const loops = startBusyLoops(LOAD_LOOPS)
      try {
        const row = await deployRow(cli, dir, servers.servers.slice(0, 1), STEADY_RUNS, `1 host under ${LOAD_LOOPS} busy loops`)
        underLoad = { ...row, loops: LOAD_LOOPS, loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100) }
      } finally {
        await loops.stop()
      }
    }

    // 1b'. 100 sequential commands, command channel on and off, quiet and under load.
    let sequential: SequentialCase[] | undefined
    if (process.env.BENCH_SEQUENTIAL !== '0') {
      log('100 sequential commands…')
      sequential = await sequentialRows(Math.max(3, Math.min(STEADY_RUNS, 5)), UNDER_LOAD ? LOAD_LOOPS : 0, log)
    }

    // 1c. A per-host timeline of one steady deploy.
    let timeline: Timeline | undefined
    if (TIMELINE_HOSTS > 0) {
      const dir = path.join(base, `timeline-${TIMELINE_HOSTS}`)
      await mkdir(dir, { recursive: true })
      await writeFile(path.join(dir, 'deployfile.ts'), commonDeployfile(appDir, hostSpecs(servers, TIMELINE_HOSTS, `timeline-${TIMELINE_HOSTS}`)))
      let last: DepRun | undefined
      await deployRow(cli, dir, servers.servers.slice(0, TIMELINE_HOSTS), 1, `timeline, ${TIMELINE_HOSTS} hosts`, async (run) => {
        last = run
      })
      timeline = last ? timelineOf(last.stdout) : undefined
    }

    // 2. +2×DELAY_MS per round trip, through one proxy per host.
    const delayed: DelayRow[] = []
    for (const count of DELAY_HOSTS) {
      const hostProxies: DelayProxy[] = []
      for (let i = 0; i < count; i++) {
        const proxy = await startDelayProxy({ targetPort: servers.servers[i].port, delayMs: DELAY_MS })
        proxies.push(proxy)
        hostProxies.push(proxy)
        // known_hosts names the port: the proxy's port needs the daemon's key too.
        await appendFile(servers.knownHostsFile, `[127.0.0.1]:${proxy.port} ${servers.servers[i].hostKeyPub}\n`)
      }
      const dir = path.join(base, `delay-${count}`)
      await mkdir(dir, { recursive: true })
      await writeFile(path.join(dir, 'deployfile.ts'), commonDeployfile(appDir, hostSpecs(servers, count, `delay-${count}`, (i) => hostProxies[i].port)))
      const turns: Array<{ min: number; max: number }> = []
      let runIndex = 0
      const row = await deployRow(cli, dir, servers.servers.slice(0, count), STEADY_RUNS, `${count} host(s), +${2 * DELAY_MS} ms RTT`, async () => {
        await Promise.all(hostProxies.map((p) => p.waitIdle()))
        const perHost = hostProxies.map((p) => p.turnArounds())
        if (runIndex++ > 0) turns.push({ min: Math.min(...perHost), max: Math.max(...perHost) }) // steady runs only
        for (const p of hostProxies) p.reset()
      })
      const reference = plain.find((r) => r.hosts === count)
      delayed.push({
        ...row,
        delayMs: 2 * DELAY_MS,
        addedMs: reference ? row.steadyMs - reference.steadyMs : undefined,
        wireTurnArounds: mergeRanges(turns),
      })
    }

    // 2b. Rolling deploys: the same hosts all at once, then batch by batch; on loopback and delayed.
    let rolling: RollingRow[] | undefined
    if (ROLLING) {
      log(`rolling deploys, ${ROLLING_HOSTS} hosts…`)
      rolling = await rollingRows(cli, path.join(base, 'rolling'), appDir, hostSpecs(servers, ROLLING_HOSTS, 'rolling'), ROLLING_BATCHES, STEADY_RUNS, 0)
      const rollingProxies: DelayProxy[] = []
      for (let i = 0; i < ROLLING_HOSTS; i++) {
        const proxy = await startDelayProxy({ targetPort: servers.servers[i].port, delayMs: DELAY_MS })
        proxies.push(proxy)
        rollingProxies.push(proxy)
        await appendFile(servers.knownHostsFile, `[127.0.0.1]:${proxy.port} ${servers.servers[i].hostKeyPub}\n`)
      }
      const delayedHosts = hostSpecs(servers, ROLLING_HOSTS, 'rolling-delay', (i) => rollingProxies[i].port)
      rolling.push(...(await rollingRows(cli, path.join(base, 'rolling-delay'), appDir, delayedHosts, ROLLING_BATCHES, STEADY_RUNS, 2 * DELAY_MS)))
      for (const line of formatRollingRows(ROLLING_HOSTS, rolling, STEADY_RUNS)) log(`  ${line}`)
    }

    // 2c. deployfile against a hand-written Fabric fabfile, interleaved.
    const fabricAt = process.env.BENCH_FABRIC === '0' ? undefined : fabricVersion()
    let fabric: FabricComparisonRow[] | undefined
    if (fabricAt) {
      log(`deployfile vs Fabric ${fabricAt}…`)
      fabric = await fabricComparison({
        servers, base, appDir, hostCounts: HOST_COUNTS, delayHostCounts: DELAY_HOSTS, delayMs: DELAY_MS, serverCpuMs, proxies, log,
        depRow: (dir, daemons, what, afterRun) => deployRow(cli, dir, daemons, STEADY_RUNS, what, afterRun),
      })
    }

    // 3. Start-up.
    log('start-up…')
    const version = await timeCommand(cli, ['--version'], STARTUP_RUNS)
    const list = await timeCommand(cli, ['list'], STARTUP_RUNS)
    // A deployfile never seen before: jiti's on-disk transpile cache misses (the first run after an edit).
    const rootDeployfile = await readFile(path.join(REPO_ROOT, 'deployfile.ts'), 'utf8')
    const listCold = await timeCommand(
      cli,
      async (run) => {
        const file = path.join(base, `edited-${run + 1}`, 'deployfile.ts')
        await mkdir(path.dirname(file), { recursive: true })
        await writeFile(file, `${rootDeployfile}\n// edit ${run} ${Date.now()} ${Math.random()}\n`)
        return ['list', '-f', file]
      },
      STARTUP_RUNS,
    )
    log(`  --version ${version.medianMs.toFixed(0)} ms, list ${list.medianMs.toFixed(0)} ms, list after an edit ${listCold.medianMs.toFixed(0)} ms`)

    // 4. Laravel against its one-script floor, interleaved: on loopback, then through a delay proxy per host.
    const laravel: LaravelFloorRow[] = []
    let laravelSkipped: string | undefined
    const hasPhp = existsSync('/usr/bin/php') || commandVersion('sh', ['-c', 'command -v php']) !== 'unknown'
    const hasComposer = commandVersion('sh', ['-c', 'command -v composer || echo missing']) !== 'missing'
    if (!LARAVEL) laravelSkipped = 'BENCH_LARAVEL=0'
    else if (!hasPhp || !hasComposer) laravelSkipped = 'php or composer is not installed'
    else {
      const laravelApp = path.join(base, 'laravel-app')
      await copyLaravelApp(laravelApp)
      for (const rttMs of [0, 2 * DELAY_MS]) {
        for (const count of LARAVEL_HOSTS) {
          const hostProxies: DelayProxy[] = []
          for (let i = 0; rttMs > 0 && i < count; i++) {
            const proxy = await startDelayProxy({ targetPort: servers.servers[i].port, delayMs: DELAY_MS })
            proxies.push(proxy)
            hostProxies.push(proxy)
            await appendFile(servers.knownHostsFile, `[127.0.0.1]:${proxy.port} ${servers.servers[i].hostKeyPub}\n`)
          }
          const port = rttMs > 0 ? (i: number) => hostProxies[i].port : undefined
          const name = `laravel-${count}${rttMs > 0 ? '-rtt' : ''}`
          const dir = path.join(base, name)
          await mkdir(dir, { recursive: true })
          const depHosts = hostSpecs(servers, count, `${name}-dep`, port)
          await writeFile(path.join(dir, 'deployfile.ts'), laravelDeployfile(laravelApp, depHosts))
          const row = await laravelFloorRow({
            cli,
            depDir: dir,
            appDir: laravelApp,
            floorHosts: hostSpecs(servers, count, `${name}-floor`, port),
            daemons: servers.servers.slice(0, count),
            rounds: STEADY_RUNS,
            rttMs,
            serverCpuMs,
            afterRun: async () => {
              await Promise.all(hostProxies.map((p) => p.waitIdle()))
              for (const p of hostProxies) p.reset()
            },
          })
          log(`  Laravel, ${count} host(s), +${rttMs} ms RTT: dep ${seconds(row.dep.medianMs)} s (${row.dep.runsMs.join(', ')} ms), floor ${seconds(row.floor.medianMs)} s (${row.floor.runsMs.join(', ')} ms), ${row.ratio}x`)
          laravel.push(row)
        }
      }
    }

    // 5. Report.
    const machine = {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGb: Math.round(os.totalmem() / 2 ** 30),
      /** 1/5/15-minute load averages when the benchmark started and ended: anything else running skews the numbers. */
      loadavg: { before: loadBefore, after: os.loadavg().map((l) => Math.round(l * 100) / 100) },
      kernel: os.release(),
      node: process.version,
      sshd: commandVersion('sh', ['-c', '/usr/sbin/sshd -V 2>&1; true']),
      php: laravel.length > 0 ? commandVersion('php', ['-r', 'echo PHP_VERSION;']) : undefined,
    }
    const one = plain.find((r) => r.hosts === 1)
    const costs = hostCosts(plain, machine.cpus)
    const thirty = plain.find((r) => r.hosts === 30)
    const results = {
      date: new Date().toISOString(),
      commit: commandVersion('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD']),
      dirty: commandVersion('sh', ['-c', `git -C '${REPO_ROOT}' status --porcelain -- src recipes | wc -l`]) !== '0',
      machine,
      app: { files, strategy: 'upload', recipe: 'common', shared_dirs: ['logs'], shared_files: ['config/app.env'], writable_dirs: ['cache'], writable_mode: 'chmod' },
      steadyRuns: STEADY_RUNS,
      sshdStartMs: Math.round(sshdStartMs),
      peakRssSource: hasTime ? 'GNU time -v' : '/proc/<pid>/status VmHWM polling',
      deploys: plain,
      floor,
      costs,
      underLoad,
      sequential,
      timeline,
      delayed,
      rolling,
      clientFloor: clientFloor ?? { skipped: 'BENCH_CLIENT_FLOOR=0' },
      fabric: fabric ? { version: fabricAt, rows: fabric } : { skipped: process.env.BENCH_FABRIC === '0' ? 'BENCH_FABRIC=0' : FABRIC_SKIPPED },
      startup: { version, list, listAfterEdit: listCold },
      laravel: laravel.length > 0 ? laravel : { skipped: laravelSkipped },
      targets: {
        plainTripsPerHost: { target: '<= 6', value: Math.max(...plain.map((r) => Math.max(r.tripsFirst?.max ?? 0, r.tripsSteady?.max ?? 0))) },
        laravelSteadyTrips: { target: '<= 12', value: laravel.length > 0 ? Math.max(...laravel.map((r) => r.depTrips?.max ?? 0)) : undefined },
        laravelOverFloor: { target: `<= ${LARAVEL_FLOOR_GOAL}`, value: laravel.length > 0 ? Math.max(...laravel.map((r) => r.ratio)) : undefined },
        thirtyVsOne: { target: '<= 1.5', value: one && thirty ? Math.round((thirty.steadyMs / one.steadyMs) * 100) / 100 : undefined },
        addedBy100msRtt: { target: '<= 1500 ms', value: delayed.find((r) => r.hosts === 1)?.addedMs },
        depList: { target: '<= 300 ms', value: Math.round(list.medianMs) },
        depVersion: { target: '<= 150 ms', value: Math.round(version.medianMs) },
        peakRss30: { target: '< 200 MB', value: thirty?.peakRssMb },
        sequential100: { target: '<= 300 ms', value: sequential?.find((c) => c.commandChannel && c.loops === 0)?.medianMs },
        sequential100UnderLoad: {
          target: '<= 2x quiet',
          value: (() => {
            const quiet = sequential?.find((c) => c.commandChannel && c.loops === 0)?.medianMs
            const loaded = sequential?.find((c) => c.commandChannel && c.loops > 0)?.medianMs
            return quiet && loaded ? Math.round((loaded / quiet) * 100) / 100 : undefined
          })(),
        },
        depVsFabric: { target: '<= 0.5 at 1/10/30 hosts', value: fabric ? fabricVerdict(fabric).ratios : undefined },
        sessionsPerHost: { target: '<= 2', value: Math.max(...plain.map((r) => Math.max(r.sessionsFirst?.max ?? 0, r.sessionsSteady?.max ?? 0))) },
      },
      totalMs: Math.round(performance.now() - started),
    }
    const file = path.join(REPO_ROOT, 'bench/results.json')
    await writeFile(file, `${JSON.stringify(results, null, 2)}\n`)

    const lines: string[] = []
    lines.push('')
    lines.push(`deployfile benchmark — ${machine.cpus} cores (${machine.cpuModel}), Node ${machine.node}, ${machine.sshd}; load average ${machine.loadavg.before[0]} → ${machine.loadavg.after[0]}`)
    lines.push(`common recipe, upload strategy, ${files} files; wall = spawn to exit of \`dep deploy --json\`; steady = median of ${STEADY_RUNS}${SCALE_HOSTS.length ? ` (of ${Math.min(STEADY_RUNS, 3)} at ${SCALE_HOSTS.join(', ')} hosts)` : ''};`)
    lines.push('run = inside the executor (run:end durationMs); CPU = user + system of the dep process; sshd CPU = the sessions')
    lines.push('on the daemons (sshd, sh, tar…), which share the same cores as dep')
    lines.push('')
    lines.push('hosts  RTT added  first s  steady s  run s  CPU s  sshd CPU s  trips/host first  steady  wire turns/host  peak RSS MB  added vs no delay')
    for (const row of [...plain, ...delayed]) {
            const d = 'delayMs' in row ? (row as DelayRow) : undefined
      const delay = d ? `+${d.delayMs} ms` : '-'
      const wire = d ? formatTrips(d.wireTurnArounds) : '-'
      const added = d?.addedMs !== undefined ? `+${seconds(d.addedMs)} s` : '-'
      lines.push(
        `${String(row.hosts).padStart(5)}  ${delay.padStart(9)}  ${seconds(row.firstMs).padStart(7)}  ${seconds(row.steadyMs).padStart(8)}  ${seconds(row.steadyRunMs).padStart(5)}  ${seconds(row.steadyCpuMs).padStart(5)}  ${seconds(row.steadyServerCpuMs).padStart(10)}  ${formatTrips(row.tripsFirst).padStart(16)}  ${formatTrips(row.tripsSteady).padStart(6)}  ${wire.padStart(15)}  ${String(row.peakRssMb ?? '?').padStart(11)}  ${added.padStart(17)}`,
      )
    }
    lines.push('')
    lines.push('per host (steady medians): sessions = sshd "Starting session" lines per host per deploy (first/steady);')
    lines.push(`CPU floor = (dep CPU + sshd CPU) / ${machine.cpus} cores; per extra host = (value at N - value at 1) / (N - 1)`)
    lines.push('hosts  sessions/host first  steady  sshd CPU/host ms  dep CPU/extra host ms  RSS/extra host MB  CPU floor s  wall/floor')
    for (const [i, row] of plain.entries()) {
      const c = costs[i]
      const text = (value: number | undefined) => (value === undefined ? '-' : String(value))
      lines.push(
        `${String(row.hosts).padStart(5)}  ${formatTrips(row.sessionsFirst).padStart(19)}  ${formatTrips(row.sessionsSteady).padStart(6)}  ${text(c.sshdCpuPerHostMs).padStart(16)}  ${text(c.depCpuPerExtraHostMs).padStart(21)}  ${text(c.rssPerExtraHostMb).padStart(17)}  ${seconds(c.cpuFloorMs).padStart(11)}  ${text(c.wallOverFloor).padStart(10)}`,
      )
    }
    if (clientFloor) {
      lines.push('')
      lines.push("the client's floor: a bare ssh2 client (bench/ssh2-client.mjs) connecting, checking the host key, authenticating")
      lines.push('and running one command per host, every host at once; per extra host against its own 1-host run:')
      lines.push('hosts  bare client CPU/extra host ms  bare client RSS/extra host MB  dep CPU/extra host ms  dep RSS/extra host MB')
      for (const [i, row] of plain.entries()) {
        if (row.hosts <= 1) continue
        const bare = perExtraHost(clientFloor, row.hosts)
        const text = (value: number | undefined) => (value === undefined ? '-' : String(value))
        lines.push(
          `${String(row.hosts).padStart(5)}  ${text(bare.cpuMs).padStart(29)}  ${text(bare.rssMb).padStart(29)}  ${text(costs[i].depCpuPerExtraHostMs).padStart(21)}  ${text(costs[i].rssPerExtraHostMb).padStart(20)}`,
        )
      }
    }
    if (floor.length > 0) {
      lines.push('')
      lines.push('against the floor (one shell script per host over one ssh session, the same remote work, every host at once):')
      lines.push('hosts  floor steady s  dep steady s  dep/floor wall  floor sshd CPU/host ms  dep sshd CPU/host ms  dep/floor sshd CPU')
      for (const row of floor) {
        const dep = plain.find((r) => r.hosts === row.hosts)
        const depCpu = dep?.steadyServerCpuMs === undefined ? undefined : Math.round(dep.steadyServerCpuMs / dep.hosts)
        const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || b === 0 ? '-' : `${(a / b).toFixed(2)}x`)
        lines.push(
          `${String(row.hosts).padStart(5)}  ${seconds(row.steadyMs).padStart(14)}  ${seconds(dep?.steadyMs).padStart(12)}  ${ratio(dep?.steadyMs, row.steadyMs).padStart(14)}  ${String(row.serverCpuPerHostMs ?? '-').padStart(22)}  ${String(depCpu ?? '-').padStart(20)}  ${ratio(depCpu, row.serverCpuPerHostMs).padStart(18)}`,
        )
      }
    }
    if (underLoad) {
      const quiet = plain.find((r) => r.hosts === 1)
      const ratio = quiet ? ` (${(underLoad.steadyMs / quiet.steadyMs).toFixed(2)}x the 1-host row)` : ''
      lines.push('')
      lines.push(
        `under load (${underLoad.loops} busy loops, load average ${underLoad.loadavg[0]}): 1 host steady ${seconds(underLoad.steadyMs)} s${ratio} (${underLoad.steadyRunsMs.join(', ')} ms), CPU ${seconds(underLoad.steadyCpuMs)} s, sshd CPU ${seconds(underLoad.steadyServerCpuMs)} s`,
      )
    }
    if (sequential) {
      lines.push('')
      lines.push('100 sequential `true` on 1 host through the transport (daemon: bash login shell, LogLevel INFO); median ms (rounds), sshd CPU per 100:')
      for (const c of sequential) {
        lines.push(
          `  command channel ${c.commandChannel ? 'on ' : 'off'}  ${c.loops ? `${c.loops} busy loops` : 'quiet       '}  ${String(c.medianMs).padStart(6)} ms (${c.roundsMs.join(', ')})  sshd CPU ${c.sshdCpuMs ?? '?'} ms`,
        )
      }
    }
    if (rolling) {
      lines.push('')
      lines.push(...formatRollingRows(ROLLING_HOSTS, rolling, STEADY_RUNS))
    }
    lines.push('')
    if (fabric) lines.push(...formatFabricRows(fabricAt!, fabric, STEADY_RUNS))
    else lines.push(process.env.BENCH_FABRIC === '0' ? 'Fabric: skipped (BENCH_FABRIC=0)' : FABRIC_SKIPPED)
    if (timeline) {
      lines.push('')
      lines.push(`timeline of one steady ${TIMELINE_HOSTS}-host deploy (ms since run:start; idle = since the host's previous command ended):`)
      lines.push(...formatTimeline(timeline))
    }
    lines.push('')
    lines.push(`start-up (median of ${STARTUP_RUNS}): dep --version ${version.medianMs.toFixed(0)} ms (RSS ${version.peakRssMb} MB), dep list ${list.medianMs.toFixed(0)} ms (RSS ${list.peakRssMb} MB), dep list after an edit (transpile cache miss) ${listCold.medianMs.toFixed(0)} ms`)
    if (laravel.length > 0) {
      lines.push('')
      lines.push(...formatLaravelFloorRows(laravel, STEADY_RUNS))
    } else {
      lines.push(`Laravel: skipped (${laravelSkipped})`)
    }
    lines.push('')
    lines.push('targets:')
    const t = results.targets
    const verdict = (ok: boolean | undefined) => (ok === undefined ? 'n/a ' : ok ? 'met ' : 'MISSED')
    lines.push(`  ${verdict(t.plainTripsPerHost.value <= 6)}  plain release deploy <= 6 round trips/host: ${t.plainTripsPerHost.value}`)
    lines.push(`  ${verdict(t.laravelSteadyTrips.value === undefined ? undefined : t.laravelSteadyTrips.value <= 12)}  steady Laravel deploy <= 12 round trips/host: ${t.laravelSteadyTrips.value ?? '-'}`)
    lines.push(`  ${verdict(t.laravelOverFloor.value === undefined ? undefined : t.laravelOverFloor.value <= LARAVEL_FLOOR_GOAL)}  Laravel within ${LARAVEL_FLOOR_GOAL}x of the one-script floor: ${t.laravelOverFloor.value ?? '-'}x`)
    lines.push(`  ${verdict(t.thirtyVsOne.value === undefined ? undefined : t.thirtyVsOne.value <= 1.5)}  30 hosts <= 1.5x the wall time of 1 host: ${t.thirtyVsOne.value ?? '-'}x`)
    lines.push(`  ${verdict(t.addedBy100msRtt.value === undefined ? undefined : t.addedBy100msRtt.value <= 1500)}  +100 ms RTT adds <= 1.5 s (1 host): ${t.addedBy100msRtt.value === undefined ? '-' : `+${seconds(t.addedBy100msRtt.value)} s`}`)
    lines.push(`  ${verdict(t.depList.value <= 300)}  dep list <= 300 ms: ${t.depList.value} ms`)
    lines.push(`  ${verdict(t.depVersion.value <= 150)}  dep --version <= 150 ms: ${t.depVersion.value} ms`)
    lines.push(`  ${verdict(t.peakRss30.value === undefined ? undefined : t.peakRss30.value < 200)}  peak RSS of a 30-host deploy < 200 MB: ${t.peakRss30.value ?? '-'} MB`)
    lines.push(`  ${verdict(t.sessionsPerHost.value <= 2)}  sessions per host per plain deploy <= 2: ${t.sessionsPerHost.value}`)
    lines.push(`  ${verdict(t.sequential100.value === undefined ? undefined : t.sequential100.value <= 300)}  100 sequential commands <= 300 ms (quiet): ${t.sequential100.value ?? '-'} ms`)
    lines.push(`  ${verdict(t.sequential100UnderLoad.value === undefined ? undefined : t.sequential100UnderLoad.value <= 2)}  the same under load <= 2x quiet: ${t.sequential100UnderLoad.value ?? '-'}x`)
    lines.push('')
    lines.push(`results: ${path.relative(process.cwd(), file)}; total ${seconds(results.totalMs)} s`)
    process.stdout.write(`${lines.join('\n')}\n`)
  } finally {
    await Promise.all(proxies.map((p) => p.close()))
    await servers.stopAll()
    await cpuGroup?.remove()
    await rm(base, { recursive: true, force: true })
    await rm(buildCopy, { recursive: true, force: true })
  }
}

await main()
