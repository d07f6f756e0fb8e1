import type { Readable } from 'node:stream'
import type { Client, ClientChannel } from 'ssh2'
import { quote } from '../../shell/quote.js'
import { wrapScript } from '../../shell/wrap.js'
import { OutputBuffer } from '../output-buffer.js'
import type { ExecOptions, ExecResult } from '../types.js'
import { openExecChannel } from './open-exec.js'

/**
 * Before the script, the remote shell reports its process group on stderr (this line is taken out
 * of stderr again). sshd starts every session in a new session (setsid), so the group holds the
 * script and everything it starts, background jobs included: killing `-PGID` leaves nothing behind.
 * The group is read from /proc where there is one (in case a login shell forked), else `$$`.
 */
const PGID_PREAMBLE = [
  '__df_pg=$$',
  'if [ -r /proc/$$/stat ]; then read -r __df_st < /proc/$$/stat && __df_st=${__df_st##*) } && set -- $__df_st && __df_pg=${3:-$$}; set --; fi',
  `printf '@@deployfile-pgid:%s@@\\n' "$__df_pg" >&2`,
  'unset __df_pg __df_st __df_s',
].join('\n')
const PGID_MARKER = /@@deployfile-pgid:(\d+)@@\n/
/** Stop looking for the marker after this much stderr (a login shell may print before it). */
const MARKER_SEARCH_LIMIT = 64 * 1024
/** After the kill, how long the channel may take to close before we close it. */
const CLOSE_GRACE_MS = 3_000
/** How long to wait for the process group number when a command is killed right at its start. */
const PGID_WAIT_MS = 3_000

/** What the remote /bin/sh runs: the process-group report, then the script with its cwd and env. */
function remoteBody(script: string, options: Pick<ExecOptions, 'cwd' | 'env'>): string {
  return `${PGID_PREAMBLE}\n${wrapScript(script, { cwd: options.cwd, env: options.env })}`
}

/**
 * Ends every script sent on stdin: a script cut short (the connection or the client died while
 * sending it) does not end with it, and is refused instead of running its first half.
 */
const SCRIPT_TRAILER = '\n#@@deployfile-end@@'
/** Exit code of the bootstrap when the script arrived incomplete (it never ran). */
export const INCOMPLETE_SCRIPT_EXIT = 86

/**
 * The command of every session channel that runs a script, pre-opened ("spare") or not. The exec
 * request carries only this fixed text: the script follows on stdin, so no secret in it ever sits
 * in a process's argv (`/proc/<pid>/cmdline`, `ps`), which every user of the host can read. (An
 * inline `sh -c '<script>'` was the cheaper form: one network turn less for a channel opened on
 * demand. Not worth a secret.) It waits on stdin for one line `<bytes> <mode>`, then reads the script:
 * - mode 0: the script is all that follows (read to EOF with `cat`: fast, for any size);
 * - mode 1: the command's own stdin follows the script, so exactly `<bytes>` are read with
 *   `dd bs=1` (one read(2) per byte never takes more from the pipe than asked; slow for huge
 *   scripts, ~0.5 s for 300 KiB, fine for the usual few KiB).
 * `$(…; echo .)` then `${s%.}` keeps trailing newlines. The script runs with `eval` in this same
 * shell (not `sh -c "$s"`, which would bring back the 128 KiB argument limit): its process group
 * is the session's, so the PGID preamble at its head and the kill work on the whole session.
 * A channel that gets EOF before any line (a spare closed unused) exits 0.
 */
const BOOTSTRAP_BODY = [
  'IFS=" " read -r __df_n __df_m || exit 0',
  'if [ "$__df_m" = 1 ]; then __df_s=$(dd bs=1 count="$__df_n" 2>/dev/null; echo .); else __df_s=$(cat; echo .); fi',
  '__df_s=${__df_s%.}',
  `case $__df_s in *'${SCRIPT_TRAILER.slice(1)}') ;; *) echo 'deployfile: the script arrived incomplete; it did not run.' >&2; exit ${INCOMPLETE_SCRIPT_EXIT};; esac`,
  'unset __df_n __df_m',
  'eval "$__df_s"',
].join('\n')
export const BOOTSTRAP = `exec /bin/sh -c ${quote(BOOTSTRAP_BODY)}`

/**
 * What a BOOTSTRAP channel is sent before the command's own stdin: header line, then the script
 * (process-group report, env, cwd, the script) and its trailer.
 */
export function scriptPayload(script: string, options: Pick<ExecOptions, 'cwd' | 'env'> & { withStdin?: boolean } = {}): Buffer {
  return bootstrapPayload(remoteBody(script, options), options.withStdin ?? false)
}

function bootstrapPayload(body: string, withStdin: boolean): Buffer {
  const script = Buffer.from(`${body}${SCRIPT_TRAILER}`, 'utf8')
  return Buffer.concat([Buffer.from(`${script.length} ${withStdin ? 1 : 0}\n`), script])
}

/** Can this channel still take a script? (ssh2 keeps no public flag; these fields are stable in 1.x.) */
export function channelUsable(channel: ClientChannel): boolean {
  const state = channel as unknown as { incoming?: { state?: string }; outgoing?: { state?: string } }
  return state.outgoing?.state === 'open' && state.incoming?.state !== 'closed' && channel.writable
}

/**
 * Script that kills process groups: TERM, up to 2 s for them to go, then KILL.
 * `kill -TERM -PGID` is the form every sh takes: dash rejects both `kill -- -PGID` and `kill -s TERM -PGID`.
 */
export function killScript(pgids: number[]): string {
  const list = pgids.map((pgid) => String(Math.trunc(pgid))).join(' ')
  return [
    // Alive = a member that is not a zombie (an orphaned zombie waits for init to reap it, and
    // `kill -0` still finds it); without ps, `kill -0` it is.
    'alive() { a=$(ps -A -o pgid= -o stat= 2>/dev/null) || { kill -0 -$1 2>/dev/null; return; }; ' +
      `printf '%s\\n' "$a" | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit f ? 0 : 1 }'; }`,
    `for p in ${list}; do kill -TERM -$p 2>/dev/null; done`,
    'i=0',
    'while [ $i -lt 20 ]; do',
    `  left=; for p in ${list}; do alive $p && left=1; done`,
    '  [ -z "$left" ] && exit 0',
    '  sleep 0.1 2>/dev/null || sleep 1',
    '  i=$((i+1))',
    'done',
    `for p in ${list}; do kill -KILL -$p 2>/dev/null; done`,
    'exit 0',
  ].join('\n')
}

/** A command in flight, so close() can stop it. */
export interface RunningCommand {
  /** Kills the remote process group; the command then resolves with `aborted`. */
  abort(): void
  /** The connection is gone: the command fails now with `error` (its channel may never close). */
  lost(error: Error): void
  readonly done: Promise<unknown>
}

export interface RunHooks {
  /** Kills a remote process group (through another exec on the same connection). */
  killGroup(pgid: number): Promise<void>
  /** Is the connection still up? (A channel closed without exit status on a dead connection is an error.) */
  connectionAlive(): boolean
  /** Error to throw when the connection died under the command. */
  connectionLost(): Error
  register(command: RunningCommand): void
  unregister(command: RunningCommand): void
  /** A channel open was refused for lack of sessions and is tried again, or a spare channel died
   *  before the script started and it runs again on a new channel: one more round trip. */
  retried(): void
  /** A spare channel could not run the bootstrap (no `dd`, say): stop using spares on this connection. */
  sparesBroken?(): void
}

/** Opens the exec channel (see openExecChannel: refusals for lack of sessions are tried again). */
function openExec(client: Client, command: string, hooks: RunHooks, done: (error: Error | undefined, channel?: ClientChannel) => void): void {
  openExecChannel(client, command, hooks).then(
    (channel) => done(undefined, channel),
    (error: unknown) => done(error as Error),
  )
}

/**
 * Runs a script on a channel of `client`: streams output, feeds stdin, and on timeout or abort
 * kills the remote process group before resolving.
 *
 * The script always goes on the channel's stdin, after BOOTSTRAP (never in the exec request: see
 * BOOTSTRAP). With `spare` (a pre-opened channel running BOOTSTRAP, or undefined once it died),
 * that is one network turn. Without (or when the spare died before it could be used), it opens its
 * own channel running BOOTSTRAP: three turns (open, exec, script). A spare that dies
 * after the script was sent but before it started (no process-group report, no output) is replaced
 * the same way, when the stdin can be sent again (string or Buffer).
 */
export function runCommand(
  client: Client,
  script: string,
  options: ExecOptions,
  hooks: RunHooks,
  spare?: Promise<ClientChannel | undefined>,
): Promise<ExecResult> {
  const body = remoteBody(script, options)
  const withStdin = options.stdin !== undefined
  const stdinResendable = options.stdin === undefined || typeof options.stdin === 'string' || Buffer.isBuffer(options.stdin)
  const collect = options.collect !== false
  // What the result keeps: the last maxStdout/maxStderr bytes (memory stays bounded on huge output).
  const stdoutKept = new OutputBuffer(collect ? (options.maxStdout ?? Infinity) : 0)
  const stderrKept = new OutputBuffer(collect ? (options.maxStderr ?? Infinity) : 0)

  let channel: ClientChannel | undefined
  let timedOut = false
  let aborted = false
  let terminating = false
  let killDone: Promise<void> = Promise.resolve()
  let exitCode: number | null | undefined
  let exitSignal: string | null = null
  let resolvePgid!: (pgid: number | undefined) => void
  let pgid!: Promise<number | undefined>
  const newPgid = () => {
    pgid = new Promise<number | undefined>((resolve) => (resolvePgid = resolve))
  }
  newPgid()
  let timer: NodeJS.Timeout | undefined
  let graceTimer: NodeJS.Timeout | undefined
  let forceSettle: () => void = () => undefined

  const terminate = () => {
    if (terminating) return
    terminating = true
    if (timer) clearTimeout(timer)
    if (!channel) return // killed as soon as the channel opens
    const open = channel
    const group = pgid
    killDone = (async () => {
      const found = await Promise.race([group, delay(PGID_WAIT_MS).then(() => undefined)])
      if (found !== undefined) {
        await hooks.killGroup(found).catch(() => undefined)
      } else {
        // No group number (the shell never started): ask sshd to signal the session, then hang up.
        open.signal('KILL')
      }
    })()
    void killDone.then(() => {
      // Normally the channel closes as soon as the group is gone. If not, hang up on it; sshd only
      // answers that once its child exits, so after one more grace period stop waiting for it.
      graceTimer = setTimeout(() => {
        open.close()
        graceTimer = setTimeout(() => forceSettle(), CLOSE_GRACE_MS)
        graceTimer.unref()
      }, CLOSE_GRACE_MS)
      graceTimer.unref()
    })
  }

  const onAbort = () => {
    if (terminating) return
    aborted = true
    terminate()
  }

  let finish!: () => void
  const done = new Promise<void>((resolve) => (finish = resolve))
  let loseNow: (error: Error) => void = () => undefined
  const handle: RunningCommand = { abort: onAbort, lost: (error) => loseNow(error), done }

  const result = new Promise<ExecResult>((resolve, reject) => {
    const cleanup = () => {
      if (timer) clearTimeout(timer)
      if (graceTimer) clearTimeout(graceTimer)
      options.signal?.removeEventListener('abort', onAbort)
      hooks.unregister(handle)
      finish()
    }
    if (options.signal?.aborted) {
      aborted = true
      cleanup()
      resolve(emptyResult({ aborted: true }))
      return
    }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    hooks.register(handle)
    let lostAlready = false
    loseNow = (error) => {
      if (lostAlready) return
      lostAlready = true
      cleanup()
      reject(error)
    }

    /** Runs the command on an open channel; `payload` is what BOOTSTRAP reads first. */
    const start = (opened: ClientChannel, payload: Buffer, fromSpare: boolean) => {
      channel = opened
      if (!timer && options.timeoutMs !== undefined && options.timeoutMs > 0) {
        timer = setTimeout(() => {
          if (terminating) return
          timedOut = true
          terminate()
        }, options.timeoutMs)
      }
      if (terminating) {
        terminating = false
        terminate()
      }

      let started = false
      let sawStdout = false
      const stderr = new MarkerFilter(
        (chunk) => {
          started = true
          options.onStderr?.(chunk)
          stderrKept.push(chunk)
        },
        (group) => {
          started = true
          resolvePgid(group)
        },
      )
      opened.on('data', (chunk: Buffer) => {
        sawStdout = true
        options.onStdout?.(chunk)
        stdoutKept.push(chunk)
      })
      opened.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
      let attemptCode: number | null | undefined
      let attemptSignal: string | undefined
      opened.on('exit', (code: number | null, signal?: string) => {
        attemptCode = code
        attemptSignal = signal
        exitCode = code
        exitSignal = code === null ? (signal ?? null) : null
      })

      let stderrEnded = false
      let closed = false
      let settled = false
      const settle = () => {
        if (settled || !stderrEnded || !closed) return
        settled = true
        // A spare that died before the script started (killed while idle, or the bootstrap refused
        // an incomplete script): nothing ran, so run it again on a channel of its own.
        const neverStarted = !started && !sawStdout && (attemptCode === undefined || attemptCode === null || attemptCode === INCOMPLETE_SCRIPT_EXIT)
        if (fromSpare && neverStarted && !terminating && hooks.connectionAlive()) {
          if (attemptCode === INCOMPLETE_SCRIPT_EXIT && attemptSignal === undefined) hooks.sparesBroken?.()
          if (stdinResendable) {
            channel = undefined
            exitCode = undefined
            exitSignal = null
            stdoutKept.reset()
            stderrKept.reset()
            newPgid()
            hooks.retried()
            openOwn()
            return
          }
          cleanup()
          reject(new Error('The SSH channel of the command closed before the command started, and its stdin stream cannot be sent again.'))
          return
        }
        stderr.flush()
        resolvePgid(undefined)
        void killDone.then(() => {
          cleanup()
          if (exitCode === undefined && !terminating && !hooks.connectionAlive()) {
            reject(hooks.connectionLost())
            return
          }
          resolve({
            code: exitCode ?? null,
            signal: exitSignal,
            stdout: stdoutKept.text(),
            stderr: stderrKept.text(),
            timedOut,
            aborted,
            ...(stdoutKept.dropped > 0 && collect ? { stdoutDropped: stdoutKept.dropped } : {}),
            ...(stderrKept.dropped > 0 && collect ? { stderrDropped: stderrKept.dropped } : {}),
          })
        })
      }
      opened.stderr.once('end', () => {
        stderrEnded = true
        settle()
      })
      opened.stderr.once('close', () => {
        stderrEnded = true
        settle()
      })
      forceSettle = () => {
        closed = true
        stderrEnded = true
        settle()
      }
      opened.once('close', () => {
        closed = true
        // ssh2 ends stderr right before 'close'; give its 'end' a turn if it is still queued.
        setImmediate(() => {
          stderrEnded = true
          settle()
        })
      })

      feedStdin(opened, options.stdin, payload)
    }

    const openOwn = () => {
      if (terminating && !channel) {
        // Aborted while waiting for a spare that died: nothing ran.
        cleanup()
        resolve(emptyResult({ aborted, timedOut }))
        return
      }
      openExec(client, BOOTSTRAP, hooks, (error, opened) => {
        if (error || !opened) {
          cleanup()
          reject(hooks.connectionAlive() ? (error ?? new Error('no channel')) : hooks.connectionLost())
          return
        }
        start(opened, bootstrapPayload(body, withStdin), false)
      })
    }

    try {
      if (spare) {
        spare.then(
          (opened) => {
            if (opened && terminating) opened.end() // aborted while the spare started: it runs nothing
            if (opened && !terminating && channelUsable(opened)) start(opened, bootstrapPayload(body, withStdin), true)
            else openOwn()
          },
          () => openOwn(),
        )
      } else {
        openOwn()
      }
    } catch (error) {
      cleanup()
      reject(error)
    }
  })
  return result
}

function feedStdin(channel: ClientChannel, stdin: ExecOptions['stdin'], payload: Buffer): void {
  channel.write(payload)
  if (stdin === undefined) {
    channel.end()
  } else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) {
    channel.end(stdin)
  } else {
    const source = stdin as Readable
    source.once('error', () => channel.end())
    channel.once('close', () => source.unpipe(channel))
    source.pipe(channel)
  }
}

export function emptyResult(flags: { aborted?: boolean; timedOut?: boolean }): ExecResult {
  return { code: null, signal: null, stdout: '', stderr: '', timedOut: flags.timedOut ?? false, aborted: flags.aborted ?? false }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

/** Takes the process-group line out of stderr, passing everything else through in order. */
class MarkerFilter {
  private pending: Buffer[] = []
  private pendingBytes = 0
  private found = false

  constructor(
    private readonly emit: (chunk: Buffer) => void,
    private readonly onPgid: (pgid: number) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.found) {
      this.emit(chunk)
      return
    }
    this.pending.push(chunk)
    this.pendingBytes += chunk.length
    const all = this.pending.length === 1 ? chunk : Buffer.concat(this.pending)
    const match = PGID_MARKER.exec(all.toString('latin1'))
    if (match) {
      this.found = true
      this.pending = []
      this.onPgid(Number(match[1]))
      const before = all.subarray(0, match.index)
      const after = all.subarray(match.index + match[0].length)
      if (before.length > 0) this.emit(before)
      if (after.length > 0) this.emit(after)
      return
    }
    if (this.pendingBytes > MARKER_SEARCH_LIMIT) {
      this.found = true
      this.pending = []
      this.emit(all)
      return
    }
    this.pending = [all]
  }

  flush(): void {
    if (!this.found && this.pendingBytes > 0) this.emit(Buffer.concat(this.pending))
    this.found = true
    this.pending = []
  }
}
