import net from 'node:net'
import type { Duplex } from 'node:stream'
import pRetry from 'p-retry'
// ssh2 is CommonJS: Node's ESM loader only sees its default export.
import ssh2, { type Client, type ConnectConfig } from 'ssh2'

const { Client: SshClient } = ssh2
import { ConnectionError } from '../../model/errors.js'
import { PASSPHRASE_ENV, planAuth, type IdentityStore } from './auth.js'
import { prepareHostKeyCheck } from './host-key.js'
import { describeEndpoint, type Endpoint, type SshContext, type SshSettings } from './settings.js'

/** TCP keepalive: a backstop for the OS; the SSH keepalive (settings.keepaliveInterval) finds a hung peer first. */
const TCP_KEEPALIVE_DELAY = 15_000
/** Incoming bytes restart the SSH keepalive count, at most this often. */
const KEEPALIVE_RESET_MS = 250
/** Backoff between tries: 1 s, 2 s, 4 s, 8 s… */
const RETRY_MIN_TIMEOUT = 1_000
const RETRY_FACTOR = 2
const RETRY_MAX_TIMEOUT = 8_000
const END_TIMEOUT = 2_000

/** Socket-level error codes worth another try: the host may be booting, restarting sshd, or flapping. */
const RETRYABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED'])

/** One open SSH connection to a host (possibly through jump hosts). */
export interface SshConnection {
  /** The client of the host itself (the last hop). */
  readonly client: Client
  readonly alive: boolean
  /** Called once when the connection (or any hop under it) closes. */
  onClose(listener: (error: Error | undefined) => void): void
  /** Ends the connection and every hop; resolves when closed. */
  end(): Promise<void>
}

/** Why one try failed, and whether another one may help. */
class AttemptError extends Error {
  constructor(
    readonly endpoint: Endpoint,
    readonly kind: 'network' | 'auth' | 'hostkey' | 'other',
    message: string,
    readonly hint: string | undefined,
    readonly original: unknown,
  ) {
    super(message)
    this.name = 'AttemptError'
  }
  get retryable(): boolean {
    return this.kind === 'network'
  }
}

/**
 * Opens the connection: TCP (Nagle off), then SSH to the first hop, `forwardOut` to the next…
 * Connection errors are retried with backoff (p-retry); auth and host key failures are not.
 * Every failure ends in one ConnectionError naming the host, address, port, cause and tries.
 */
export async function openConnection(
  settings: SshSettings,
  ctx: SshContext,
  identities: IdentityStore,
  signal?: AbortSignal,
): Promise<SshConnection> {
  let tries = 0
  try {
    return await pRetry(
      async () => {
        tries++
        const connection = await attempt(settings, ctx, identities, signal)
        // Cancelled while the handshake finished: p-retry would drop this connection, open.
        if (signal?.aborted) {
          void connection.end()
          throw new AttemptError(settings, 'other', 'cancelled', undefined, signal.reason)
        }
        return connection
      },
      {
        retries: settings.connectTries - 1,
        minTimeout: RETRY_MIN_TIMEOUT,
        factor: RETRY_FACTOR,
        maxTimeout: RETRY_MAX_TIMEOUT,
        signal,
        shouldRetry: ({ error }) => error instanceof AttemptError && error.retryable,
      },
    )
  } catch (error) {
    const failed = toConnectionError(settings, error, tries, signal)
    failed.connecting = true
    throw failed
  }
}

function toConnectionError(settings: SshSettings, error: unknown, tries: number, signal?: AbortSignal): ConnectionError {
  const via = settings.jumps.length > 0 ? ` through ${settings.jumps.map((jump) => describeEndpoint(jump)).join(', then ')}` : ''
  const target = `${settings.alias} (${settings.hostname} port ${settings.port})${via}`
  const count = `${tries} ${tries === 1 ? 'try' : 'tries'}`
  if (signal?.aborted) return new ConnectionError(`Connecting to ${target} was cancelled (after ${count}).`, undefined, error)
  if (error instanceof AttemptError) {
    const retryNote =
      error.kind === 'network' ? `gave up after ${count}` : `${count}; not retried: ${error.kind === 'auth' ? 'authentication' : 'host key'} failures never are`
    const hint =
      error.hint ??
      (error.kind === 'network'
        ? `Check that ${settings.hostname} is up and that sshd listens on port ${settings.port} (the host's port option, or Port in ~/.ssh/config), with no firewall in the way. connectRetries and connectTimeout set how long dep keeps trying.`
        : undefined)
    return new ConnectionError(`Cannot connect to ${target}: ${error.message} (${retryNote}).`, hint, error.original)
  }
  const message = error instanceof Error ? error.message : String(error)
  return new ConnectionError(`Cannot connect to ${target}: ${message} (${count}).`, undefined, error)
}

async function attempt(settings: SshSettings, ctx: SshContext, identities: IdentityStore, signal?: AbortSignal): Promise<SshConnection> {
  const endpoints: Endpoint[] = [...settings.jumps, settings]
  const clients: Client[] = []
  let sock: Duplex | undefined
  // Closing the transport mid-handshake tears the attempt down instead of leaving its socket open.
  const cancel = () => {
    sock?.destroy()
    for (const client of clients) client.destroy()
  }
  signal?.addEventListener('abort', cancel, { once: true })
  try {
    for (let i = 0; i < endpoints.length; i++) {
      const endpoint = endpoints[i]
      sock = i === 0 ? await tcpConnect(endpoint, settings.connectTimeout) : await forwardTo(clients[i - 1], endpoints[i - 1], endpoint)
      if (signal?.aborted) throw new AttemptError(endpoint, 'other', 'cancelled', undefined, signal.reason)
      const isTarget = i === endpoints.length - 1
      clients.push(await handshake(endpoint, sock, settings, ctx, identities, isTarget, signal))
    }
    return new Chain(clients)
  } catch (error) {
    sock?.destroy()
    for (const client of clients.reverse()) client.destroy()
    throw error
  } finally {
    signal?.removeEventListener('abort', cancel)
  }
}

function networkCause(error: NodeJS.ErrnoException, endpoint: Endpoint, timeout: number): string {
  switch (error.code) {
    case 'ECONNREFUSED':
      return `connection refused (ECONNREFUSED): nothing listens on port ${endpoint.port}`
    case 'ETIMEDOUT':
      return `no answer within ${timeout} ms (ETIMEDOUT)`
    case 'ENOTFOUND':
      return `cannot resolve ${endpoint.hostname} (ENOTFOUND)`
    case 'ECONNRESET':
      return 'connection reset by the server (ECONNRESET)'
    default:
      return error.code ? `${error.message} (${error.code})` : error.message
  }
}

function hop(endpoint: Endpoint): string {
  return endpoint.role === 'jump host' ? `jump host ${describeEndpoint(endpoint)}: ` : ''
}

/** A TCP socket with Nagle off: without it each exec waits ~40 ms on a delayed ACK. */
function tcpConnect(endpoint: Endpoint, timeout: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: endpoint.hostname, port: endpoint.port })
    socket.setNoDelay(true)
    socket.setKeepAlive(true, TCP_KEEPALIVE_DELAY)
    const fail = (error: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      socket.destroy()
      const kind = error.code && RETRYABLE_CODES.has(error.code) ? 'network' : 'other'
      reject(new AttemptError(endpoint, kind, `${hop(endpoint)}${networkCause(error, endpoint, timeout)}`, undefined, error))
    }
    const timer = setTimeout(() => fail(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), timeout)
    socket.once('error', fail)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.removeListener('error', fail)
      resolve(socket)
    })
  })
}

/** A channel from `via` to the next hop, used as that hop's socket. */
function forwardTo(via: Client, viaEndpoint: Endpoint, next: Endpoint): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    via.forwardOut('127.0.0.1', 0, next.hostname, next.port, (error, stream) => {
      if (error) {
        // "Connection refused" & co. from the hop: the target may come up, so retry.
        reject(
          new AttemptError(
            next,
            'network',
            `${hop(next)}jump host ${describeEndpoint(viaEndpoint)} could not open a connection to ${next.hostname} port ${next.port} (${error.message})`,
            undefined,
            error,
          ),
        )
        return
      }
      resolve(stream)
    })
  })
}

function handshake(
  endpoint: Endpoint,
  sock: Duplex,
  settings: SshSettings,
  ctx: SshContext,
  identities: IdentityStore,
  isTarget: boolean,
  signal?: AbortSignal,
): Promise<Client> {
  return (async () => {
    const hostKey = await prepareHostKeyCheck(endpoint, ctx.homeDir)
    const loaded = await identities.load(endpoint.identityFiles)
    const agentSocket = ctx.env.SSH_AUTH_SOCK || undefined
    const auth = planAuth(endpoint, loaded, agentSocket)
    const forwardAgent = isTarget && settings.forwardAgent && agentSocket !== undefined
    const client = new SshClient()
    return await new Promise<Client>((resolve, reject) => {
      let settled = false
      const settle = (error: AttemptError | undefined) => {
        if (settled) return
        settled = true
        if (error) {
          client.destroy()
          reject(error)
        } else {
          resolve(client)
        }
      }
      client.once('ready', () => {
        // ssh2 pings every keepaliveInterval whatever comes in; OpenSSH (ServerAliveInterval) only
        // pings a connection that was silent that long. Any bytes from the server prove it alive,
        // so they restart the count: a busy run sends no extra keepalive, a hung one is found as fast.
        // (At most every KEEPALIVE_RESET_MS: a transfer brings thousands of chunks a second.)
        const resetKeepalive = (client as unknown as { _resetKA?: () => void })._resetKA
        let lastReset = 0
        if (typeof resetKeepalive === 'function') {
          sock.on('data', () => {
            const now = performance.now()
            if (now - lastReset < KEEPALIVE_RESET_MS) return
            lastReset = now
            resetKeepalive()
          })
        }
        settle(undefined)
      })
      client.on('error', (error: Error & { level?: string; code?: string }) => {
        if (settled) return
        const rejection = hostKey.rejection()
        if (rejection) return settle(new AttemptError(endpoint, 'hostkey', `${hop(endpoint)}${rejection.message}`, rejection.hint, rejection))
        if (error.level === 'client-authentication') {
          const accepts = auth.serverMethods()
          settle(
            new AttemptError(
              endpoint,
              'auth',
              `${hop(endpoint)}authentication as ${endpoint.user} failed; tried ${auth.describe()}` +
                (accepts && accepts.length > 0 ? `; the server accepts: ${accepts.join(', ')}` : ''),
              `Add your public key to ~${endpoint.user}/.ssh/authorized_keys on ${endpoint.hostname} ` +
                `(ssh-copy-id ${endpoint.port === 22 ? '' : `-p ${endpoint.port} `}${endpoint.user}@${endpoint.hostname}), ` +
                `or set identityFile (or IdentityFile in ~/.ssh/config) to the right key, and check remoteUser. ` +
                `An encrypted key needs its passphrase in $${settings.passphraseEnv ?? PASSPHRASE_ENV} (or a terminal to type it), or an ssh-agent.`,
              error,
            ),
          )
          return
        }
        if (error.level === 'client-timeout') {
          return settle(new AttemptError(endpoint, 'network', `${hop(endpoint)}no SSH handshake within ${settings.connectTimeout} ms`, undefined, error))
        }
        if (error.code && RETRYABLE_CODES.has(error.code)) {
          return settle(new AttemptError(endpoint, 'network', `${hop(endpoint)}${networkCause(error, endpoint, settings.connectTimeout)}`, undefined, error))
        }
        if (/before handshake|Connection lost/i.test(error.message)) {
          return settle(new AttemptError(endpoint, 'network', `${hop(endpoint)}the server closed the connection during the handshake`, undefined, error))
        }
        settle(new AttemptError(endpoint, 'other', `${hop(endpoint)}${error.message}`, undefined, error))
      })
      client.once('close', () => {
        settle(new AttemptError(endpoint, 'network', `${hop(endpoint)}the server closed the connection during the handshake`, undefined, undefined))
      })
      // Cancelled (the transport closed): settle now, not after readyTimeout on a socket already gone.
      const cancelled = () => settle(new AttemptError(endpoint, 'other', 'cancelled', undefined, signal?.reason))
      if (signal?.aborted) return cancelled()
      signal?.addEventListener('abort', cancelled, { once: true })
      client.once('ready', () => signal?.removeEventListener('abort', cancelled))
      const config: ConnectConfig = {
        sock: sock as ConnectConfig['sock'],
        username: endpoint.user,
        hostVerifier: hostKey.verify,
        authHandler: auth.handler,
        readyTimeout: settings.connectTimeout,
        // Every hop: a hung bastion hangs the host behind it as well.
        keepaliveInterval: settings.keepaliveInterval,
        keepaliveCountMax: settings.keepaliveCountMax,
      }
      if (hostKey.algorithms) config.algorithms = { serverHostKey: hostKey.algorithms }
      if (forwardAgent) {
        config.agent = agentSocket
        config.agentForward = true
      }
      try {
        client.connect(config)
      } catch (error) {
        settle(new AttemptError(endpoint, 'other', `${hop(endpoint)}${(error as Error).message}`, undefined, error))
      }
    })
  })()
}

/** The clients of one connection, first hop first. Exported for tests. */
export class Chain implements SshConnection {
  private closed = false
  private closeError: Error | undefined
  private readonly listeners: Array<(error: Error | undefined) => void> = []
  private readonly closedPromise: Promise<void>

  constructor(private readonly clients: Client[]) {
    let markClosed!: () => void
    this.closedPromise = new Promise((resolve) => (markClosed = resolve))
    for (const client of clients) {
      // An 'error' without a listener would crash the process; remember it for the close.
      const ended = () => {
        if (this.closed) return
        this.closed = true
        for (const other of this.clients) if (other !== client) other.destroy()
        markClosed()
        for (const listener of this.listeners.splice(0)) listener(this.closeError)
      }
      client.on('error', (error: Error & { level?: string }) => {
        this.closeError ??= error
        // A socket error (reset, EPIPE) or a keepalive timeout ends the connection. Its 'close' has
        // been seen to never come after a reset under load: end it now, or commands wait forever.
        if (error.level === 'client-socket' || error.level === 'client-timeout') {
          client.destroy()
          ended()
        }
      })
      client.once('close', ended)
    }
  }

  get client(): Client {
    return this.clients[this.clients.length - 1]
  }

  get alive(): boolean {
    return !this.closed
  }

  onClose(listener: (error: Error | undefined) => void): void {
    if (this.closed) listener(this.closeError)
    else this.listeners.push(listener)
  }

  async end(): Promise<void> {
    if (!this.closed) {
      for (const client of [...this.clients].reverse()) client.end()
      const timer = setTimeout(() => {
        for (const client of this.clients) client.destroy()
      }, END_TIMEOUT)
      await this.closedPromise
      clearTimeout(timer)
    }
  }
}
