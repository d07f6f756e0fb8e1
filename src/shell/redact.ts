/** The mask that replaces every secret value in output. */
export const MASK = '***'

/** Shorter values would mask ordinary text everywhere (they are still never logged by us). */
const MIN_LENGTH = 3
/** All-digit values are masked from this length: 3-digit numbers (HTTP codes, counts) are everywhere. */
const MIN_DIGITS_LENGTH = 4
/** Lines of a multi-line secret (a key file) are masked one by one from this length. */
const MIN_LINE_LENGTH = 8

/**
 * The ways a secret appears once rendered, besides itself: what a command line, a .env file, a
 * JSON document or a URL makes of it. Masking only the raw value let `tok'en` through as the
 * `'tok'\''en'` that `run()` actually prints.
 */
export function renderedForms(value: string): string[] {
  const forms = [
    // POSIX single quotes (quote()): the inside of '…' with each ' as '\''.
    value.replace(/'/g, `'\\''`),
    // .env double quotes (the Laravel recipe's renderDotenv): \\ \" \n \$.
    value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\$/g, '\\$'),
    // Shell double quotes: \\ \" \$ \`.
    value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$').replace(/`/g, '\\`'),
    // Inside a JSON string (--json events, JSON a command prints).
    JSON.stringify(value).slice(1, -1),
    // URL-encoded: a component (user:password@, ?token=), a whole URL, and a form body.
    encodeURIComponent(value),
    encodeURIComponent(value).replace(/%20/g, '+'),
    safeEncodeURI(value),
  ]
  return [...new Set(forms)].filter((form) => form !== value)
}

function safeEncodeURI(value: string): string {
  try {
    return encodeURI(value)
  } catch {
    return value // a lone surrogate: no URL form
  }
}

/** Is `value` long enough to be masked without masking ordinary text? */
function maskable(value: string): boolean {
  return value.length >= (/^\d+$/.test(value) ? MIN_DIGITS_LENGTH : MIN_LENGTH)
}

/** A compiled matcher over a set of literal strings. */
class Matcher {
  readonly regex: RegExp | undefined
  readonly sticky: RegExp | undefined
  readonly maxLength: number

  constructor(values: Iterable<string>) {
    // Longest first: at one position the longest secret wins, so one containing another is masked whole.
    const sorted = [...new Set(values)].filter((value) => value.length > 0).sort((a, b) => b.length - a.length)
    this.maxLength = sorted[0]?.length ?? 0
    const source = sorted.map((value) => value.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')
    this.regex = sorted.length ? new RegExp(source, 'g') : undefined
    this.sticky = sorted.length ? new RegExp(source, 'y') : undefined
  }

  /**
   * Every stretch of `text` covered by some secret, merged: overlapping occurrences (a secret
   * starting inside another's occurrence) are covered whole, which one left-to-right pass of the
   * regex would not do. Linear in the text for a fixed set of secrets.
   */
  covered(text: string): Array<[number, number]> {
    const regex = this.regex
    if (!regex) return []
    const spans: Array<[number, number]> = []
    regex.lastIndex = 0
    for (let match = regex.exec(text); match; match = regex.exec(text)) {
      const start = match.index
      const end = start + match[0].length
      const last = spans[spans.length - 1]
      if (last && start <= last[1]) last[1] = Math.max(last[1], end)
      else spans.push([start, end])
      // Look again from the next character, not the end: another secret may start inside this one.
      regex.lastIndex = start + 1
    }
    return spans
  }

  redact(text: string): string {
    const spans = this.covered(text)
    if (spans.length === 0) return text
    let out = ''
    let at = 0
    for (const [start, end] of spans) {
      out += text.slice(at, start) + MASK
      at = end
    }
    return out + text.slice(at)
  }

  /**
   * Where `text` may be cut at or after `at` so that both sides mask as the whole would: the first
   * position from `at` that no occurrence of a secret straddles. (Output too long to hold in one
   * piece is passed on in pieces; a secret cut in two would be shown.)
   */
  safeCut(text: string, at: number): number {
    const sticky = this.sticky
    if (!sticky || at <= 0) return at
    let cut = at
    // Only an occurrence starting less than maxLength before the cut can reach over it.
    for (let start = Math.max(0, at - this.maxLength + 1); start < cut; start++) {
      sticky.lastIndex = start
      const match = sticky.exec(text)
      if (match && start + match[0].length > cut) cut = start + match[0].length
    }
    return Math.min(cut, text.length)
  }
}

/**
 * Replaces every occurrence of each secret in `text` with `***`. Longer secrets
 * go first so a secret that contains another is masked whole.
 */
export function redact(text: string, secrets: Iterable<string>): string {
  return new Matcher(secrets).redact(text)
}

/**
 * Holds the secrets known so far in a run; every output channel masks through it. Each secret is
 * kept with its rendered forms (quoted, .env-escaped, JSON-escaped, URL-encoded): see
 * {@link renderedForms}.
 */
export class SecretRegistry {
  private readonly values = new Set<string>()
  /** Every string masked: the values, their forms, the lines of multi-line ones. */
  private readonly patterns = new Set<string>()
  private matcher: Matcher | undefined

  /**
   * Registers secrets. Strings of 3+ characters (all-digit ones: 4+) and numbers of 4+ digits are
   * masked from now on, in every rendered form; other values are ignored.
   */
  add(...values: Array<string | number | undefined | null>): void {
    for (const given of values) {
      const value = typeof given === 'number' && Number.isFinite(given) ? String(given) : given
      if (typeof value !== 'string') continue
      if (maskable(value)) {
        this.values.add(value)
        this.addPattern(value)
        for (const form of renderedForms(value)) this.addPattern(form)
      }
      // Output is masked line by line: every line of a multi-line secret (a key file) is a secret too.
      if (value.includes('\n')) {
        for (const line of value.split('\n')) if (line.trim().length >= MIN_LINE_LENGTH) this.addPattern(line.trim())
      }
    }
  }

  private addPattern(pattern: string): void {
    if (!maskable(pattern) || this.patterns.has(pattern)) return
    this.patterns.add(pattern)
    this.matcher = undefined
  }

  /** True when `value` was registered as a secret. */
  has(value: string): boolean {
    return this.values.has(value)
  }

  /** `text` with every secret, in every form, replaced by `***`. */
  redact(text: string): string {
    return this.patterns.size === 0 ? text : this.compiled().redact(text)
  }

  /**
   * The first position at or after `at` where `text` may be cut into two pieces that are masked
   * separately without showing any part of a secret. Used to pass on very long output lines in
   * bounded pieces.
   */
  safeCut(text: string, at: number): number {
    return this.patterns.size === 0 ? at : this.compiled().safeCut(text, at)
  }

  /** The longest string masked (a piece of output must keep this much back to mask it whole). */
  get maxLength(): number {
    return this.patterns.size === 0 ? 0 : this.compiled().maxLength
  }

  /** The registered secret values (without their rendered forms). */
  list(): string[] {
    return [...this.values]
  }

  private compiled(): Matcher {
    this.matcher ??= new Matcher(this.patterns)
    return this.matcher
  }
}
