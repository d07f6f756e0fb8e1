/** The mask that replaces every secret value in output. */
export const MASK = '***'

/**
 * Replaces every occurrence of each secret in `text` with `***`. Longer secrets
 * go first so a secret that contains another is masked whole.
 */
export function redact(text: string, secrets: Iterable<string>): string {
  const values = [...new Set(secrets)].filter((s) => s.length > 0).sort((a, b) => b.length - a.length)
  let out = text
  for (const value of values) out = out.split(value).join(MASK)
  return out
}

/** Holds the secrets known so far in a run; every output channel masks through it. */
export class SecretRegistry {
  private readonly values = new Set<string>()

  add(...values: Array<string | undefined | null>): void {
    for (const value of values) {
      if (typeof value !== 'string') continue
      // Very short values would mask ordinary text everywhere; they are still never logged by us.
      if (value.length >= 3) this.values.add(value)
      // Output is masked line by line: every line of a multi-line secret (a key file) is a secret too.
      if (value.includes('\n')) for (const line of value.split('\n')) if (line.trim().length >= 8) this.values.add(line.trim())
    }
  }

  has(value: string): boolean {
    return this.values.has(value)
  }

  redact(text: string): string {
    return this.values.size === 0 ? text : redact(text, this.values)
  }

  list(): string[] {
    return [...this.values]
  }
}
