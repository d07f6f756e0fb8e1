/**
 * A TCP proxy on loopback that adds latency, and counts request/response
 * turn-arounds on the wire. This kernel has no netem, so the benchmark and the
 * round-trip tests put this between `dep` and a real sshd:
 *
 *   dep ──► 127.0.0.1:<proxy port> ──(+delayMs)──► sshd
 *   dep ◄──(+delayMs)── proxy ◄── sshd
 *
 * Every chunk is forwarded `delayMs` after it arrived, in order, in each
 * direction, so one round trip costs 2 × delayMs more (50 ms → +100 ms RTT).
 * Throughput is not limited (a chunk is not held back by the one before it).
 *
 * ## Turn-arounds
 *
 * Per connection, the proxy counts the times the server answered something
 * new from the client. Client→server chunks are numbered as they arrive; the
 * first one since the last turn-around is "pending". A turn-around is counted
 * when server→client bytes arrive after the pending chunk was delivered to the
 * server (after its delay): those bytes may be its answer. Bytes the server
 * sent before it could have seen the pending chunk are not an answer to it and
 * leave it pending. So:
 *
 * - one request the client waits for (channel open → confirmation) is one;
 * - a pipelined burst (many SFTP writes, then their answers) is one;
 * - several answers to one request (exec success, output, exit status, EOF,
 *   close) are one, and so are the server's banner and key exchange init;
 * - a message the client sends on its own (the EOF of stdin once an exec was
 *   accepted, its CHANNEL_CLOSE reply, a global request nobody waits for)
 *   makes no turn-around as long as the server's next bytes left before the
 *   message reached it.
 *
 * Noise, documented because the tests tolerate it: a command that answers in
 * parts more than 2 × delayMs apart (its exit status after a slow run, say),
 * with such a client message delivered in between, counts twice; a window
 * adjust or keepalive reply does the same; commands running at once on one
 * connection interleave and may count once each or together. So the count is
 * exact for one short command at a time, and an upper bound otherwise.
 */
import net from 'node:net'

export interface ConnectionStats {
  /** Accept order, from 0. */
  readonly index: number
  /** When the client connected (ms since the epoch). */
  readonly openedAt: number
  /** When both sides closed, or undefined while open. */
  closedAt: number | undefined
  bytesUp: number
  bytesDown: number
  chunksUp: number
  chunksDown: number
  /** Request/response turn-arounds seen so far (see the file comment). */
  turnArounds: number
  /** Arrival time (ms since the connection opened) of the first answer chunk of each turn-around. */
  readonly turnTimes: number[]
  /** With `trace`: every chunk as it arrived (ms since the connection opened, direction, bytes). */
  readonly trace: Array<{ at: number; dir: 'up' | 'down'; bytes: number }>
}

export interface DelayProxy {
  /** The port to connect to instead of the target's. */
  readonly port: number
  readonly targetPort: number
  readonly delayMs: number
  /** One entry per accepted connection, in accept order. */
  readonly connections: ConnectionStats[]
  /** Turn-arounds over every connection so far. */
  turnArounds(): number
  /** Forgets the stats of closed connections (open ones keep counting). */
  reset(): void
  /** Resolves once every connection accepted so far has closed (both sides), or after `timeoutMs`. */
  waitIdle(timeoutMs?: number): Promise<void>
  /** Stops listening and drops every connection. */
  close(): Promise<void>
}

export interface DelayProxyOptions {
  targetPort: number
  targetHost?: string
  /** Delay of every chunk in each direction, in ms (50 → +100 ms per round trip). */
  delayMs: number
  /** Port to listen on (default: a free one). */
  port?: number
  /** Record every chunk in `ConnectionStats.trace` (for debugging a count). */
  trace?: boolean
}

/** Bytes queued in one direction before the sending side is paused. */
const HIGH_WATER = 8 * 1024 * 1024

/**
 * Forwards `from` → `to`, each chunk `delayMs` after it arrived; calls `onChunk` on arrival with the
 * chunk's number (from 1), and `onDelivered` with it once it is written to `to`.
 */
function delayedPipe(
  from: net.Socket,
  to: net.Socket,
  delayMs: number,
  onChunk: (chunk: Buffer, seq: number) => void,
  onDelivered: (seq: number) => void = () => undefined,
): void {
  const queue: Array<{ due: number; chunk: Buffer; seq: number }> = []
  let seq = 0
  let queued = 0
  // biome-ignore lint/correctness/noUnusedVariables: read by the `??=` below, which schedules pump only when none is pending
  let timer: NodeJS.Timeout | undefined
  let ended = false

  const pump = () => {
    timer = undefined
    const now = performance.now()
    while (queue.length > 0 && queue[0].due <= now + 0.5) {
      const { chunk, seq: delivered } = queue.shift()!
      queued -= chunk.length
      if (!to.destroyed) to.write(chunk)
      onDelivered(delivered)
    }
    if (queued < HIGH_WATER / 2 && from.isPaused()) from.resume()
    if (queue.length > 0) timer = setTimeout(pump, Math.max(0, queue[0].due - performance.now()))
    else if (ended && !to.destroyed) to.end()
  }

  from.on('data', (chunk: Buffer) => {
    seq++
    onChunk(chunk, seq)
    queue.push({ due: performance.now() + delayMs, chunk, seq })
    queued += chunk.length
    if (queued > HIGH_WATER) from.pause()
    timer ??= setTimeout(pump, delayMs)
  })
  from.on('end', () => {
    ended = true
    timer ??= setTimeout(pump, delayMs)
  })
}

/** Starts a delay proxy on 127.0.0.1 in front of `targetHost:targetPort`. */
export async function startDelayProxy(options: DelayProxyOptions): Promise<DelayProxy> {
  const { targetPort, delayMs } = options
  const targetHost = options.targetHost ?? '127.0.0.1'
  let connections: ConnectionStats[] = []
  const sockets = new Set<net.Socket>()
  let accepted = 0

  const server = net.createServer((client) => {
    const openedAt = Date.now()
    const started = performance.now()
    const stats: ConnectionStats = {
      index: accepted++,
      openedAt,
      closedAt: undefined,
      bytesUp: 0,
      bytesDown: 0,
      chunksUp: 0,
      chunksDown: 0,
      turnArounds: 0,
      turnTimes: [],
      trace: [],
    }
    const note = (dir: 'up' | 'down', bytes: number) => {
      if (options.trace) stats.trace.push({ at: Math.round((performance.now() - started) * 10) / 10, dir, bytes })
    }
    connections.push(stats)
    // The first client chunk the server has not answered yet, and the last one delivered to it.
    let pending: number | undefined
    let delivered = 0
    const upstream = net.connect({ host: targetHost, port: targetPort })
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.setNoDelay(true)
      socket.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    }
    let closed = 0
    const onClose = () => {
      if (++closed === 2) stats.closedAt = Date.now()
    }
    client.once('close', () => {
      sockets.delete(client)
      upstream.destroy()
      onClose()
    })
    upstream.once('close', () => {
      sockets.delete(upstream)
      client.destroy()
      onClose()
    })
    delayedPipe(
      client,
      upstream,
      delayMs,
      (chunk, seq) => {
        stats.bytesUp += chunk.length
        stats.chunksUp++
        note('up', chunk.length)
        pending ??= seq
      },
      (seq) => {
        delivered = seq
      },
    )
    delayedPipe(upstream, client, delayMs, (chunk) => {
      stats.bytesDown += chunk.length
      stats.chunksDown++
      note('down', chunk.length)
      if (pending !== undefined && delivered >= pending) {
        stats.turnArounds++
        stats.turnTimes.push(Math.round(performance.now() - started))
        pending = undefined
      }
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0

  return {
    port,
    targetPort,
    delayMs,
    get connections() {
      return connections
    },
    turnArounds() {
      return connections.reduce((sum, c) => sum + c.turnArounds, 0)
    },
    reset() {
      connections = connections.filter((c) => c.closedAt === undefined)
    },
    async waitIdle(timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs
      while (connections.some((c) => c.closedAt === undefined) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    },
    close() {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
