import type { Readable } from 'node:stream'
import { brand, isBranded } from './brand.js'
import { quote } from './quote.js'

/** A shell fragment that is inserted into a command verbatim, without quoting. */
export class Raw {
  static [Symbol.hasInstance](value: unknown): boolean {
    return isBranded(value, 'Raw')
  }
  constructor(readonly text: string) {
    brand(this)
  }
  toString(): string {
    return this.text
  }
}

/** Where and how a {@link Command} runs, besides its script. */
export interface CommandSettings {
  /** Directory the script runs in (it fails with exit 1 before running when the directory is missing). */
  readonly cwd?: string
  /** Environment variables set for the script (names: letters, digits, `_`, not starting with a digit). */
  readonly env?: Readonly<Record<string, string>>
  /** Data for the script's standard input (never shown, never in any argv). */
  readonly stdin?: string | Buffer | Readable
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * A shell command built as data: its script (`text`), the secret values that were interpolated
 * into it (so reporters can mask them), and where it runs (`cwd`, `env`, `stdin`). Every transport
 * sends it the same way: see `renderCommand` (src/shell/protocol.ts).
 */
export class Command {
  static [Symbol.hasInstance](value: unknown): boolean {
    return isBranded(value, 'Command')
  }
  readonly cwd?: string
  readonly env?: Readonly<Record<string, string>>
  readonly stdin?: string | Buffer | Readable
  constructor(
    /** The script, as `/bin/sh` runs it. */
    readonly text: string,
    readonly secrets: readonly string[] = [],
    settings: CommandSettings = {},
  ) {
    for (const name of Object.keys(settings.env ?? {})) {
      if (!ENV_NAME.test(name)) throw new Error(`Invalid environment variable name: ${name}`)
    }
    if (settings.cwd !== undefined) this.cwd = settings.cwd
    if (settings.env !== undefined) this.env = settings.env
    if (settings.stdin !== undefined) this.stdin = settings.stdin
    brand(this)
  }
  /** The same command with these settings changed (those not given are kept). */
  with(settings: CommandSettings): Command {
    return withSettings(this, settings)
  }
  toString(): string {
    return this.text
  }
}

/**
 * The script the remote (or local) `/bin/sh` runs for `command`: its environment exported, then
 * `cd` into its directory (exit 1 when the directory is missing, before anything ran), then its
 * script. The one place where a command's settings become shell; every transport, the queued batch
 * and `--dry-run` use it. (stdin is not part of it: the transport sends it after the script.)
 */
export function renderCommand(command: Command): string {
  const lines: string[] = []
  for (const [name, value] of Object.entries(command.env ?? {})) lines.push(`export ${name}=${quote(value)}`)
  if (command.cwd !== undefined && command.cwd !== '') lines.push(`cd ${quote(command.cwd)} || exit 1`)
  lines.push(command.text)
  return lines.join('\n')
}

/** A command inside another: one with its own directory or environment keeps them in a subshell. */
function embedded(command: Command): string {
  return command.cwd === undefined && command.env === undefined ? command.text : `(\n${renderCommand(command)}\n)`
}

/*
 * Outside the class on purpose: a class that names itself in its body is emitted by esbuild as
 * `class _Command`, and `brand()` would record that name instead of `Command`.
 */
function withSettings(command: Command, settings: CommandSettings): Command {
  const next = new Command(command.text, command.secrets, { cwd: command.cwd, env: command.env, stdin: command.stdin, ...settings })
  const shown = shownText.get(command)
  if (shown !== undefined) shownText.set(next, shown)
  return next
}

/** What output and errors show for a command, when not its text (see `shownAs`). */
const shownText = new WeakMap<Command, string>()

/**
 * A command that runs `command` but is shown (in -v output, events and errors) as `shown`: for a
 * wrapper the engine adds around the user's own command line, which is what the user wrote and
 * wants to see. Internal: not exported from the package.
 */
export function shownAs(command: Command, shown: string): Command {
  const copy = command.with({})
  shownText.set(copy, shown)
  return copy
}

/** The text to show for a command: its own, unless `shownAs` gave another. */
export function displayOf(command: Command): string {
  return shownText.get(command) ?? command.text
}

/** Inserts `text` into an `sh` command unquoted. Only for fragments you wrote yourself. */
export function raw(text: string): Raw {
  return new Raw(text)
}

export type ShellValue = string | number | boolean | Raw | Command | readonly ShellValue[] | null | undefined

function render(value: ShellValue, secrets: string[]): string {
  if (value === null || value === undefined) return "''"
  if (value instanceof Raw) return value.text
  if (value instanceof Command) {
    secrets.push(...value.secrets)
    return embedded(value)
  }
  if (Array.isArray(value)) return value.map((item) => render(item, secrets)).join(' ')
  return quote(value as string | number | boolean)
}

/**
 * Builds a {@link Command}: every interpolated value is POSIX single-quoted,
 * arrays become several quoted words, `raw()` and nested commands go in as they are.
 *
 * @example sh`cp -R ${source} ${target}`
 */
export function sh(strings: TemplateStringsArray, ...values: ShellValue[]): Command {
  const secrets: string[] = []
  let text = strings[0]
  values.forEach((value, index) => {
    text += render(value, secrets) + strings[index + 1]
  })
  return new Command(text, secrets)
}

/** Joins commands into one script, each line run in order, stopping at the first failure. */
export function script(...commands: Array<Command | string>): Command {
  const secrets = commands.flatMap((c) => (c instanceof Command ? c.secrets : []))
  const lines = commands.map((c) => (c instanceof Command ? embedded(c) : c)).filter((line) => line.trim() !== '')
  return new Command(['set -e', ...lines].join('\n'), secrets)
}

/** A command as given to a transport: a string is a script with no settings. */
export function commandOf(command: Command | string): Command {
  return command instanceof Command ? command : new Command(command)
}
