/**
 * Test harness: pm2 from the npm registry, installed once per machine into
 * node_modules/.cache/deployfile-pm2 (world-readable: the sshd hosts log in
 * as another user), and a way to stop every pm2 daemon a test started.
 *
 * Several test processes may ask at once: each installs into its own temp
 * dir and renames it into place; the loser of the race drops its copy.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from './dep.js'

const execFileAsync = promisify(execFile)

/** The pm2 major the tests are written against. */
const PM2_SPEC = 'pm2@7'
const CACHE_DIR = path.join(REPO_ROOT, 'node_modules/.cache/deployfile-pm2')
const INSTALL_TIMEOUT_MS = 240_000

/** The directory holding the `pm2` binary (for the node_bin setting), installing pm2 first when missing. */
export async function installPm2(): Promise<string> {
  const bin = path.join(CACHE_DIR, 'node_modules/.bin')
  if (existsSync(path.join(bin, 'pm2'))) return bin
  // A fresh clone has no node_modules/.cache yet.
  await mkdir(path.dirname(CACHE_DIR), { recursive: true })
  const staging = await mkdtemp(`${CACHE_DIR}.tmp-`)
  try {
    await execFileAsync('npm', ['install', '--prefix', staging, '--no-audit', '--no-fund', '--no-save', PM2_SPEC], { timeout: INSTALL_TIMEOUT_MS })
    await execFileAsync('chmod', ['-R', 'a+rX', staging])
    await rename(staging, CACHE_DIR).catch((error: NodeJS.ErrnoException) => {
      if (!existsSync(path.join(bin, 'pm2'))) throw error
    })
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
  return bin
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The pids pm2 wrote in a PM2_HOME: the daemon's and its apps'. */
async function pm2Pids(pm2Home: string): Promise<number[]> {
  const files = [path.join(pm2Home, 'pm2.pid'), ...(await readdir(path.join(pm2Home, 'pids')).catch(() => [] as string[])).map((f) => path.join(pm2Home, 'pids', f))]
  const pids = await Promise.all(files.map(async (file) => Number((await readFile(file, 'utf8').catch(() => '')).trim())))
  return pids.filter((pid) => Number.isInteger(pid) && pid > 0)
}

/**
 * Stops the pm2 daemon of `pm2Home` and its apps (`pm2 kill`), then kills
 * whatever pid it wrote that still runs. Returns the pids still alive after
 * that (a test asserts there are none).
 */
export async function killPm2(binDir: string, pm2Home: string): Promise<number[]> {
  if (!existsSync(pm2Home)) return []
  const pids = await pm2Pids(pm2Home)
  await execFileAsync(path.join(binDir, 'pm2'), ['kill'], { env: { ...process.env, PM2_HOME: pm2Home }, timeout: 30_000 }).catch(() => undefined)
  for (const pid of pids.filter(isRunning)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone meanwhile
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 200))
  return pids.filter(isRunning)
}
