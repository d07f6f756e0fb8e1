/**
 * The floor a deploy is compared with: one shell script doing the plain deploy's remote work (lock,
 * release directory, the upload's tar extract, shared links, writable dir, the atomic switch, cleanup,
 * unlock) over ONE ssh session per host, the archive on stdin, run with OpenSSH's `ssh` on every host
 * at once, as a hand-written `deploy.sh` would. No ledger, no probe, no health check: a lower bound.
 * Measured like a deploy row: wall time, and the server side's CPU per host (the bench's cgroup).
 */
import { spawn } from 'node:child_process'
import type { HostSpec } from './lib.js'
import { median } from './lib.js'

export interface FloorRow {
  hosts: number
  /** Wall time of the steady runs (every host at once), ms. */
  steadyMs: number
  steadyRunsMs: number[]
  /** Server-side CPU per host of a steady run, ms (undefined without a cgroup). */
  serverCpuPerHostMs: number | undefined
}

/** A value POSIX single-quoted for the remote shell. */
export function shQuote(value: string): string {
  return `'${value.replace(/'/g, `'"'"'`)}'`
}

/** The remote script: the plain deploy's steps, POSIX sh (the login shell runs it with -c). */
function floorScript(deployPath: string): string {
  const d = shQuote(deployPath)
  return `set -e
d=${d}
mkdir -p "$d/releases" "$d/shared/logs" "$d/shared/config" "$d/.dep"
[ -f "$d/shared/config/app.env" ] || : > "$d/shared/config/app.env"
mkdir "$d/.dep/floor-lock"
trap 'rmdir "$d/.dep/floor-lock"' EXIT
last=$(ls "$d/releases" | sort -n | tail -n 1)
n=$(( \${last:-0} + 1 ))
r="$d/releases/$n"
mkdir "$r"
tar -x -f - -C "$r"
rm -rf "$r/logs" && ln -s "$d/shared/logs" "$r/logs"
mkdir -p "$r/config" && ln -sfn "$d/shared/config/app.env" "$r/config/app.env"
mkdir -p "$r/cache" && chmod -R a+w "$r/cache"
ln -sfn "releases/$n" "$d/release" && mv -T "$d/release" "$d/current"
ls "$d/releases" | sort -n | head -n -3 | while read -r old; do rm -rf "$d/releases/$old"; done`
}

/** What one host's script did: its exit code and what it printed. */
export interface FloorHostResult {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * One host: `tar -c <app> | ssh … '<script>'`. Output is collected, not shown (composer and artisan
 * talk on stderr); a failing host's stderr goes into the error of {@link floorOnce}.
 */
function deployOne(appDir: string, host: HostSpec, script: string): Promise<FloorHostResult> {
  const o = host.options as { hostname: string; port: number; remoteUser: string; identityFile: string; knownHostsFile: string }
  return new Promise((resolve) => {
    const tar = spawn('tar', ['-c', '-f', '-', '-C', appDir, '.'], { stdio: ['ignore', 'pipe', 'inherit'] })
    const ssh = spawn(
      'ssh',
      [
        '-p', String(o.port), '-i', o.identityFile, '-o', `UserKnownHostsFile=${o.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes',
        '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-F', '/dev/null', `${o.remoteUser}@${o.hostname}`, script,
      ],
      { stdio: [tar.stdout, 'pipe', 'pipe'] },
    )
    let stdout = ''
    let stderr = ''
    ssh.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    ssh.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    ssh.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** The remote script of one host, by its index in the host list (the plain deploy's by default). */
export type FloorScript = (host: HostSpec, index: number) => string

/** One floor deploy to every host of `hosts` at once; throws when a host's script failed. */
export async function floorOnce(appDir: string, hosts: HostSpec[], script: FloorScript = (host) => floorScript(host.deployPath)): Promise<FloorHostResult[]> {
  const results = await Promise.all(hosts.map((host, i) => deployOne(appDir, host, script(host, i))))
  const failed = results.filter((r) => r.code !== 0)
  if (failed.length > 0) {
    throw new Error(`floor script failed on ${failed.length} of ${hosts.length} hosts (exit ${failed[0].code}):\n${failed[0].stderr.slice(-4000)}`)
  }
  return results
}

/** `runs` floor deploys to every host of `hosts` at once (after one first deploy), measured. */
export async function floorRow(appDir: string, hosts: HostSpec[], runs: number, serverCpuMs: () => Promise<number>): Promise<FloorRow> {
  const once = () => floorOnce(appDir, hosts)
  await once()
  const walls: number[] = []
  const cpu: number[] = []
  for (let i = 0; i < runs; i++) {
    const before = await serverCpuMs()
    const started = performance.now()
    await once()
    walls.push(performance.now() - started)
    cpu.push(((await serverCpuMs()) - before) / hosts.length)
  }
  return {
    hosts: hosts.length,
    steadyMs: median(walls),
    steadyRunsMs: walls.map(Math.round),
    serverCpuPerHostMs: cpu.every(Number.isFinite) ? Math.round(median(cpu)) : undefined,
  }
}
