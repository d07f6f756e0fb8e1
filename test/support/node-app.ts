/**
 * Test harness for the Node.js plugin: the fixture app (test/fixtures/node-app)
 * as a local git repository, and a probe that asks an app port for its
 * release over and over while deploys happen, bounded by count and time.
 */
import { execFile } from 'node:child_process'
import { cp, mkdir } from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from './dep.js'

const execFileAsync = promisify(execFile)

export const NODE_APP_DIR = path.join(REPO_ROOT, 'test/fixtures/node-app')
const GREETING_DIR = path.join(REPO_ROOT, 'test/fixtures/node-app-greeting')

export async function git(cwd: string, ...args: string[]): Promise<string> {
  // safe.directory: the repository belongs to the hosts' login user, this process is root.
  const { stdout } = await execFileAsync('git', ['-c', 'user.name=deployfile', '-c', 'user.email=e2e@deployfile.test', '-c', 'safe.directory=*', ...args], { cwd })
  return stdout.trim()
}

/**
 * Makes `dir` a git repository of the fixture app with its dependency
 * (`greeting`) as a packed tarball in vendor/ and a package-lock.json, all
 * without the registry, and commits it on `main`. Returns the revision.
 */
export async function createNodeAppRepo(dir: string): Promise<string> {
  await mkdir(path.join(dir, 'vendor'), { recursive: true })
  await cp(NODE_APP_DIR, dir, { recursive: true })
  await execFileAsync('npm', ['pack', '--silent', '--pack-destination', path.join(dir, 'vendor'), GREETING_DIR], { timeout: 60_000 })
  await execFileAsync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--package-lock-only', './vendor/greeting-1.0.0.tgz'], { cwd: dir, timeout: 60_000 })
  await git(dir, 'init', '--quiet', '--initial-branch', 'main')
  await git(dir, 'add', '-A')
  await git(dir, 'commit', '--quiet', '-m', 'node-app')
  return git(dir, 'rev-parse', 'HEAD')
}

export interface ProbeResult {
  total: number
  failures: Array<{ at: number; error: string }>
  /** Each release answered, in the order of its first answer. */
  releasesSeen: string[]
  /** Every answer: the release, and when its request was sent (ms since the epoch). */
  answers: Array<{ sentAt: number; release: string }>
}

export interface Probe {
  /** Resolves once an answer named `release` (rejects if the probe ends first). */
  waitForRelease(release: string): Promise<void>
  stop(): Promise<ProbeResult>
}

/** One GET on a new connection (`agent: false`: no keep-alive socket reused across a reload). */
function getOnce(port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: timeoutMs }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => (body += chunk))
      response.on('end', () => (response.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${response.statusCode}: ${body.slice(0, 200)}`))))
      response.on('error', reject)
    })
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    request.on('error', reject)
  })
}

/**
 * Sequential GETs on 127.0.0.1:`port` every `intervalMs`, until stopped, or
 * `maxRequests` sent, or `durationMs` passed. A request waits up to
 * `requestTimeoutMs` (a loaded machine is slow, not failing).
 */
export function probeApp(options: { port: number; intervalMs: number; maxRequests: number; durationMs: number; requestTimeoutMs?: number }): Probe {
  const started = Date.now()
  const result: ProbeResult = { total: 0, failures: [], releasesSeen: [], answers: [] }
  const watchers: Array<{ release: string; resolve: () => void }> = []
  let stopped = false
  const done = (async () => {
    while (!stopped && result.total < options.maxRequests && Date.now() - started < options.durationMs) {
      const sentAt = Date.now()
      const at = sentAt - started
      result.total++
      try {
        const release = /^release: (\S+)$/m.exec(await getOnce(options.port, options.requestTimeoutMs ?? 15_000))?.[1] ?? '(none)'
        result.answers.push({ sentAt, release })
        if (!result.releasesSeen.includes(release)) result.releasesSeen.push(release)
        for (const watcher of watchers.filter((w) => w.release === release)) watcher.resolve()
      } catch (error) {
        result.failures.push({ at, error: error instanceof Error ? error.message : String(error) })
      }
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs))
    }
    return result
  })()
  return {
    waitForRelease(release) {
      if (result.releasesSeen.includes(release)) return Promise.resolve()
      const seen = new Promise<void>((resolve) => watchers.push({ release, resolve }))
      const ended = done.then(() => {
        if (!result.releasesSeen.includes(release)) throw new Error(`probe of port ${options.port} ended without seeing release ${release}`)
      })
      return Promise.race([seen, ended])
    },
    stop() {
      stopped = true
      return done
    },
  }
}

/** What 127.0.0.1:`port` answers at `/` now. */
export async function releaseAt(port: number): Promise<string | undefined> {
  return /^release: (\S+)$/m.exec(await getOnce(port, 15_000))?.[1]
}
