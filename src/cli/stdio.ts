/** How the CLI writes to stdout/stderr: in bounded batches, with the writer waiting for the reader. */

/** Lines are gathered up to this many characters, then written at once. */
const BATCH = 64 * 1024

/**
 * Makes writes to stdout and stderr blocking when they are pipes. Node writes to a pipe
 * asynchronously and keeps whatever the reader has not taken yet in memory, without limit: a
 * command printing 100 MB into `dep … --json | slow-reader` grew the process by as much. Blocking
 * writes make a slow reader slow the run down instead (as any Unix tool does), and the sources stop
 * being read meanwhile: memory stays bounded. (Files and Linux terminals are written synchronously
 * already; this is what the `set-blocking` package does for yargs.)
 */
export function blockingStdio(): void {
  for (const stream of [process.stdout, process.stderr]) {
    const handle = (stream as unknown as { _handle?: { setBlocking?: (blocking: boolean) => unknown } })._handle
    handle?.setBlocking?.(true)
  }
}

/**
 * Writes lines to a stream in batches: a line per write(2) made a million-line output a million
 * system calls. A batch goes out when it reaches BATCH characters, on the next turn of the event
 * loop, or on flush(); memory holds at most one batch.
 */
export class LineWriter {
  private parts: string[] = []
  private size = 0
  private scheduled = false

  constructor(private readonly stream: NodeJS.WritableStream) {}

  /** Queues `text` and a newline. */
  line(text: string): void {
    this.parts.push(text, '\n')
    this.size += text.length + 1
    if (this.size >= BATCH) this.flush()
    else if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => this.flush())
    }
  }

  /** Writes what is queued now. */
  flush(): void {
    this.scheduled = false
    if (this.size === 0) return
    const text = this.parts.join('')
    this.parts = []
    this.size = 0
    this.stream.write(text)
  }
}
