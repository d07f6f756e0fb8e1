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
 * Per connection, the proxy notes the direction of every chunk as it arrives
 * (before the delay). A turn-around is counted when server→client bytes
 * arrive and client→server bytes arrived since the previous server→client
 * chunk: "the client said something, then the server answered". Bytes the
 * server sends on its own first (its SSH banner) do not count, so:
 *
 * - one SSH request the client waits for (channel open → confirmation) is one;
 * - a pipelined burst (many SFTP writes, then many answers) is one;
 * - several answers in a row to one request (exec success, output,
 *   exit-status, EOF, close) are one.
 *
 * Noise, documented because the tests tolerate it:
 * - a message the client sends on its own while the server works (the EOF of
 *   stdin after an exec was accepted, its CHANNEL_CLOSE reply, a window adjust,
 *   a keepalive) makes the server's next bytes count as another turn-around,
 *   although nobody waited for them; with a 50 ms delay this happens when the
 *   server's answer comes > 50 ms after the request (a slow command);
 * - the server's own window adjusts during a large upload do the same in the
 *   other direction (a turn per window, roughly, which is also what it costs);
 * - messages of parallel channels interleave, so concurrent commands on one
 *   connection count more than once each.
 * So the count is an upper bound of the round trips a client waited for, and
 * exact for one command at a time whose answers come back within `delayMs`.
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
}

/** Bytes queued in one direction before the sending side is paused. */
const HIGH_WATER = 8 * 1024 * 1024

/** Forwards `from` → `to`, each chunk `delayMs` after it arrived; calls `onChunk` on arrival. */
function delayedPipe(from: net.Socket, to: net.Socket, delayMs: number, onChunk: (chunk: Buffer) => void): void {
  const queue: Array<{ due: number; chunk: Buffer }> = []
  let queued = 0
  let timer: NodeJS.Timeout | undefined
  let ended = false

  const pump = () => {
    timer = undefined
    const now = performance.now()
    while (queue.length > 0 && queue[0].due <= now + 0.5) {
      const { chunk } = queue.shift()!
      queued -= chunk.length
      if (!to.destroyed) to.write(chunk)
    }
    if (queued < HIGH_WATER / 2 && from.isPaused()) from.resume()
    if (queue.length > 0) timer = setTimeout(pump, Math.max(0, queue[0].due - performance.now()))
    else if (ended && !to.destroyed) to.end()
  }

  from.on('data', (chunk: Buffer) => {
    onChunk(chunk)
    queue.push({ due: performance.now() + delayMs, chunk })
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
    }
    connections.push(stats)
    // The client spoke since the server last did.
    let clientSpoke = false
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
    delayedPipe(client, upstream, delayMs, (chunk) => {
      stats.bytesUp += chunk.length
      stats.chunksUp++
      clientSpoke = true
    })
    delayedPipe(upstream, client, delayMs, (chunk) => {
      stats.bytesDown += chunk.length
      stats.chunksDown++
      if (clientSpoke) {
        stats.turnArounds++
        stats.turnTimes.push(Math.round(performance.now() - started))
        clientSpoke = false
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
    close() {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
