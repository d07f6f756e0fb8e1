import type { Command } from '../shell/command.js'
import type { Host } from '../model/host.js'

/**
 * Stdin bytes up to this size travel with the command itself: on SSH, on the command channel
 * (no session of its own). The executor sends an upload's archive as bytes up to this size, and
 * streams a larger one.
 */
export const STDIN_BYTES_MAX = 16 * 1024 * 1024

/**
 * How one command runs on its channel. Where it runs (cwd, env) and its stdin are the
 * {@link Command}'s own.
 */
export interface ExecOptions {
  /** Kill the command (and its whole process group) after this many milliseconds. */
  timeoutMs?: number
  /** Aborting kills the command (and its process group). */
  signal?: AbortSignal
  /** Streams stdout as it comes. */
  onStdout?: (chunk: Buffer) => void
  /** Streams stderr as it comes. */
  onStderr?: (chunk: Buffer) => void
  /** Keep stdout/stderr in the result (default true). Turn off for huge outputs that are streamed. */
  collect?: boolean
  /**
   * Most bytes of stdout kept in the result: its last ones (default: all). What a command prints
   * beyond it is still streamed to `onStdout`; `stdoutDropped` counts it.
   */
  maxStdout?: number
  /** Most bytes of stderr kept in the result, its last ones (default: all). */
  maxStderr?: number
}

/** How a command ended. */
export interface ExecResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null
  signal: string | null
  stdout: string
  stderr: string
  timedOut: boolean
  aborted: boolean
  /** Bytes of stdout left out of `stdout` (the first ones) because of `maxStdout`. */
  stdoutDropped?: number
  /** Bytes of stderr left out of `stderr` because of `maxStderr`. */
  stderrDropped?: number
}

/** Options of an upload. */
export interface PutOptions {
  /** File mode of the uploaded file(s); default: the local file's mode (0600 for content). */
  mode?: number
  /** Reports bytes sent so far. */
  onProgress?: (bytes: number, total: number) => void
}

/** Options of a download. */
export interface GetOptions {
  onProgress?: (bytes: number, total: number) => void
}

/**
 * Where commands run: this machine (zx), a host over SSH (ssh2), or a recorder
 * (dry runs and unit tests). One transport per host, kept for the whole run.
 */
export interface Transport {
  readonly host: Host
  /**
   * Runs a command on the host under POSIX `sh`: its script rendered with its cwd and env
   * (`renderCommand`), its stdin after it. A string is a script with no settings.
   */
  exec(command: Command | string, options?: ExecOptions): Promise<ExecResult>
  /** Copies a local file or directory tree (or a Buffer of content) to `remotePath`, keeping modes. */
  put(source: string | Buffer, remotePath: string, options?: PutOptions): Promise<void>
  /** Copies a remote file or directory tree to `localPath`, keeping modes. */
  get(remotePath: string, localPath: string, options?: GetOptions): Promise<void>
  /** Requests that waited on the network so far: exec requests, shell batches, SFTP operations. */
  readonly roundTrips: number
  /** Closes the connection; pending commands are killed. */
  close(): Promise<void>
  /**
   * Starts connecting now, without waiting, so every host's handshake
   * overlaps the first steps; an error surfaces on first use.
   */
  warmUp?(): void
  /**
   * Connects now and waits for it.
   * Rejects with the host's ConnectionError (unreachable, authentication or host
   * key refused) without running anything; a transport that needs no
   * connection (local, recorder) leaves this out.
   */
  connect?(): Promise<void>
}

/** Creates the transport for a host (connections open lazily on first use). */
export type TransportFactory = (host: Host) => Transport
