import { StringDecoder } from 'node:string_decoder'
import type { SecretRegistry } from '../shell/redact.js'

/**
 * The longest piece of one output line passed on at once (UTF-16 code units). A longer line goes
 * out in pieces, each marked `partial` but the last: memory stays bounded however long a line is
 * (a minified bundle, a binary printed by mistake), and so do JSON events and log-file lines.
 */
export const MAX_OUTPUT_PIECE = 64 * 1024

/**
 * Splits a byte stream into lines so that each line can be masked whole (a secret split across
 * two chunks would otherwise slip through). Linear in the output: each chunk is scanned once, and
 * the unfinished line is kept as a list of parts, not re-joined per chunk.
 *
 * A line longer than {@link MAX_OUTPUT_PIECE} is emitted in pieces cut where no secret straddles
 * the cut (see SecretRegistry.safeCut); of the unfinished line, twice the longest secret is kept
 * back, so a secret still arriving is masked whole when the rest comes.
 */
export class LineSplitter {
  private parts: string[] = []
  private pendingLength = 0
  private readonly decoder = new StringDecoder('utf8')

  constructor(
    /** Receives each line (without its newline), or a piece of one with `partial` true. */
    private readonly emit: (text: string, partial: boolean) => void,
    /** The secrets to keep whole when a long line is cut into pieces. */
    private readonly secrets?: SecretRegistry,
    private readonly maxPiece: number = MAX_OUTPUT_PIECE,
  ) {}

  push(chunk: Buffer | string): void {
    // A StringDecoder keeps a multi-byte character split across chunks whole.
    const text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk)
    let start = 0
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
      const end = text.slice(start, newline)
      if (this.pendingLength === 0) {
        this.emitLine(end)
      } else {
        this.parts.push(end)
        const line = this.parts.join('')
        this.parts = []
        this.pendingLength = 0
        this.emitLine(line)
      }
      start = newline + 1
    }
    if (start < text.length) {
      const rest = start === 0 ? text : text.slice(start)
      this.parts.push(rest)
      this.pendingLength += rest.length
      if (this.pendingLength >= this.maxPiece + this.keepBack()) this.spill()
    }
  }

  /** Emits what is left (a last line without a newline). */
  flush(): void {
    const tail = this.decoder.end()
    if (tail) this.push(tail)
    if (this.pendingLength > 0) {
      const line = this.parts.join('')
      this.parts = []
      this.pendingLength = 0
      this.emitLine(line)
    }
  }

  /** Characters of an unfinished line held back: a secret may be arriving, and is masked whole. */
  private keepBack(): number {
    return 2 * (this.secrets?.maxLength ?? 0)
  }

  /** Emits the unfinished line's head in pieces, keeping its tail for what comes next. */
  private spill(): void {
    let text = this.parts.join('')
    const limit = text.length - this.keepBack()
    let at = 0
    // Strictly more than a piece: something stays pending, so the line's last event is never partial.
    while (limit - at > this.maxPiece) {
      const cut = this.cut(text, at + this.maxPiece)
      this.emit(text.slice(at, cut), true)
      at = cut
    }
    text = text.slice(at)
    this.parts = [text]
    this.pendingLength = text.length
  }

  /** A whole line: at once, or in pieces when it is long. */
  private emitLine(line: string): void {
    if (line.length <= this.maxPiece) {
      this.emit(line, false)
      return
    }
    let at = 0
    while (line.length - at > this.maxPiece) {
      const cut = this.cut(line, at + this.maxPiece)
      if (cut >= line.length) break
      this.emit(line.slice(at, cut), true)
      at = cut
    }
    this.emit(line.slice(at), false)
  }

  /** A cut at or after `at` that splits no secret and no UTF-16 surrogate pair. */
  private cut(text: string, at: number): number {
    let cut = this.secrets ? this.secrets.safeCut(text, at) : at
    const code = text.charCodeAt(cut - 1)
    if (code >= 0xd800 && code <= 0xdbff && cut < text.length) cut += 1
    return cut
  }
}
