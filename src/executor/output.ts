/**
 * Splits a byte stream into lines so that each line can be masked whole (a
 * secret split across two chunks would otherwise slip through).
 */
export class LineSplitter {
  private pending = ''
  constructor(private readonly emit: (line: string) => void) {}

  push(chunk: Buffer | string): void {
    const text = this.pending + chunk.toString()
    const lines = text.split('\n')
    this.pending = lines.pop() ?? ''
    for (const line of lines) this.emit(line)
  }

  flush(): void {
    if (this.pending !== '') this.emit(this.pending)
    this.pending = ''
  }
}
