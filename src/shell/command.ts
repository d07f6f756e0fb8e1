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

/**
 * A shell command built as data: the rendered text, and the secret values that
 * were interpolated into it (so reporters can mask them).
 */
export class Command {
  static [Symbol.hasInstance](value: unknown): boolean {
    return isBranded(value, 'Command')
  }
  constructor(
    readonly text: string,
    readonly secrets: readonly string[] = [],
  ) {
    brand(this)
  }
  toString(): string {
    return this.text
  }
}

/** What output and errors show for a command, when not its text (see `shownAs`). */
const shownText = new WeakMap<Command, string>()

/**
 * A command that runs `text` but is shown (in -v output, events and errors) as `shown`: for a wrapper
 * the engine adds around the user's own command line, which is what the user wrote and wants to see.
 * Internal: not exported from the package.
 */
export function shownAs(text: string, shown: string, secrets: readonly string[] = []): Command {
  const command = new Command(text, secrets)
  shownText.set(command, shown)
  return command
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
    return value.text
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
  const lines = commands.map((c) => String(c)).filter((line) => line.trim() !== '')
  return new Command(['set -e', ...lines].join('\n'), secrets)
}
