import { sh, type Command, type ShellValue } from '../command.js'

/*
 * Markers: lines a script prints to tell the code that ran it something, apart from its ordinary
 * output. Scripts the recipes write print `@name value` on stdout (`marker()` builds the line,
 * `parseMarkers()` reads them back). The engine's own markers go to stderr with a `@@deployfile-`
 * prefix no ordinary output has, and are taken out again before anyone sees them.
 */

/** `@name` alone or `@name value` (a space or a tab after the name): one marker line. */
const MARKER_LINE = /^@([A-Za-z_][A-Za-z0-9_]*)(?:[ \t](.*))?$/

/** The marker lines of a script's output, by name. */
export class Markers {
  private readonly lines: string[]
  private readonly found: Array<{ name: string; value: string; line: number }> = []

  constructor(output: string) {
    this.lines = output.split('\n')
    this.lines.forEach((text, line) => {
      const match = MARKER_LINE.exec(text)
      if (match) this.found.push({ name: match[1], value: match[2] ?? '', line })
    })
  }

  /** True when the output has a marker `name`. */
  has(name: string): boolean {
    return this.found.some((marker) => marker.name === name)
  }

  /** The value of the first marker `name` ('' for a bare `@name`), or undefined when there is none. */
  get(name: string): string | undefined {
    return this.found.find((marker) => marker.name === name)?.value
  }

  /** The values of every marker `name`, in order. */
  all(name: string): string[] {
    return this.found.filter((marker) => marker.name === name).map((marker) => marker.value)
  }

  /** The output lines between the markers `@<name>_begin` and `@<name>_end` ('' when either is missing). */
  block(name: string): string {
    const begin = this.found.find((marker) => marker.name === `${name}_begin`)
    const end = begin && this.found.find((marker) => marker.name === `${name}_end` && marker.line > begin.line)
    return begin && end ? this.lines.slice(begin.line + 1, end.line).join('\n') : ''
  }
}

/**
 * Reads the `@name value` lines out of a script's output.
 *
 * @example parseMarkers(await run(gitExportScript(…))).get('revision')
 */
export function parseMarkers(output: string): Markers {
  return new Markers(output)
}

/**
 * A command that prints the marker `@name value` (or `@name` alone) on stdout. `value` is quoted
 * like any `sh` value; pass `raw('"$var"')` for the value of a shell variable.
 */
export function marker(name: string, value?: ShellValue): Command {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`Invalid marker name: ${name}`)
  return value === undefined ? sh`echo ${`@${name}`}` : sh`printf ${`@${name} %s\\n`} ${value}`
}

/** The engine's marker of the shell's process group, first thing on stderr: `@@deployfile-pgid:<n>@@`. */
export const PGID_MARKER = /@@deployfile-pgid:(\d+)@@\n/

/** Where the process-group marker is in `text` (stderr so far), and the group it names. */
export function findPgidMarker(text: string): { index: number; length: number; pgid: number } | undefined {
  const match = PGID_MARKER.exec(text)
  return match ? { index: match.index, length: match[0].length, pgid: Number(match[1]) } : undefined
}

/** The engine's marker naming the queued command that failed: `@@deployfile-queued-failed <index>`. */
export const QUEUED_FAILED = '@@deployfile-queued-failed'

/** The index of the queued command whose failure the marker in `stderr` reports, or -1. */
export function failedQueuedIndex(stderr: string): number {
  const match = new RegExp(`${QUEUED_FAILED} (\\d+)`).exec(stderr)
  return match ? Number(match[1]) : -1
}

/** `stderr` without the queued-failed marker line (what the user's command printed). */
export function withoutQueuedMarker(stderr: string): string {
  return stderr.replace(new RegExp(`\\n?${QUEUED_FAILED} \\d+\\n?`, 'g'), '')
}
