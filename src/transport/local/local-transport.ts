import { chmod, cp, mkdir, rename, stat, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { Readable } from 'node:stream'
import { $ } from 'zx'
import type { Host } from '../../model/host.js'
import { quote } from '../../shell/quote.js'
import { wrapScript } from '../../shell/wrap.js'
import type { ExecOptions, ExecResult, GetOptions, PutOptions, Transport } from '../types.js'

const KILL_GRACE_MS = 2000

/** Runs commands on this machine through zx and `/bin/sh`, with POSIX quoting. */
export class LocalTransport implements Transport {
  private count = 0
  private readonly running = new Set<() => void>()

  constructor(readonly host: Host) {}

  get roundTrips(): number {
    return this.count
  }

  async exec(script: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.count += 1
    const collect = options.collect ?? true
    const process$ = $({
      shell: '/bin/sh',
      // zx would prepend bash's `set -euo pipefail`; the script is POSIX sh.
      prefix: '',
      postfix: '',
      quote,
      nothrow: true,
      quiet: true,
      // Its own process group, so a timeout or Ctrl-C kills everything it started.
      detached: true,
      input: options.stdin instanceof Readable || typeof options.stdin === 'string' || Buffer.isBuffer(options.stdin) ? options.stdin : undefined,
      env: process.env,
    })`/bin/sh -c ${wrapScript(script, { cwd: options.cwd, env: options.env })}`
    let stdout = ''
    let stderr = ''
    process$.stdout.on('data', (chunk: Buffer) => {
      if (collect) stdout += chunk.toString()
      options.onStdout?.(chunk)
    })
    process$.stderr.on('data', (chunk: Buffer) => {
      if (collect) stderr += chunk.toString()
      options.onStderr?.(chunk)
    })
    let timedOut = false
    let aborted = false
    const killGroup = () => {
      const pid = process$.pid
      if (!pid) return
      const kill = (signal: NodeJS.Signals) => {
        try {
          process.kill(-pid, signal)
        } catch {
          // already gone
        }
      }
      kill('SIGTERM')
      setTimeout(() => kill('SIGKILL'), KILL_GRACE_MS).unref()
    }
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true
          killGroup()
        }, options.timeoutMs)
      : undefined
    const onAbort = () => {
      aborted = true
      killGroup()
    }
    if (options.signal?.aborted) onAbort()
    options.signal?.addEventListener('abort', onAbort, { once: true })
    this.running.add(killGroup)
    try {
      const output = await process$
      return { code: output.exitCode, signal: output.signal ?? null, stdout, stderr, timedOut, aborted }
    } finally {
      if (timer) clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      this.running.delete(killGroup)
    }
  }

  async put(source: string | Buffer, remotePath: string, options: PutOptions = {}): Promise<void> {
    this.count += 1
    await mkdir(dirname(remotePath), { recursive: true })
    if (Buffer.isBuffer(source)) {
      // Written under a temporary name with its final mode, then renamed: never briefly readable by others.
      const temporary = `${remotePath}.${process.pid}.tmp`
      await writeFile(temporary, source, { mode: options.mode ?? 0o600 })
      await chmod(temporary, options.mode ?? 0o600)
      await rename(temporary, remotePath)
      options.onProgress?.(source.length, source.length)
      return
    }
    const info = await stat(source)
    await cp(source, remotePath, { recursive: true, preserveTimestamps: true, force: true })
    if (options.mode !== undefined) await chmod(remotePath, options.mode)
    options.onProgress?.(info.size, info.size)
  }

  async get(remotePath: string, localPath: string, options: GetOptions = {}): Promise<void> {
    this.count += 1
    await mkdir(dirname(localPath), { recursive: true })
    const info = await stat(remotePath)
    await cp(remotePath, localPath, { recursive: true, preserveTimestamps: true, force: true })
    options.onProgress?.(info.size, info.size)
  }

  async close(): Promise<void> {
    for (const kill of this.running) kill()
  }
}

/** Creates a transport that runs on this machine. */
export function createLocalTransport(host: Host): Transport {
  return new LocalTransport(host)
}
