/**
 * deployfile against its fastest peer, a hand-written Fabric 2 fabfile (bench/fabfile.py): the same
 * remote work as the plain release deploy, one `c.run()` per step, a thread per host. Measured like
 * a deploy row: wall time (spawn to exit of `python3 bench/fabfile.py`, as a user waits for it), the
 * server side's CPU per host (the bench's cgroup) and sessions per host (the daemons' VERBOSE logs).
 *
 * The comparison runs the two tools interleaved (dep, fab, dep, fab …) so that whatever else the
 * machine does in the meantime falls on both alike; each tool deploys into its own paths.
 */
import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { startDelayProxy, type DelayProxy } from '../test/support/delay-proxy.js'
import type { SshServer, SshServers } from '../test/support/sshd.js'
import { commonDeployfile, median, REPO_ROOT, TIME_BIN, type DepRun, type HostSpec } from './lib.js'
import { SessionCounter } from './sessions.js'

/** Debian's python3-fabric lives in the system Python's dist-packages. */
const PYTHON = '/usr/bin/python3'
const FABFILE = path.join(REPO_ROOT, 'bench/fabfile.py')

/** What the summary prints when Fabric cannot be imported. */
export const FABRIC_SKIPPED = 'Fabric: skipped (python3-fabric not installed: bash scripts/install-bench-deps.sh)'

/** Fabric's version when `/usr/bin/python3 -c 'import fabric'` works, else undefined. */
export function fabricVersion(): string | undefined {
  try {
    return execFileSync(PYTHON, ['-c', 'import fabric; print(fabric.__version__)'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return undefined
  }
}

type Range = { min: number; max: number }

/** One tool's side of a comparison row: medians over the steady runs. */
export interface ToolSide {
  steadyMs: number
  steadyRunsMs: number[]
  /** CPU of the tool's own process (user + system), ms: the client side, on the same cores as sshd. */
  clientCpuMs: number | undefined
  /** Server-side CPU per host of a steady run, ms (undefined without a cgroup). */
  serverCpuPerHostMs: number | undefined
  /** Sessions per host (sshd "Starting session" lines) of the first deploy and over the steady ones. */
  sessionsFirst: Range | undefined
  sessionsSteady: Range | undefined
}

/** Fabric against deployfile for one host count and RTT. */
export interface FabricComparisonRow {
  hosts: number
  /** Added round-trip time (the delay proxy), ms; 0 on plain loopback. */
  rttMs: number
  dep: ToolSide
  fabric: ToolSide
  /** deployfile's steady median wall / Fabric's. */
  ratio: number
}

/** The steady-run figures deployfile's side comes from (run.ts's DeployRow has these). */
export interface DepRowFigures {
  hosts: number
  steadyMs: number
  steadyRunsMs: number[]
  steadyCpuMs: number | undefined
  steadyServerCpuMs: number | undefined
  sessionsFirst: Range | undefined
  sessionsSteady: Range | undefined
}

/** run.ts's deployRow: the first deploy of the deployfile in `dir`, then the steady ones, `afterRun` after each. */
export type DepRowRunner = (dir: string, daemons: SshServer[], what: string, afterRun: (run: DepRun) => Promise<void>) => Promise<DepRowFigures>

function rangeOf(values: number[]): Range | undefined {
  return values.length === 0 ? undefined : { min: Math.min(...values), max: Math.max(...values) }
}

function mergeRanges(ranges: Array<Range | undefined>): Range | undefined {
  const known = ranges.filter((r): r is Range => r !== undefined)
  if (known.length === 0) return undefined
  return { min: Math.min(...known.map((r) => r.min)), max: Math.max(...known.map((r) => r.max)) }
}

/**
 * One fabfile run to every host at once. Resolves with its wall time and its CPU (user + system, GNU
 * time when installed, as for dep); rejects with its stderr when it failed.
 */
async function runFabfile(configFile: string): Promise<{ wallMs: number; cpuMs: number | undefined }> {
  const timeFile = existsSync(TIME_BIN) ? `${configFile}.time` : undefined
  const argv = [PYTHON, FABFILE, configFile]
  const started = performance.now()
  const child = timeFile
    ? spawn(TIME_BIN, ['-f', '%U %S', '-o', timeFile, ...argv], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SSH_AUTH_SOCK: '' } })
    : spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SSH_AUTH_SOCK: '' } })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)))
  const wallMs = performance.now() - started
  if (code !== 0) throw new Error(`fabfile failed (exit ${code}):\n${stderr.slice(-4000)}`)
  const [user, system] = timeFile ? (await readFile(timeFile, 'utf8')).trim().split(/\s+/).map(Number) : []
  return { wallMs, cpuMs: Number.isFinite(user + system) ? Math.round((user + system) * 1000) : undefined }
}

/**
 * Fabric deploys of a set of hosts, one per `next()`: the first is the first deploy (not measured),
 * every later one a steady run, measured for wall time, server CPU and sessions per host.
 */
export class FabricDeploys {
  private readonly walls: number[] = []
  private readonly clientCpu: Array<number | undefined> = []
  private readonly cpu: number[] = []
  private readonly sessions: Array<Range | undefined> = []
  private sessionsFirst: Range | undefined
  private started = false

  constructor(
    private readonly configFile: string,
    private readonly hostCount: number,
    private readonly daemons: SshServer[],
    private readonly serverCpuMs: () => Promise<number>,
  ) {}

  /** Writes the fabfile's JSON config (app dir, hosts) into `dir`. */
  static async create(dir: string, appDir: string, hosts: HostSpec[], daemons: SshServer[], serverCpuMs: () => Promise<number>): Promise<FabricDeploys> {
    await mkdir(dir, { recursive: true })
    const configFile = path.join(dir, 'fabfile.json')
    const config = {
      app: appDir,
      hosts: hosts.map((h) => {
        const o = h.options as { hostname: string; port: number; remoteUser: string; identityFile: string; knownHostsFile: string }
        return { hostname: o.hostname, port: o.port, user: o.remoteUser, identityFile: o.identityFile, knownHostsFile: o.knownHostsFile, deployPath: h.deployPath }
      }),
    }
    await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`)
    return new FabricDeploys(configFile, hosts.length, daemons, serverCpuMs)
  }

  /** The next deploy: the first one, or a measured steady one. */
  async next(): Promise<void> {
    const before = await this.serverCpuMs() // also lets the previous run's log lines arrive
    const counter = new SessionCounter(this.daemons)
    const { wallMs, cpuMs } = await runFabfile(this.configFile)
    const cpu = (await this.serverCpuMs()) - before
    const sessions = rangeOf(counter.perHost())
    if (!this.started) {
      this.started = true
      this.sessionsFirst = sessions
      return
    }
    this.walls.push(wallMs)
    this.clientCpu.push(cpuMs)
    this.cpu.push(cpu / this.hostCount)
    this.sessions.push(sessions)
  }

  /** The steady runs so far. */
  side(): ToolSide {
    return {
      steadyMs: median(this.walls),
      steadyRunsMs: this.walls.map(Math.round),
      clientCpuMs: this.clientCpu.length > 0 && this.clientCpu.every((c) => c !== undefined) ? median(this.clientCpu as number[]) : undefined,
      serverCpuPerHostMs: this.cpu.length > 0 && this.cpu.every(Number.isFinite) ? Math.round(median(this.cpu)) : undefined,
      sessionsFirst: this.sessionsFirst,
      sessionsSteady: mergeRanges(this.sessions),
    }
  }
}

/** `runs` Fabric deploys to every host of `hosts` at once (after one first deploy), measured, on their own. */
export async function fabricRow(dir: string, appDir: string, hosts: HostSpec[], daemons: SshServer[], runs: number, serverCpuMs: () => Promise<number>): Promise<ToolSide> {
  const deploys = await FabricDeploys.create(dir, appDir, hosts, daemons, serverCpuMs)
  for (let i = 0; i <= runs; i++) await deploys.next()
  return deploys.side()
}

export interface ComparisonOptions {
  servers: SshServers
  /** A scratch dir for the deployfiles and the fabfile configs. */
  base: string
  appDir: string
  /** Host counts on plain loopback, and through a delay proxy per host. */
  hostCounts: number[]
  delayHostCounts: number[]
  /** One-way delay of the proxies, ms (the RTT adds twice this). */
  delayMs: number
  depRow: DepRowRunner
  serverCpuMs: () => Promise<number>
  /** The proxies started here are pushed onto it: the caller closes them. */
  proxies: DelayProxy[]
  log: (message: string) => void
}

/** The hosts of one case: deploy paths under `root`, through `ports` when given (the delay proxies). */
function hostSpecs(servers: SshServers, count: number, root: string, ports?: number[]): HostSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    alias: `h${i + 1}`,
    options: { ...servers.hostOptions(i), ...(ports ? { port: ports[i] } : {}) },
    deployPath: path.join(servers.workDir, root, `h${i + 1}`),
  }))
}

/** deployfile and Fabric interleaved, for every host count on loopback and through the delay proxies. */
export async function fabricComparison(o: ComparisonOptions): Promise<FabricComparisonRow[]> {
  const cases = [...o.hostCounts.map((hosts) => ({ hosts, rttMs: 0 })), ...o.delayHostCounts.map((hosts) => ({ hosts, rttMs: 2 * o.delayMs }))]
  const rows: FabricComparisonRow[] = []
  for (const { hosts, rttMs } of cases) {
    let ports: number[] | undefined
    if (rttMs > 0) {
      ports = []
      for (let i = 0; i < hosts; i++) {
        const proxy = await startDelayProxy({ targetPort: o.servers.servers[i].port, delayMs: o.delayMs })
        o.proxies.push(proxy)
        ports.push(proxy.port)
        // known_hosts names the port: the proxy's port needs the daemon's key too.
        await appendFile(o.servers.knownHostsFile, `[127.0.0.1]:${proxy.port} ${o.servers.servers[i].hostKeyPub}\n`)
      }
    }
    const name = `${hosts}${rttMs ? `-rtt${rttMs}` : ''}`
    const daemons = o.servers.servers.slice(0, hosts)
    const fabric = await FabricDeploys.create(path.join(o.base, `fabric-${name}`), o.appDir, hostSpecs(o.servers, hosts, `vs-fabric-fab-${name}`, ports), daemons, o.serverCpuMs)
    const depDir = path.join(o.base, `vs-fabric-dep-${name}`)
    await mkdir(depDir, { recursive: true })
    await writeFile(path.join(depDir, 'deployfile.ts'), commonDeployfile(o.appDir, hostSpecs(o.servers, hosts, `vs-fabric-dep-${name}`, ports)))
    // deployRow calls afterRun after dep's first deploy and after each steady one: Fabric's first
    // deploy, then one Fabric steady run after each dep steady run.
    const what = `vs Fabric, ${hosts} host(s)${rttMs ? `, +${rttMs} ms RTT` : ''}`
    const dep = await o.depRow(depDir, daemons, `${what}, deployfile`, () => fabric.next())
    const fab = fabric.side()
    const depSide: ToolSide = {
      steadyMs: dep.steadyMs,
      steadyRunsMs: dep.steadyRunsMs,
      clientCpuMs: dep.steadyCpuMs,
      serverCpuPerHostMs: dep.steadyServerCpuMs === undefined ? undefined : Math.round(dep.steadyServerCpuMs / hosts),
      sessionsFirst: dep.sessionsFirst,
      sessionsSteady: dep.sessionsSteady,
    }
    const row: FabricComparisonRow = { hosts, rttMs, dep: depSide, fabric: fab, ratio: Math.round((dep.steadyMs / fab.steadyMs) * 100) / 100 }
    o.log(`  ${what}, Fabric: steady ${(fab.steadyMs / 1000).toFixed(2)} s (${fab.steadyRunsMs.join(', ')} ms), CPU ${fab.clientCpuMs ?? '?'} ms, sshd CPU/host ${fab.serverCpuPerHostMs ?? '?'} ms, sessions/host ${formatRange(fab.sessionsFirst)}/${formatRange(fab.sessionsSteady)}; dep/fab ${row.ratio}x`)
    rows.push(row)
  }
  return rows
}

function formatRange(range: Range | undefined): string {
  if (!range) return '?'
  return range.min === range.max ? String(range.min) : `${range.min}–${range.max}`
}

/** Host counts the goal names: deployfile at most half of Fabric's wall time at each, on loopback. */
const GOAL_HOSTS = [1, 10, 30]
const GOAL_RATIO = 0.5

/**
 * The goal's verdict with the loopback ratios: missed when any measured ratio is above the goal, met
 * when all of 1, 10 and 30 hosts were measured and are within it, else undefined (not all were run).
 */
export function fabricVerdict(rows: FabricComparisonRow[]): { met: boolean | undefined; ratios: Record<string, number> } {
  const ratios: Record<string, number> = {}
  for (const row of rows) if (row.rttMs === 0 && GOAL_HOSTS.includes(row.hosts)) ratios[String(row.hosts)] = row.ratio
  const values = Object.values(ratios)
  if (values.some((r) => r > GOAL_RATIO)) return { met: false, ratios }
  return { met: values.length === GOAL_HOSTS.length ? true : undefined, ratios }
}

/** The summary's table and verdict line. */
export function formatFabricRows(version: string, rows: FabricComparisonRow[], runs: number): string[] {
  const s = (ms: number) => (ms / 1000).toFixed(2)
  const wall = (side: ToolSide) => `${s(side.steadyMs)} (${s(Math.min(...side.steadyRunsMs))}–${s(Math.max(...side.steadyRunsMs))})`
  const lines = [
    `deployfile vs a hand-written Fabric ${version} fabfile (bench/fabfile.py: one c.run() per step, c.put + tar -x, a thread per host),`,
    `interleaved dep, fab, dep, fab … (median of ${runs} steady runs each, s (range)); CPU = the tool's own process (user + system);`,
    'sshd CPU = the server side per host (cgroup); sessions/host first/steady:',
    'hosts  RTT added  dep wall s           fab wall s           dep/fab  dep CPU ms  fab CPU ms  dep sshd CPU/host ms  fab sshd CPU/host ms  dep sessions  fab sessions',
  ]
  for (const r of rows) {
    const sessions = (side: ToolSide) => `${formatRange(side.sessionsFirst)}/${formatRange(side.sessionsSteady)}`
    lines.push(
      `${String(r.hosts).padStart(5)}  ${(r.rttMs ? `+${r.rttMs} ms` : '-').padStart(9)}  ${wall(r.dep).padEnd(19)}  ${wall(r.fabric).padEnd(19)}  ${`${r.ratio.toFixed(2)}x`.padStart(7)}  ${String(r.dep.clientCpuMs ?? '-').padStart(10)}  ${String(r.fabric.clientCpuMs ?? '-').padStart(10)}  ${String(r.dep.serverCpuPerHostMs ?? '-').padStart(20)}  ${String(r.fabric.serverCpuPerHostMs ?? '-').padStart(20)}  ${sessions(r.dep).padStart(12)}  ${sessions(r.fabric).padStart(12)}`,
    )
  }
  const v = fabricVerdict(rows)
  const measured = GOAL_HOSTS.map((h) => `${h}: ${v.ratios[String(h)] === undefined ? 'not run' : `${v.ratios[String(h)]}x`}`).join(', ')
  lines.push(`  ${v.met === undefined ? 'n/a ' : v.met ? 'met ' : 'MISSED'}  deployfile <= 0.5x Fabric at 1/10/30 hosts: ${measured}`)
  return lines
}
