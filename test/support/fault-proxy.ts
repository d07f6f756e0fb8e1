/**
 * A TCP proxy on loopback that a test can break on purpose, put between `dep`
 * and a real sshd:
 *
 *   dep ──► 127.0.0.1:<proxy port> ──► sshd
 *
 * - `cut()`: every current connection is reset (RST on both sides, the way a
 *   rebooted host or a dropped NAT entry looks), and new connections are
 *   refused (the port stops listening) until `restore()`.
 * - `freeze()`: no byte is forwarded any more, either way, on current and new
 *   connections, and nothing is closed: no FIN, no RST. This is a hung
 *   network (a cable pulled, a VM paused); only a keepalive or a timeout can
 *   tell it from a slow command. New connections are accepted by the kernel
 *   but see no SSH banner.
 * - `restore()`: back to forwarding; bytes held while frozen are delivered in
 *   order (TCP would have retransmitted them).
 *
 * A deployfile hook runs inside the `dep` child process, so it cannot call
 * these functions: it fetches `controlUrl + '/cut'` (or `/freeze`,
 * `/restore`) instead. The HTTP answer comes only once the action took effect,
 * so `await fetch(...)` in a hook is an exact moment of the deploy.
 *
 * Bounded: bytes held while frozen pause the sending socket beyond
 * HELD_LIMIT (TCP flow control does the rest), and `close()` destroys every
 * socket and both servers.
 */
import http from 'node:http'
import net from 'node:net'

export type FaultMode = 'normal' | 'cut' | 'frozen'

export interface FaultProxy {
  /** The port to connect to instead of the target's (the same one across cut/restore). */
  readonly port: number
  readonly targetPort: number
  /** `http://127.0.0.1:PORT`: GET `/cut`, `/freeze`, `/restore` (200 `ok` once done), `/status` (JSON). */
  readonly controlUrl: string
  readonly mode: FaultMode
  /** Connections accepted so far (refused ones are not counted). */
  readonly accepted: number
  /** Client connections open now. */
  readonly open: number
  /** Resets every connection and refuses new ones until `restore()`. */
  cut(): Promise<void>
  /** Stops forwarding bytes both ways, on current and new connections, without closing anything. */
  freeze(): Promise<void>
  /** Forwards again (and listens again after a cut). */
  restore(): Promise<void>
  /** Stops both servers and destroys every connection. */
  close(): Promise<void>
}

export interface FaultProxyOptions {
  targetPort: number
  targetHost?: string
}

/** Bytes held per direction while frozen before the sending socket is paused. */
const HELD_LIMIT = 1024 * 1024
/** How long `cut()` waits for the reset sockets to report closed. */
const CLOSE_WAIT_MS = 2_000
/** Tries to listen again on the same port after a cut (another process may hold it for a moment). */
const RELISTEN_TRIES = 20

/** One proxied connection: the client side, the sshd side, and what is held in each direction. */
interface Pair {
  client: net.Socket
  upstream: net.Socket | undefined
  held: { up: Buffer[]; down: Buffer[]; upBytes: number; downBytes: number }
  /** A side sent its FIN while frozen: passed on after the held bytes at restore(). */
  ended: { up: boolean; down: boolean }
  closed: Promise<void>
}

/** Starts a fault proxy on 127.0.0.1 in front of `targetHost:targetPort`, with its HTTP control server. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const targetHost = options.targetHost ?? '127.0.0.1'
  const pairs = new Set<Pair>()
  let mode: FaultMode = 'normal'
  let accepted = 0
  let closing = false

  const forward = (pair: Pair, dir: 'up' | 'down', chunk: Buffer) => {
    const from = dir === 'up' ? pair.client : pair.upstream!
    const to = dir === 'up' ? pair.upstream : pair.client
    if (mode === 'frozen' || !to || to.connecting) {
      pair.held[dir].push(chunk)
      const bytes = (pair.held[`${dir}Bytes`] += chunk.length)
      if (bytes > HELD_LIMIT) from.pause()
      return
    }
    if (!to.destroyed && !to.write(chunk)) {
      from.pause()
      to.once('drain', () => {
        if (mode !== 'frozen') from.resume()
      })
    }
  }

  /** Delivers what was held (in order) and lets both sides read again. */
  const release = (pair: Pair) => {
    const { client, upstream } = pair
    if (!upstream || upstream.connecting) return
    for (const dir of ['up', 'down'] as const) {
      const to = dir === 'up' ? upstream : client
      const chunks = pair.held[dir].splice(0)
      pair.held[`${dir}Bytes`] = 0
      for (const chunk of chunks) if (!to.destroyed) to.write(chunk)
      if (pair.ended[dir] && !to.destroyed) to.end()
    }
    client.resume()
    upstream.resume()
  }

  const connectUpstream = (pair: Pair) => {
    const upstream = net.connect({ host: targetHost, port: options.targetPort })
    pair.upstream = upstream
    upstream.setNoDelay(true)
    upstream.on('error', () => pair.client.destroy())
    upstream.once('close', () => {
      if (mode !== 'frozen' && !pair.client.destroyed) pair.client.end()
    })
    upstream.on('data', (chunk: Buffer) => forward(pair, 'down', chunk))
    upstream.on('end', () => {
      if (mode !== 'frozen') pair.client.end()
      else pair.ended.down = true
    })
    upstream.once('connect', () => {
      if (mode === 'frozen') upstream.pause()
      else release(pair)
    })
  }

  const onConnection = (client: net.Socket) => {
    if (closing) {
      client.destroy()
      return
    }
    accepted++
    client.setNoDelay(true)
    let closedResolve!: () => void
    const pair: Pair = {
      client,
      upstream: undefined,
      held: { up: [], down: [], upBytes: 0, downBytes: 0 },
      ended: { up: false, down: false },
      closed: new Promise((resolve) => (closedResolve = resolve)),
    }
    pairs.add(pair)
    client.on('error', () => pair.upstream?.destroy())
    client.once('close', () => {
      pairs.delete(pair)
      pair.upstream?.destroy()
      closedResolve()
    })
    client.on('data', (chunk: Buffer) => forward(pair, 'up', chunk))
    client.on('end', () => {
      if (mode !== 'frozen' && pair.upstream && !pair.upstream.connecting) pair.upstream.end()
      else pair.ended.up = true
    })
    // A connection made while frozen reaches nothing until restore(): no banner, no RST.
    if (mode === 'frozen') client.pause()
    connectUpstream(pair)
  }

  let server = net.createServer({ pauseOnConnect: false }, onConnection)
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        server.removeListener('error', reject)
        resolve()
      })
    })
  await listen(0)
  const port = (server.address() as net.AddressInfo).port

  const cut = async () => {
    mode = 'cut'
    // Stop listening first, so no connection slips in between the resets.
    const old = server
    old.close()
    const closed = [...pairs].map((pair) => pair.closed)
    for (const pair of pairs) {
      pair.client.resetAndDestroy()
      if (pair.upstream && !pair.upstream.destroyed) pair.upstream.resetAndDestroy()
    }
    await Promise.race([Promise.all(closed), delay(CLOSE_WAIT_MS)])
  }

  const freeze = async () => {
    if (mode === 'cut') throw new Error('freeze() after cut(): restore() first')
    mode = 'frozen'
    for (const pair of pairs) {
      pair.client.pause()
      pair.upstream?.pause()
    }
  }

  const restore = async () => {
    if (closing) return
    const wasCut = mode === 'cut'
    mode = 'normal'
    if (wasCut) {
      for (let attempt = 1; ; attempt++) {
        server = net.createServer(onConnection)
        try {
          await listen(port)
          break
        } catch (error) {
          if (attempt >= RELISTEN_TRIES) throw error
          await delay(50 * attempt)
        }
      }
    }
    for (const pair of pairs) release(pair)
  }

  const control = http.createServer((request, response) => {
    const action = (request.url ?? '').replace(/\?.*$/, '')
    const reply = (status: number, body: string) => {
      response.writeHead(status, { 'content-type': 'text/plain', connection: 'close' })
      response.end(body)
    }
    const run = (fn: () => Promise<void>) =>
      fn().then(
        () => reply(200, 'ok'),
        (error: unknown) => reply(500, String(error)),
      )
    switch (action) {
      case '/cut':
        return void run(cut)
      case '/freeze':
        return void run(freeze)
      case '/restore':
        return void run(restore)
      case '/status':
        return reply(200, JSON.stringify({ mode, accepted, open: pairs.size }))
      default:
        return reply(404, `unknown action ${action}: use /cut, /freeze, /restore or /status`)
    }
  })
  await new Promise<void>((resolve, reject) => {
    control.once('error', reject)
    control.listen(0, '127.0.0.1', () => resolve())
  })
  const controlUrl = `http://127.0.0.1:${(control.address() as net.AddressInfo).port}`

  return {
    port,
    targetPort: options.targetPort,
    controlUrl,
    get mode() {
      return mode
    },
    get accepted() {
      return accepted
    },
    get open() {
      return pairs.size
    },
    cut,
    freeze,
    restore,
    async close() {
      closing = true
      for (const pair of pairs) {
        pair.client.destroy()
        pair.upstream?.destroy()
      }
      control.closeAllConnections()
      await Promise.all([
        new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())),
        new Promise<void>((resolve) => control.close(() => resolve())),
      ])
    },
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
