/**
 * The fault proxy itself (test/support/fault-proxy.ts), in front of a plain
 * TCP echo server on loopback: cut resets and refuses, freeze holds bytes
 * without closing anything, restore brings both back, and the HTTP control
 * answers only once the action took effect.
 */
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js'

let echo: net.Server
let echoPort = 0
const proxies: FaultProxy[] = []

beforeAll(async () => {
  echo = net.createServer((socket) => {
    socket.on('error', () => undefined)
    socket.pipe(socket)
  })
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve))
  echoPort = (echo.address() as net.AddressInfo).port
})

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()))
  await new Promise((resolve) => echo.close(resolve))
})

async function proxy(): Promise<FaultProxy> {
  const p = await startFaultProxy({ targetPort: echoPort })
  proxies.push(p)
  return p
}

/** A connected client that records what it receives, how it ended, and its error code. */
async function client(port: number) {
  const socket = net.connect({ host: '127.0.0.1', port })
  const seen = { data: '', ended: false, closed: false, error: undefined as string | undefined }
  socket.on('data', (chunk: Buffer) => (seen.data += chunk.toString()))
  socket.on('end', () => (seen.ended = true))
  socket.on('close', () => (seen.closed = true))
  socket.on('error', (error: NodeJS.ErrnoException) => (seen.error = error.code))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return { socket, seen }
}

async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

function connectError(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(undefined)
    })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code))
  })
}

describe('fault proxy', () => {
  it('forwards both ways', async () => {
    const p = await proxy()
    const { socket, seen } = await client(p.port)
    socket.write('hello')
    await until(() => seen.data === 'hello', 'the echo')
    expect(p.accepted).toBe(1)
    socket.destroy()
  })

  it('cut(): current connections get a reset, new ones are refused, restore() listens again on the same port', async () => {
    const p = await proxy()
    const a = await client(p.port)
    const b = await client(p.port)
    a.socket.write('x')
    await until(() => a.seen.data === 'x', 'the echo')
    await p.cut()
    await until(() => a.seen.closed && b.seen.closed, 'both clients to close')
    expect(a.seen.error).toBe('ECONNRESET')
    expect(b.seen.error).toBe('ECONNRESET')
    expect(p.open).toBe(0)
    expect(await connectError(p.port)).toBe('ECONNREFUSED')
    await p.restore()
    const c = await client(p.port)
    c.socket.write('again')
    await until(() => c.seen.data === 'again', 'the echo after restore')
    c.socket.destroy()
  })

  it('freeze(): no byte moves on current or new connections and nothing closes; restore() delivers what was held', async () => {
    const p = await proxy()
    const a = await client(p.port)
    await p.freeze()
    a.socket.write('held')
    const b = await client(p.port) // accepted by the kernel, but reaches nothing
    b.socket.write('new')
    await new Promise((r) => setTimeout(r, 300))
    expect(a.seen).toMatchObject({ data: '', ended: false, closed: false, error: undefined })
    expect(b.seen).toMatchObject({ data: '', ended: false, closed: false, error: undefined })
    await p.restore()
    await until(() => a.seen.data === 'held' && b.seen.data === 'new', 'the held bytes')
    a.socket.destroy()
    b.socket.destroy()
  })

  it('the HTTP control answers once the action took effect', async () => {
    const p = await proxy()
    const a = await client(p.port)
    const cut = await fetch(`${p.controlUrl}/cut`)
    expect(cut.status).toBe(200)
    expect(await cut.text()).toBe('ok')
    // The reset already happened when the answer came.
    expect(p.mode).toBe('cut')
    expect(p.open).toBe(0)
    await until(() => a.seen.closed, 'the client to see the reset')
    expect(await connectError(p.port)).toBe('ECONNREFUSED')
    expect((await fetch(`${p.controlUrl}/restore`)).status).toBe(200)
    expect(JSON.parse(await (await fetch(`${p.controlUrl}/status`)).text())).toMatchObject({ mode: 'normal' })
    expect((await fetch(`${p.controlUrl}/freeze`)).status).toBe(200)
    expect(p.mode).toBe('frozen')
    expect((await fetch(`${p.controlUrl}/nope`)).status).toBe(404)
    await p.restore()
  })

  it('close() ends every connection and both servers', async () => {
    const p = await startFaultProxy({ targetPort: echoPort })
    const a = await client(p.port)
    await p.freeze()
    await p.close()
    await until(() => a.seen.closed, 'the client to close')
    expect(await connectError(p.port)).toBe('ECONNREFUSED')
    await expect(fetch(`${p.controlUrl}/status`)).rejects.toThrow()
  })
})
