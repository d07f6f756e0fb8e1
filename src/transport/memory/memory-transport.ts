import type { Host } from '../../model/host.js'
import { commandOf, renderCommand, type Command } from '../../shell/command.js'
import type { ExecOptions, ExecResult, PutOptions, Transport } from '../types.js'

/** One thing a recording transport was asked to do. */
export type RecordedOperation =
  | {
      kind: 'exec'
      /** The command as given. */
      command: Command
      /** What a real transport sends for it: the command rendered (`renderCommand`). */
      script: string
      options: Omit<ExecOptions, 'onStdout' | 'onStderr' | 'signal'>
    }
  | { kind: 'put'; source: string; remotePath: string; mode?: number }
  | { kind: 'get'; remotePath: string; localPath: string }

/** A scripted answer: when a script matches, the transport answers with this. */
export interface Responder {
  match: RegExp | ((script: string) => boolean)
  result: Partial<ExecResult> | ((script: string) => Partial<ExecResult>)
}

/**
 * Records every command instead of running it, and answers with exit 0 (or a
 * scripted answer). Backs `--dry-run` and the unit tests of plans and recipes.
 */
export class MemoryTransport implements Transport {
  readonly operations: RecordedOperation[] = []
  /** For tests: `connect()` rejects with this (a host that cannot be reached). */
  unreachable?: Error

  constructor(
    readonly host: Host,
    private readonly responders: Responder[] = [],
  ) {}

  get roundTrips(): number {
    return this.operations.length
  }

  /** The scripts run so far, each rendered as a real transport sends it. */
  get scripts(): string[] {
    return this.operations.flatMap((op) => (op.kind === 'exec' ? [op.script] : []))
  }

  /** Resolves at once, or rejects with `unreachable` when a test set it. */
  async connect(): Promise<void> {
    if (this.unreachable) throw this.unreachable
  }

  async exec(given: Command | string, options: ExecOptions = {}): Promise<ExecResult> {
    if (this.unreachable) throw this.unreachable
    const command = commandOf(given)
    const { onStdout, onStderr, signal, ...rest } = options
    // Nothing reads a streamed stdin here: drain it, or its producer (a tar of a big tree) waits forever.
    const stdin = command.stdin
    if (stdin && typeof stdin === 'object' && !Buffer.isBuffer(stdin)) stdin.resume()
    const script = renderCommand(command)
    this.operations.push({ kind: 'exec', command, script, options: rest })
    const responder = this.responders.find((r) => (typeof r.match === 'function' ? r.match(script) : r.match.test(script)))
    const answer = responder ? (typeof responder.result === 'function' ? responder.result(script) : responder.result) : {}
    const result: ExecResult = { code: 0, signal: null, stdout: '', stderr: '', timedOut: false, aborted: false, ...answer }
    if (result.stdout) onStdout?.(Buffer.from(result.stdout))
    if (result.stderr) onStderr?.(Buffer.from(result.stderr))
    return result
  }

  async put(source: string | Buffer, remotePath: string, options: PutOptions = {}): Promise<void> {
    this.operations.push({
      kind: 'put',
      source: Buffer.isBuffer(source) ? `(${source.length} bytes of content)` : source,
      remotePath,
      mode: options.mode,
    })
  }

  async get(remotePath: string, localPath: string): Promise<void> {
    this.operations.push({ kind: 'get', remotePath, localPath })
  }

  async close(): Promise<void> {}
}
