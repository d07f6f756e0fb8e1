/**
 * Runs the built `dep` binary (dist/cli.js) the way a user does, in a
 * directory with a deployfile, and reads the layout it leaves on hosts.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, readlink, readdir, writeFile, mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const CLI = path.join(REPO_ROOT, 'dist/cli.js')

export interface DepResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** stdout + stderr */
  output: string
}

export interface DepProcess {
  child: ChildProcess
  result: Promise<DepResult>
}

/** Starts `dep …` in `cwd`; the promise settles when it exits. */
export function startDep(args: string[], options: { cwd: string; env?: Record<string, string | undefined> }): DepProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env: { ...process.env, NO_COLOR: '1', CI: '1', GITHUB_ACTIONS: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const result = new Promise<DepResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, output: stdout + stderr }))
  })
  return { child, result }
}

/** Runs `dep …` in `cwd` to the end; a run that hangs is killed after `timeoutMs`, its output kept for the failure. */
export async function dep(args: string[], options: { cwd: string; env?: Record<string, string | undefined>; timeoutMs?: number }): Promise<DepResult> {
  const { child, result } = startDep(args, options)
  const limit = options.timeoutMs ?? 90_000
  const timer = setTimeout(() => child.kill('SIGKILL'), limit)
  const ended = await result.finally(() => clearTimeout(timer))
  if (ended.signal === 'SIGKILL') ended.output += `\n[dep ${args.join(' ')} was killed: still running after ${limit / 1000} s]`
  return ended
}

export async function writeDeployfile(dir: string, content: string): Promise<string> {
  await mkdir(dir, { recursive: true })
  const file = path.join(dir, 'deployfile.ts')
  await writeFile(file, content)
  return file
}

/** Where `current` points on a host (a relative `releases/N`), or undefined. */
export async function currentOf(deployPath: string): Promise<string | undefined> {
  try {
    return await readlink(path.join(deployPath, 'current'))
  } catch {
    return undefined
  }
}

export async function releasesOf(deployPath: string): Promise<string[]> {
  try {
    return (await readdir(path.join(deployPath, 'releases'))).sort((a, b) => Number(a) - Number(b))
  } catch {
    return []
  }
}

export interface LedgerLine {
  release: string
  status: string
  run_id?: string
  revision?: string
  user?: string
}

export async function ledgerOf(deployPath: string): Promise<LedgerLine[]> {
  try {
    const text = await readFile(path.join(deployPath, '.dep/releases_log'), 'utf8')
    return text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as LedgerLine)
  } catch {
    return []
  }
}

/** The last status the ledger records for `release`. */
export async function statusOf(deployPath: string, release: string): Promise<string | undefined> {
  return (await ledgerOf(deployPath)).filter((e) => e.release === release).pop()?.status
}

export function isLocked(deployPath: string): boolean {
  return existsSync(path.join(deployPath, '.dep/deploy.lock'))
}

/** Polls until `check` is true or `timeoutMs` passes. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** A host line of a generated deployfile. */
export interface DeployfileHost {
  alias: string
  /** Host options (e.g. `servers.hostOptions(i)`). */
  options: Record<string, unknown>
  deployPath: string
  labels?: Record<string, string>
}

/**
 * A deployfile of the common recipe with the `upload` strategy and the usual
 * shared/writable settings, used by the integration tests and the benchmark;
 * `extra` is appended (more settings, hooks).
 */
export function commonDeployfile(appDir: string, hosts: DeployfileHost[], extra = ''): string {
  const hostLines = hosts.map(
    (h) =>
      `host(${JSON.stringify(h.alias)}, { ...${JSON.stringify(h.options)}, deployPath: ${JSON.stringify(h.deployPath)}${h.labels ? `, labels: ${JSON.stringify(h.labels)}` : ''} })`,
  )
  return `
import { after, before, host, set, task, use } from 'deployfile'
import { common } from 'deployfile/recipes/common'

use(common)
set('update_code_strategy', 'upload')
set('upload_path', ${JSON.stringify(appDir)})
set('shared_dirs', ['logs'])
set('shared_files', ['config/app.env'])
set('writable_dirs', ['cache'])
set('writable_mode', 'chmod')
set('keep_releases', 3)
${hostLines.join('\n')}
${extra}
`
}
