import { chmod, cp, mkdir, rename, stat, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { spawn } from 'node:child_process'
import { Readable, type Writable } from 'node:stream'
import type { Host } from '../../model/host.js'
import { commandOf, type Command } from '../../shell/command.js'
import { LOCAL_BOOTSTRAP, localPayload } from '../../shell/protocol.js'
import { OutputBuffer } from '../output-buffer.js'
import type { ExecOptions, ExecResult, GetOptions, PutOptions, Transport } from '../types.js'

const KILL_GRACE_MS = 2000

/** Runs commands on this machine under `/bin/sh`, the script on a pipe (never in argv). */
export class LocalTransport implements Transport {
  private count = 0
  private readonly running = new Set<() => void>()

  constructor(readonly host: Host) {}

  get roundTrips(): number {
    return this.count
  }

  async exec(given: Command | string, options: ExecOptions = {}): Promise<ExecResult> {
    this.count += 1
    const command = commandOf(given)
    const collect = options.collect ?? true
    const stdoutKept = new OutputBuffer(collect ? (options.maxStdout ?? Infinity) : 0)
    const stderrKept = new OutputBuffer(collect ? (options.maxStderr ?? Infinity) : 0)
    // The script goes through fd 3, never in argv (`ps` and /proc/<pid>/cmdline show argv to every
    // local user); fd 0 stays the command's own stdin.
    const child = spawn('/bin/sh', ['-c', LOCAL_BOOTSTRAP.text], {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      // Its own process group, so a timeout or Ctrl-C kills everything it started.
      detached: true,
      env: process.env,
    })
    const scriptPipe = child.stdio[3] as Writable
    scriptPipe.on('error', () => undefined) // the shell died first: its exit status says so
    scriptPipe.end(localPayload(command))
    child.stdin.on('error', () => undefined) // a command that does not read its stdin (EPIPE)
    const stdin = command.stdin
    if (stdin instanceof Readable) stdin.pipe(child.stdin)
    else child.stdin.end(stdin)
    child.stdout.on('data', (chunk: Buffer) => {
      stdoutKept.push(chunk)
      options.onStdout?.(chunk)
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderrKept.push(chunk)
      options.onStderr?.(chunk)
    })
    let timedOut = false
    let aborted = false
    const killGroup = () => {
      const pid = child.pid
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
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
        child.once('error', reject)
        child.once('close', (exitCode, exitSignal) => resolve([exitCode, exitSignal]))
      })
      return {
        code,
        signal: signal ?? null,
        stdout: stdoutKept.text(),
        stderr: stderrKept.text(),
        timedOut,
        aborted,
        ...(collect && stdoutKept.dropped > 0 ? { stdoutDropped: stdoutKept.dropped } : {}),
        ...(collect && stderrKept.dropped > 0 ? { stderrDropped: stderrKept.dropped } : {}),
      }
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
