/**
 * Issue 10, scenario 13: a hung connection (no FIN, no RST) is found by the
 * SSH keepalive in seconds, every pending command and transfer on it fails
 * with a ConnectionError naming the host, and the next command connects again
 * (bounded) instead of hanging. A fault proxy (test/support/fault-proxy.ts)
 * sits between the transport (or `dep`) and a real sshd.
 *
 * The bounds asserted are loose on purpose (a loaded 2-core machine): the
 * keepalive gives up after ~6–8 s; the tests only require well under 30 s.
 */
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs'
import { appendFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ConnectionError } from '../../src/model/errors.js'
import { Host, type HostOptions } from '../../src/model/host.js'
import { createSshTransport, type SshTransport } from '../../src/transport/ssh/index.js'
import { CLI, startDep, waitFor, writeDeployfile } from '../support/dep.js'
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js'
import { startSshServers, type SshServers } from '../support/sshd.js'

const BOUND_MS = 30_000
const sandbox = realpathSync(mkdtempSync(path.join(tmpdir(), 'df-dead-conn-')))
let ssh: SshServers
const transports: SshTransport[] = []
const proxies: FaultProxy[] = []

beforeAll(async () => {
  ssh = await startSshServers(1)
}, 120_000)

afterEach(async () => {
  await Promise.all(transports.splice(0).map((t) => t.close()))
  await Promise.all(proxies.splice(0).map((p) => p.close()))
})

afterAll(async () => {
  await ssh?.stopAll()
  rmSync(sandbox, { recursive: true, force: true })
})

/** A fault proxy in front of the daemon, trusted under the daemon's host key. */
async function proxy(): Promise<FaultProxy> {
  const p = await startFaultProxy({ targetPort: ssh.servers[0].port })
  proxies.push(p)
  await appendFile(ssh.knownHostsFile, `[127.0.0.1]:${p.port} ${ssh.servers[0].hostKeyPub}\n`)
  return p
}

function transportThrough(p: FaultProxy, extra: HostOptions = {}): SshTransport {
  const t = createSshTransport(new Host('frozen-host', { ...ssh.hostOptions(0), port: p.port, connectTimeout: 3000, ...extra }), { homeDir: ssh.homeDir, env: {} })
  transports.push(t)
  return t
}

/** Settles `promise` or fails the test after BOUND_MS: a hang must not eat the test timeout. */
async function settledWithin<T>(promise: Promise<T>, what: string): Promise<{ value?: T; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still pending after ${BOUND_MS} ms`)), BOUND_MS)
  })
  try {
    return await Promise.race([promise.then((value) => ({ value }), (error: unknown) => ({ error })), bound])
  } finally {
    clearTimeout(timer)
  }
}

describe('a frozen connection', () => {
  it('fails a pending exec with a ConnectionError naming the host (keepalive), and the next exec reconnects', async () => {
    const p = await proxy()
    const t = transportThrough(p, { connectRetries: 2 })
    expect((await t.exec('echo up')).stdout).toBe('up\n')
    const started: string[] = []
    const pending = t.exec('echo started; sleep 60', { onStdout: (chunk) => started.push(chunk.toString()) })
    await waitFor(() => started.join('').includes('started'), 10_000, 'the sleep to start')
    await p.freeze()
    const { error } = await settledWithin(pending, 'the exec on the frozen connection')
    expect(error).toBeInstanceOf(ConnectionError)
    expect((error as Error).message).toContain(`frozen-host (127.0.0.1 port ${p.port})`)
    expect((error as Error).message).toMatch(/no answer to 3 keepalives/)

    // Still frozen: the next exec tries to connect again and gives up (bounded), it does not hang.
    const accepted = p.accepted
    const again = await settledWithin(t.exec('true'), 'the exec after the loss')
    expect(again.error).toBeInstanceOf(ConnectionError)
    expect((again.error as Error).message).toContain('Cannot connect to frozen-host')
    expect(p.accepted).toBeGreaterThan(accepted)

    // Back: a new connection, and commands run again.
    await p.restore()
    expect((await settledWithin(t.exec('echo back'), 'the exec after restore')).value?.stdout).toBe('back\n')
  }, 90_000)

  it('fails every pending operation: running commands, commands waiting for a channel, and SFTP transfers', async () => {
    const p = await proxy()
    const t = transportThrough(p, { maxChannels: 2, connectRetries: 1 })
    await t.put(Buffer.from('warm'), path.join(ssh.workDir, 'warm.txt')) // the SFTP session is open
    const marks: string[] = []
    const commands = [1, 2, 3, 4].map((n) => t.exec(`echo s${n}; sleep 60`, { onStdout: (chunk) => marks.push(chunk.toString()) }))
    await waitFor(() => marks.join('').split('s').length > 2, 10_000, 'two sleeps to start') // two run, two wait for a slot
    await p.freeze()
    const upload = t.put(Buffer.alloc(1024 * 1024, 1), path.join(ssh.workDir, 'big.bin'))
    const results = await settledWithin(Promise.allSettled([...commands, upload]), 'the pending operations')
    const outcomes = results.value!
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected', 'rejected'])
    for (const outcome of outcomes) expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(ConnectionError)
  }, 90_000)

  it('a cut connection (RST) fails the pending exec at once with a ConnectionError', async () => {
    const p = await proxy()
    const t = transportThrough(p, { connectRetries: 1 })
    const started: string[] = []
    // Observed from the start: it rejects while cut() is still waiting for the sockets to close.
    const pending = settledWithin(
      t.exec('echo started; sleep 60', { onStdout: (chunk) => started.push(chunk.toString()) }),
      'the exec on the cut connection',
    )
    await waitFor(() => started.join('').includes('started'), 10_000, 'the sleep to start')
    await p.cut()
    const { error } = await pending
    expect(error).toBeInstanceOf(ConnectionError)
    expect((error as Error).message).toContain('frozen-host')
    await p.restore()
    expect((await t.exec('echo back')).stdout).toBe('back\n')
  }, 60_000)
})

describe('dep, with the network frozen under a running command', () => {
  it('fails the run with exit 3 naming the host, well within the test timeout', async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsup\` first.`)
    const p = await proxy()
    const dir = path.join(sandbox, 'frozen-run')
    const options = { ...ssh.hostOptions(0), port: p.port, connectTimeout: 3000 }
    await writeDeployfile(
      dir,
      `import { host, run, task } from 'deployfile'
host('web1', ${JSON.stringify(options)})
task('hang', async () => {
  // The network hangs one second into a long command (from inside dep, through the proxy's control URL).
  setTimeout(() => void fetch(${JSON.stringify(`${p.controlUrl}/freeze`)}), 1000)
  await run\`sleep 60\`
})
`,
    )
    const run = startDep(['hang'], { cwd: dir })
    const { value: r } = await settledWithin(run.result, 'dep hang')
    expect(r!.code, r!.output).toBe(3)
    expect(p.mode).toBe('frozen')
    expect(r!.stderr).toContain(`The connection to web1 (127.0.0.1 port ${p.port}) was lost: no answer to 3 keepalives`)
    expect(r!.stderr).toContain('(exit 3: a host could not be reached, logged in to, or trusted)')
  }, 90_000)
})
