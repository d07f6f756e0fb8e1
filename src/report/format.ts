import pc from 'picocolors'
import type { ErrorInfo } from '../model/events.js'

const HOST_COLORS = [pc.cyan, pc.magenta, pc.yellow, pc.blue, pc.green, pc.red]

/** A stable colour per host name, so interleaved output stays readable. */
export function colorHost(alias: string, color: boolean): string {
  if (!color) return alias
  let hash = 0
  for (const char of alias) hash = (hash * 31 + char.charCodeAt(0)) >>> 0
  return HOST_COLORS[hash % HOST_COLORS.length](alias)
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`
}

/** The lines that explain an error: message, host, command, exit code, last lines of stderr, hint. */
export function formatError(error: ErrorInfo, color: boolean): string[] {
  const red = color ? pc.red : (s: string) => s
  const dim = color ? pc.dim : (s: string) => s
  const lines = [red(`✖ ${error.message}`)]
  if (error.task) lines.push(`  task:    ${error.task}`)
  if (error.host) lines.push(`  host:    ${error.host}`)
  if (error.command) lines.push(`  command: ${indentRest(error.command, '           ')}`)
  if (error.exitCode !== undefined && error.exitCode !== null) lines.push(`  exit:    ${error.exitCode}`)
  if (error.stderr) lines.push(`  stderr:`, ...error.stderr.split('\n').map((l) => dim(`    ${l}`)))
  if (error.hint) lines.push(`  → ${error.hint}`)
  return lines
}

function indentRest(text: string, indent: string): string {
  const lines = text.split('\n').filter((l) => l.trim() !== 'set -e')
  return lines.join(`\n${indent}`)
}
