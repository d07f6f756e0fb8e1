/** The longest status text the loop prints (`-1`…`255`) plus the closing `@@\n`, with room to spare. */
const MAX_TAIL = 16

/**
 * Finds a command channel's end marker (`<prefix><status>@@\n`, see COMMAND_LOOP) in one output
 * stream and passes everything before it through, in order. A chunk may end inside the marker, so
 * the longest tail of the data that could be the marker's start is held back until the next chunk
 * tells; output that merely looks like it (no nonce, a cut nonce) is passed on unchanged.
 */
export class EndScanner {
  private readonly prefix: Buffer
  private held: Buffer = Buffer.alloc(0)
  /** The prefix was seen: waiting for the rest of the marker line in `held`. */
  private inMarker = false
  private ended = false

  constructor(
    prefix: string,
    private emit: (chunk: Buffer) => void,
    private onEnd: (status: number) => void,
  ) {
    this.prefix = Buffer.from(prefix, 'latin1')
  }

  /** Got the whole marker: whatever comes on this stream now is no command's (until reset). */
  get done(): boolean {
    return this.ended
  }

  /** Starts scanning for the next command's marker. */
  reset(emit: (chunk: Buffer) => void, onEnd: (status: number) => void): void {
    this.emit = emit
    this.onEnd = onEnd
    this.held = Buffer.alloc(0)
    this.inMarker = false
    this.ended = false
  }

  push(chunk: Buffer): void {
    if (this.ended) return // a background process of the last command still printing: nobody's output
    const data = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk
    this.held = Buffer.alloc(0)
    if (this.inMarker) {
      this.readStatus(data)
      return
    }
    const at = data.indexOf(this.prefix)
    if (at >= 0) {
      if (at > 0) this.emit(data.subarray(0, at))
      this.inMarker = true
      this.readStatus(data.subarray(at + this.prefix.length))
      return
    }
    const keep = this.partialPrefixAtEnd(data)
    if (data.length > keep) this.emit(data.subarray(0, data.length - keep))
    if (keep > 0) this.held = Buffer.from(data.subarray(data.length - keep))
  }

  /** `rest` follows the prefix: `<status>@@\n`, maybe not all of it yet. */
  private readStatus(rest: Buffer): void {
    const end = rest.indexOf('@@\n')
    if (end < 0) {
      // Not a marker after all if it runs on too long (cannot happen with the nonce, but never buffer without bound).
      if (rest.length > MAX_TAIL) {
        this.inMarker = false
        this.emit(Buffer.concat([this.prefix, rest]))
        return
      }
      this.held = Buffer.from(rest)
      return
    }
    const status = Number(rest.subarray(0, end).toString('latin1'))
    this.ended = true
    this.inMarker = false
    this.onEnd(Number.isInteger(status) ? status : -1)
  }

  /** How many bytes at the end of `data` are the start of the prefix. */
  private partialPrefixAtEnd(data: Buffer): number {
    for (let n = Math.min(data.length, this.prefix.length - 1); n > 0; n--) {
      if (data.subarray(data.length - n).equals(this.prefix.subarray(0, n))) return n
    }
    return 0
  }
}
