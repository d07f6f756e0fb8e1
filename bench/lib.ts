/**
 * Helpers of the benchmark (bench/run.ts): a private copy of the build, the
 * generated app and deployfiles, and running `dep` with its wall time, peak
 * RSS and `--json` events.
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { appendFile, cp, mkdir, mkdtemp, readFile, rm, rmdir, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { commonDeployfile as sharedCommonDeployfile } from '../test/support/dep.js'

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url))
export const TIME_BIN = '/usr/bin/time'

/**
 * A copy of dist/ (plus package.json and a node_modules link) in a temp dir:
 * `tsup` cleans dist/ on every build, and a build started by someone else in
 * the middle of the benchmark would otherwise pull the files from under it.
 * The CLI resolves `import … from 'deployfile'` from the package root it sits
 * in, so the copy is self-contained. Returns the path of its cli.js.
 */
export async function snapshotBuild(): Promise<{ cli: string; root: string }> {
  const root = await mkdtemp(path.join(tmpdir(), 'deployfile-bench-build-'))
  await cp(path.join(REPO_ROOT, 'dist'), path.join(root, 'dist'), { recursive: true })
  await cp(path.join(REPO_ROOT, 'package.json'), path.join(root, 'package.json'))
  await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'))
  const cli = path.join(root, 'dist/cli.js')
  if (!existsSync(cli)) throw new Error(`no ${cli}: did the build run?`)
  return { cli, root }
}

/** Writes an app of `dirs` × `filesPerDir` small text files (plus a few at the top). Returns the file count. */
export async function generateApp(dir: string, dirs = 6, filesPerDir = 8): Promise<number> {
  let count = 0
  const write = async (rel: string, text: string) => {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true })
    await writeFile(path.join(dir, rel), text)
    count++
  }
  await write('index.html', '<!doctype html>\n<h1>bench</h1>\n')
  await write('config/app.env', 'MODE=bench\n')
  await write('logs/.keep', '')
  for (let d = 0; d < dirs; d++) {
    for (let f = 0; f < filesPerDir; f++) {
      const line = `dir ${d} file ${f}: the quick brown fox jumps over the lazy dog\n`
      await write(`src/part${d}/file${f}.txt`, line.repeat(20 + ((d * filesPerDir + f) % 40)))
    }
  }
  return count
}

export interface HostSpec {
  alias: string
  options: Record<string, unknown>
  deployPath: string
}

/** A deployfile of the common recipe, upload strategy, the usual shared/writable settings. */
export function commonDeployfile(appDir: string, hosts: HostSpec[]): string {
  return sharedCommonDeployfile(appDir, hosts)
}

/**
 * The .env values of the bench's Laravel deploys: an absolute SQLite path in shared/. One place for
 * the deployfile's `dotenv` setting and the floor script's .env (bench/laravel-floor.ts).
 */
export function laravelDotenv(deployPath: string): Record<string, string> {
  return {
    APP_NAME: 'bench', APP_ENV: 'production', APP_KEY: 'base64:Rh+mv/xKQxTp430BLz5IByGFTaamI6U/Ng4KJebCQGw=',
    APP_DEBUG: 'false', APP_URL: 'http://127.0.0.1', LOG_CHANNEL: 'single', LOG_LEVEL: 'debug',
    DB_CONNECTION: 'sqlite', DB_DATABASE: path.join(deployPath, 'shared/database/database.sqlite'),
    CACHE_DRIVER: 'file', SESSION_DRIVER: 'file', QUEUE_CONNECTION: 'sync',
  }
}

/**
 * A deployfile of the Laravel recipe to `hosts`: upload strategy, chmod, keep 3, and each host's
 * dotenv in its own config (its SQLite path is in its own shared/).
 */
export function laravelDeployfile(appDir: string, hosts: HostSpec[]): string {
  const lines = hosts.map(
    (h) =>
      `host(${JSON.stringify(h.alias)}, { ...${JSON.stringify(h.options)}, deployPath: ${JSON.stringify(h.deployPath)}, config: { dotenv: ${JSON.stringify(laravelDotenv(h.deployPath))} } })`,
  )
  return `
import { host, set, use } from 'deployfile'
import { laravel } from 'deployfile/recipes/laravel'

use(laravel)
set('update_code_strategy', 'upload')
set('upload_path', ${JSON.stringify(appDir)})
set('writable_mode', 'chmod')
set('keep_releases', 3)
${lines.join('\n')}
`
}

export interface DepRun {
  code: number | null
  stdout: string
  stderr: string
  /** From spawn to exit, as a user waits for it. */
  wallMs: number
  /** Peak resident set size of the dep process, kB (undefined when it could not be measured). */
  peakRssKb: number | undefined
  /** CPU time of the dep process (user + system), ms; GNU time only. */
  cpuMs: number | undefined
  /** The run:end event of `--json`, if any. */
  runEnd: { status: string; durationMs: number; roundTrips: Record<string, number> } | undefined
}

/**
 * Runs `node <cli> …args` in `cwd`. Peak RSS comes from GNU time (`-v -o file`)
 * when /usr/bin/time exists, else from polling VmHWM in /proc/<pid>/status.
 */
export async function runDep(cli: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<DepRun> {
  const useTime = existsSync(TIME_BIN)
  const timeFile = useTime ? path.join(await mkdtemp(path.join(tmpdir(), 'deployfile-bench-time-')), 'time.txt') : undefined
  const command = useTime ? TIME_BIN : process.execPath
  const argv = useTime ? ['-v', '-o', timeFile!, process.execPath, cli, ...args] : [cli, ...args]
  const started = performance.now()
  const child = spawn(command, argv, {
    cwd,
    // No agent, no colours, plain reporter: the same for every run.
    env: { ...process.env, NO_COLOR: '1', CI: '1', GITHUB_ACTIONS: '', SSH_AUTH_SOCK: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  let polledKb: number | undefined
  const poller = useTime
    ? undefined
    : setInterval(() => {
        try {
          const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
          const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1])
          if (kb) polledKb = Math.max(polledKb ?? 0, kb)
        } catch {
          // exited
        }
      }, 10)
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)))
  const wallMs = performance.now() - started
  if (poller) clearInterval(poller)
  let peakRssKb = polledKb
  let cpuMs: number | undefined
  if (timeFile) {
    const report = await readFile(timeFile, 'utf8').catch(() => '')
    const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(report)?.[1])
    peakRssKb = kb || undefined
    const user = Number(/User time \(seconds\): ([\d.]+)/.exec(report)?.[1])
    const system = Number(/System time \(seconds\): ([\d.]+)/.exec(report)?.[1])
    cpuMs = Number.isFinite(user + system) ? Math.round((user + system) * 1000) : undefined
    await rm(path.dirname(timeFile), { recursive: true, force: true })
  }
  let runEnd: DepRun['runEnd']
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      const event = JSON.parse(line) as { type?: string }
      if (event.type === 'run:end') runEnd = event as DepRun['runEnd']
    } catch {
      // not an event
    }
  }
  return { code, stdout, stderr, wallMs, peakRssKb, cpuMs, runEnd }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Round trips per host of a run: one number when every host made the same, else "min–max". */
export function tripsRange(roundTrips: Record<string, number> | undefined): { min: number; max: number } | undefined {
  if (!roundTrips) return undefined
  const values = Object.values(roundTrips)
  if (values.length === 0) return undefined
  return { min: Math.min(...values), max: Math.max(...values) }
}

export function formatTrips(range: { min: number; max: number } | undefined): string {
  if (!range) return '?'
  return range.min === range.max ? String(range.min) : `${range.min}–${range.max}`
}

/** Fails loudly with dep's output when a run did not succeed. */
export function assertOk(run: DepRun, what: string): void {
  if (run.code !== 0 || run.runEnd?.status !== 'success') {
    throw new Error(`${what} failed (exit ${run.code}):\n${run.stdout.slice(-4000)}\n${run.stderr.slice(-4000)}`)
  }
}

/** CPU accounting for a set of processes and everything they start (a cgroup v1 cpuacct group). */
export interface CpuGroup {
  /** Moves a process into the group; its later children are counted too. */
  add(pid: number): Promise<void>
  /** CPU used by the group so far, ms. */
  usageMs(): Promise<number>
  /** Removes the group (its processes must be gone). */
  remove(): Promise<void>
}

const CPUACCT_ROOTS = ['/sys/fs/cgroup/cpuacct', '/sys/fs/cgroup/cpu,cpuacct']

/**
 * A cpuacct cgroup for the sshd daemons: a listening sshd does not collect the CPU of the sessions
 * it serves (their shells, tar, php) in its own cutime, so only a cgroup sees the server side whole.
 * Undefined when the machine has no writable cgroup v1 cpuacct hierarchy.
 */
export async function createCpuGroup(name: string): Promise<CpuGroup | undefined> {
  const root = CPUACCT_ROOTS.find((dir) => existsSync(path.join(dir, 'cpuacct.usage')))
  if (!root) return undefined
  const dir = path.join(root, `${name}-${process.pid}`)
  try {
    await mkdir(dir)
  } catch {
    return undefined
  }
  return {
    async add(pid: number) {
      await appendFile(path.join(dir, 'cgroup.procs'), `${pid}\n`)
    },
    async usageMs() {
      return Number(await readFile(path.join(dir, 'cpuacct.usage'), 'utf8')) / 1e6
    },
    async remove() {
      await rmdir(dir).catch(() => undefined)
    },
  }
}
