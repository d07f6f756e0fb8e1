import { findPgidMarker } from '../../shell/protocol.js'

/** Stop looking for the marker after this much stderr (a login shell may print before it). */
const MARKER_SEARCH_LIMIT = 64 * 1024

/**
 * Takes the process-group marker (see PGID_PREAMBLE) out of a channel's stderr, passing everything
 * else through in order.
 */
export class PgidFilter {
  private pending: Buffer[] = []
  private pendingBytes = 0
  private found = false

  constructor(
    private readonly emit: (chunk: Buffer) => void,
    private readonly onPgid: (pgid: number) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.found) {
      this.emit(chunk)
      return
    }
    this.pending.push(chunk)
    this.pendingBytes += chunk.length
    const all = this.pending.length === 1 ? chunk : Buffer.concat(this.pending)
    // latin1: one character per byte, so the marker's index is its byte offset.
    const marker = findPgidMarker(all.toString('latin1'))
    if (marker) {
      this.found = true
      this.pending = []
      this.onPgid(marker.pgid)
      const before = all.subarray(0, marker.index)
      const after = all.subarray(marker.index + marker.length)
      if (before.length > 0) this.emit(before)
      if (after.length > 0) this.emit(after)
      return
    }
    if (this.pendingBytes > MARKER_SEARCH_LIMIT) {
      this.found = true
      this.pending = []
      this.emit(all)
      return
    }
    this.pending = [all]
  }

  flush(): void {
    if (!this.found && this.pendingBytes > 0) this.emit(Buffer.concat(this.pending))
    this.found = true
    this.pending = []
  }
}
