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

/** The remote script: the plain deploy's steps, POSIX sh (the login shell runs it with -c). */
function floorScript(deployPath: string): string {
  const d = `'${deployPath.replace(/'/g, `'"'"'`)}'`
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

/** One host: `tar -c <app> | ssh … '<script>'`. Resolves with the exit code. */
function deployOne(appDir: string, host: HostSpec): Promise<number | null> {
  const o = host.options as { hostname: string; port: number; remoteUser: string; identityFile: string; knownHostsFile: string }
  return new Promise((resolve) => {
    const tar = spawn('tar', ['-c', '-f', '-', '-C', appDir, '.'], { stdio: ['ignore', 'pipe', 'inherit'] })
    const ssh = spawn(
      'ssh',
      [
        '-p', String(o.port), '-i', o.identityFile, '-o', `UserKnownHostsFile=${o.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes',
        '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-F', '/dev/null', `${o.remoteUser}@${o.hostname}`, floorScript(host.deployPath),
      ],
      { stdio: [tar.stdout, 'ignore', 'inherit'] },
    )
    ssh.on('close', (code) => resolve(code))
  })
}

/** `runs` floor deploys to every host of `hosts` at once (after one first deploy), measured. */
export async function floorRow(appDir: string, hosts: HostSpec[], runs: number, serverCpuMs: () => Promise<number>): Promise<FloorRow> {
  const once = async () => {
    const codes = await Promise.all(hosts.map((host) => deployOne(appDir, host)))
    const failed = codes.filter((code) => code !== 0).length
    if (failed > 0) throw new Error(`floor script failed on ${failed} of ${hosts.length} hosts`)
  }
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
