/**
 * The output a transport keeps for its ExecResult: everything, or only the last `limit` bytes.
 * Memory stays bounded by `limit` plus one chunk however much a command prints; the bytes left out
 * are counted.
 */
export class OutputBuffer {
  private chunks: Buffer[] = []
  private bytes = 0
  /** Bytes left out at the start (0 when everything was kept). */
  dropped = 0

  constructor(private readonly limit: number = Infinity) {}

  push(chunk: Buffer): void {
    if (this.limit <= 0) {
      this.dropped += chunk.length
      return
    }
    this.chunks.push(chunk)
    this.bytes += chunk.length
    // Whole chunks that fall out of the window go at once; the window is trimmed exactly in text().
    while (this.chunks.length > 1 && this.bytes - this.chunks[0].length >= this.limit) {
      const first = this.chunks.shift()!
      this.bytes -= first.length
      this.dropped += first.length
    }
  }

  /** The kept bytes as UTF-8 text; a character cut by the window is left out whole. */
  text(): string {
    let all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks)
    if (all.length > this.limit) {
      let start = all.length - this.limit
      // Skip UTF-8 continuation bytes: the window must start on a character.
      while (start < all.length && (all[start] & 0xc0) === 0x80) start++
      this.dropped += start
      all = all.subarray(start)
      this.chunks = [all]
      this.bytes = all.length
    }
    return all.toString('utf8')
  }

  /** Forgets everything (a command that is run again). */
  reset(): void {
    this.chunks = []
    this.bytes = 0
    this.dropped = 0
  }
}
