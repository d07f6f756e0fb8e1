import { quote } from './quote.js'

/**
 * Prefixes a script with its working directory and environment, so that every
 * transport runs it the same way (sshd refuses most `env` requests, and a login
 * shell per command would cost a round trip we do not want).
 */
export function wrapScript(script: string, options: { cwd?: string; env?: Record<string, string> } = {}): string {
  const lines: string[] = []
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`Invalid environment variable name: ${name}`)
    lines.push(`export ${name}=${quote(value)}`)
  }
  if (options.cwd) lines.push(`cd ${quote(options.cwd)} || exit 1`)
  lines.push(script)
  return lines.join('\n')
}
