import type { Readable, Writable } from 'node:stream'
import type { Host } from '../../model/host.js'
import { interactiveShellScript } from '../../shell/protocol.js'
import { IdentityStore } from './auth.js'
import { openConnection } from './connect.js'
import { defaultContext, resolveSettings } from './settings.js'

export interface InteractiveShellOptions {
  /** Directory to start in, or candidates tried in order (none existing leaves the shell in the home dir, with a warning). */
  cwd?: string | string[]
  env?: NodeJS.ProcessEnv
  homeDir?: string
  promptPassphrase?: (file: string) => Promise<string>
  /** Streams to attach (default process.stdin/stdout/stderr). A PTY is requested when stdin is a TTY. */
  stdin?: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown }
  stdout?: Writable & { isTTY?: boolean; columns?: number; rows?: number }
  stderr?: Writable
}

/** Signal numbers for the exit code of a shell killed by a signal (128 + n, as shells report it). */
const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 }

/**
 * `dep ssh`: the user's login shell on the host, attached to this terminal (raw mode, window size
 * changes forwarded), started in `cwd`. Resolves with the remote exit code.
 */
export async function openInteractiveShell(host: Host, opts: InteractiveShellOptions = {}): Promise<number> {
  const ctx = defaultContext(opts)
  const settings = await resolveSettings(host, ctx)
  const connection = await openConnection(settings, ctx, new IdentityStore(ctx, settings.passphraseEnv))
  const input = opts.stdin ?? process.stdin
  const output = opts.stdout ?? process.stdout
  const errors = opts.stderr ?? process.stderr
  const tty = input.isTTY === true && typeof input.setRawMode === 'function'

  const command = interactiveShellScript([opts.cwd ?? []].flat()).text

  try {
    return await new Promise<number>((resolve, reject) => {
      const pty = tty
        ? { term: ctx.env.TERM ?? 'xterm-256color', rows: output.rows || 24, cols: output.columns || 80 }
        : undefined
      connection.client.exec(command, pty ? { pty } : {}, (error, channel) => {
        if (error) return reject(error)
        const onResize = () => channel.setWindow(output.rows || 24, output.columns || 80, 0, 0)
        if (tty) {
          input.setRawMode!(true)
          output.on('resize', onResize)
        }
        let code: number | null = null
        let signal: string | undefined
        channel.on('exit', (exitCode: number | null, exitSignal?: string) => {
          code = exitCode
          signal = exitSignal
        })
        channel.pipe(output, { end: false })
        channel.stderr.pipe(errors, { end: false })
        input.pipe(channel)
        input.resume()
        channel.once('close', () => {
          input.unpipe(channel)
          input.pause()
          if (tty) {
            input.setRawMode!(false)
            output.removeListener('resize', onResize)
          }
          channel.unpipe(output)
          resolve(code ?? (signal ? 128 + (SIGNALS[signal] ?? 0) : 255))
        })
      })
    })
  } finally {
    await connection.end()
  }
}
