/** Characters that never need quoting in a POSIX shell word. */
const SAFE_WORD = /^[A-Za-z0-9_/.:=@%+,-]+$/

/**
 * Quotes a value for a POSIX shell (dash, bash, busybox sh) with single quotes.
 * Single quotes are the only quoting that every POSIX shell treats literally; an
 * embedded `'` is closed, escaped and reopened. zx's `$'…'` form is bash-only and
 * must never reach a remote `/bin/sh`.
 */
export function quote(value: string | number | boolean): string {
  const text = String(value)
  // `X=1` bare would be an assignment in command position, not a word.
  if (text !== '' && SAFE_WORD.test(text) && !/^[A-Za-z_][A-Za-z0-9_]*=/.test(text)) return text
  return `'${text.replace(/'/g, `'\\''`)}'`
}
