/**
 * A stranger's project: the package as npm would publish it (`npm pack`), installed into a fresh
 * directory with `npm install ../deployfile-x.y.z.tgz`, used through `npx dep` / `npx deployfile`.
 * Nothing of the repository is visible to it but the tarball.
 *
 * `npm install` fetches the dependencies from the registry (or the local npm cache: --prefer-offline
 * keeps a warm machine fast); do it once per test file, in beforeAll.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, realpathSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from './dep.js'

const execFileAsync = promisify(execFile)

/** TypeScript 5.9 (the repository's own) and 7 (the native compiler, devDependency `typescript7`). */
export const TSC = {
  '5.9': path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'),
  '7': path.join(REPO_ROOT, 'node_modules/typescript7/bin/tsc'),
} as const

export interface PackedProject {
  /** The project directory (package.json, node_modules/deployfile from the tarball). */
  dir: string
  /** The sandbox holding the tarball and the project. */
  sandbox: string
  tarball: string
}

/** Packs the repository (dist/ must be built) and installs the tarball into a new project. */
export async function packedProject(name = 'shop'): Promise<PackedProject> {
  const sandbox = realpathSync(mkdtempSync(path.join(tmpdir(), 'df-packed-')))
  // --ignore-scripts: dist/ is built already (npm test builds it); `prepare` would rebuild it under
  // the other test files running at the same time.
  await execFileAsync('npm', ['pack', '--pack-destination', sandbox, '--ignore-scripts', '--silent'], { cwd: REPO_ROOT })
  const tarball = path.join(sandbox, readdirSync(sandbox).find((f) => f.endsWith('.tgz'))!)
  const dir = path.join(sandbox, name)
  mkdirSync(dir)
  // What `npm init -y` writes: no "type" (CommonJS), as most projects a deploy tool lands in.
  writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name, version: '1.0.0', private: true }, null, 2)}\n`)
  await execFileAsync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--save-dev', tarball], { cwd: dir, timeout: 110_000 })
  return { dir, sandbox, tarball }
}

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  output: string
}

/** The environment of a plain, colourless CI shell (no GitHub annotations). */
export function userEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return { ...process.env, NO_COLOR: '1', CI: '1', GITHUB_ACTIONS: '', npm_config_update_notifier: 'false', ...extra }
}

/** Starts a command in `cwd`; `detached` makes it the leader of a new process group (as a CI job step is). */
export function start(command: string, args: string[], options: { cwd: string; env?: Record<string, string | undefined>; detached?: boolean }): { child: ChildProcess; result: Promise<RunResult> } {
  const child = spawn(command, args, { cwd: options.cwd, env: userEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  // 'close': every holder of the pipes is gone, the processes npx started included.
  const result = new Promise<RunResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, output: stdout + stderr })))
  return { child, result }
}

/** Runs `npx <args>` in the project to the end. */
export function npx(args: string[], options: { cwd: string; env?: Record<string, string | undefined> }): Promise<RunResult> {
  return start('npx', ['--no-install', ...args], options).result
}
