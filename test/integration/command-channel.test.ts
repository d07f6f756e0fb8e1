/**
 * The command channel (one long-lived session per connection that runs commands one after
 * another, each ended by an in-band marker) against real OpenSSH daemons on loopback. The daemons
 * run on this machine, so the host side is checked directly with ps and /proc.
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { appendFile, readlink } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConnectionError } from '../../src/model/errors.js'
import { Host, type HostOptions } from '../../src/model/host.js'
import { Command } from '../../src/shell/command.js'
import { createSshTransport, type SshTransport } from '../../src/transport/ssh/index.js'
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js'
import { startSshServers, type SshServers } from '../support/sshd.js'

let ssh: SshServers
const transports: SshTransport[] = []
const proxies: FaultProxy[] = []

beforeAll(async () => {
  ssh = await startSshServers(1, { extraConfig: ['Match all', 'LogLevel VERBOSE'] })
})

afterAll(async () => {
  await Promise.all(transports.map((transport) => transport.close()))
  await Promise.all(proxies.map((proxy) => proxy.close()))
  await ssh?.stopAll()
})

function transportTo(extra: HostOptions = {}): SshTransport {
  const transport = createSshTransport(new Host('loop-host', { ...ssh.hostOptions(0), ...extra }), { homeDir: ssh.homeDir, env: {} })
  transports.push(transport)
  return transport
}

/** Sessions the daemon started so far ("Starting session" lines at LogLevel VERBOSE). */
function sessions(): number {
  return ssh.servers[0].log.match(/^Starting session: /gm)?.length ?? 0
}

function processes(): string[] {
  return execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim())
}

/** Polls `check` until it holds; the deadline is generous (a loaded CI machine), a passing check ends it early. */
async function waitUntil(check: () => boolean, ms = 15_000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (check()) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return check()
}

/** The pid of the loop shell: `$$` of a command without a timeout (it runs in a subshell of the loop). */
async function loopPid(t: SshTransport): Promise<number> {
  return Number((await t.exec('echo $$')).stdout.trim())
}

describe('the command channel', () => {
  it('runs sequential commands on one session, under /bin/sh (dash here), without spares', async () => {
    const before = sessions()
    const t = transportTo()
    const loop = await loopPid(t)
    for (let i = 0; i < 20; i++) expect((await t.exec(`echo ${i}`)).stdout).toBe(`${i}\n`)
    expect(await loopPid(t)).toBe(loop)
    expect(t.roundTrips).toBe(22)
    expect(t.spareChannels).toBe(0)
    expect(t.hasCommandChannel).toBe(true)
    expect(await waitUntil(() => sessions() - before === 1)).toBe(true)
    // The loop and the commands run under /bin/sh, whatever it is (Debian: dash).
    const shell = await readlink('/bin/sh')
    expect(await readlink(`/proc/${loop}/exe`)).toMatch(new RegExp(`${shell.replace(/.*\//, '')}$`))
    // A command with a timeout runs in a /bin/sh of its own session, a child of the loop.
    const own = await t.exec('echo $PPID; readlink /proc/$$/exe; ps -o sid= -p $$', { timeoutMs: 30_000 })
    const [parent, exe, sid] = own.stdout.trim().split(/\s+/)
    expect(Number(parent)).toBe(loop)
    expect(exe).toMatch(new RegExp(`${shell.replace(/.*\//, '')}$`))
    expect(Number(sid)).not.toBe(loop)
    expect(await loopPid(t)).toBe(loop)
    // Idle, the loop already holds the next command's subshell, forked ahead and reading the header.
    const children = () => execFileSync('ps', ['-o', 'pid=', '--ppid', String(loop)], { encoding: 'utf8' }).trim().split(/\s+/)
    expect(await waitUntil(() => children().length === 1 && children()[0] !== '')).toBe(true)
    const ahead = children()[0]
    expect((await t.exec('echo $$; sh -c \'echo $PPID\'')).stdout).toBe(`${loop}\n${ahead}\n`)
  })

  it('keeps exit codes, stdout and stderr apart, and output that looks like a marker whole', async () => {
    const t = transportTo()
    expect(await t.exec('echo out; echo err >&2; exit 3')).toMatchObject({ code: 3, signal: null, stdout: 'out\n', stderr: 'err\n' })
    expect(await t.exec('printf no-newline; printf e >&2')).toMatchObject({ code: 0, stdout: 'no-newline', stderr: 'e' })
    const fake = '@@deployfile-done-0123456789abcdef01234567:0@@'
    const tricky = `printf '%s\\n' '${fake}' '@@deployfile-done-' '@@deployfile-done-x:1@@'; printf '@@deployfile-do'; printf '${fake}' >&2`
    const result = await t.exec(tricky)
    expect(result).toMatchObject({ code: 0, stdout: `${fake}\n@@deployfile-done-\n@@deployfile-done-x:1@@\n@@deployfile-do`, stderr: fake })
    // Marker-like text cut across many small writes (chunk boundaries) stays whole too.
    const chunks: string[] = []
    const many = await t.exec(`i=0; while [ $i -lt 200 ]; do printf '@@deployfile-'; printf 'done-%s:' $i; i=$((i+1)); done`, {
      onStdout: (chunk) => chunks.push(chunk.toString()),
    })
    const expected = Array.from({ length: 200 }, (_, i) => `@@deployfile-done-${i}:`).join('')
    expect(many.stdout).toBe(expected)
    expect(chunks.join('')).toBe(expected)
    // The script cannot see the loop's nonce or its own script variables.
    expect((await t.exec('printf "%s|" "${__df_k-unset}" "${__df_s-unset}" "${__df_n-unset}" "${__df_i-unset}" "$#"')).stdout).toBe(
      'unset|unset|unset|unset|0|',
    )
  })

  it('streams big output, keeps the last maxStdout bytes, and stays in step after it', async () => {
    const t = transportTo()
    let streamed = 0
    const big = await t.exec('head -c 5000000 /dev/zero | tr "\\0" x', { onStdout: (chunk) => (streamed += chunk.length), maxStdout: 10 })
    expect(big).toMatchObject({ code: 0, stdout: 'xxxxxxxxxx', stdoutDropped: 5_000_000 - 10 })
    expect(streamed).toBe(5_000_000)
    expect((await t.exec('echo next')).stdout).toBe('next\n')
  })

  it('gives a command exactly its stdin (string, Buffer, empty, unread), and the next command its own', async () => {
    const t = transportTo()
    const loop = await loopPid(t)
    const binary = Buffer.concat([randomBytes(50_000), Buffer.from('\n12 0\n#@@deployfile-end@@\n')])
    const hashed = await t.exec(new Command("sha256sum | cut -d' ' -f1", [], { stdin: binary }))
    expect(hashed.stdout.trim()).toBe(createHash('sha256').update(binary).digest('hex'))
    expect((await t.exec(new Command('cat', [], { stdin: 'line\nno newline at the end' }))).stdout).toBe('line\nno newline at the end')
    expect((await t.exec(new Command('wc -c', [], { stdin: '' }))).stdout.trim()).toBe('0')
    expect((await t.exec('wc -c')).stdout.trim()).toBe('0')
    // A command that reads none of its stdin: the rest is drained, the next header is read in step.
    expect((await t.exec(new Command('echo ignored', [], { stdin: Buffer.alloc(60_000, 10) }))).stdout).toBe('ignored\n')
    expect((await t.exec(new Command('head -c 3', [], { stdin: '3 0\necho injected\n' }))).stdout).toBe('3 0')
    expect((await t.exec('echo in step')).stdout).toBe('in step\n')
    expect(await loopPid(t)).toBe(loop)
  })

  it('kills a timed-out command with its whole process group, and keeps serving on the same channel; abort ends the loop', async () => {
    const t = transportTo()
    const loop = await loopPid(t)
    const result = await t.exec('sleep 1241 & sleep 1241; echo never', { timeoutMs: 500 })
    expect(result).toMatchObject({ timedOut: true, aborted: false, code: null, stdout: '', stderr: '' })
    expect(await waitUntil(() => !processes().includes('sleep 1241'))).toBe(true)
    expect((await t.exec('echo alive')).stdout).toBe('alive\n')
    expect(await loopPid(t)).toBe(loop)

    const controller = new AbortController()
    const running = t.exec('sleep 1242 & sleep 1242', { signal: controller.signal })
    expect(await waitUntil(() => processes().filter((p) => p === 'sleep 1242').length === 2)).toBe(true)
    controller.abort()
    expect(await running).toMatchObject({ aborted: true, timedOut: false, code: null })
    expect(await waitUntil(() => !processes().includes('sleep 1242'))).toBe(true)
    // Without a timeout it ran in a subshell of the loop: killing its group ended the loop too,
    // and the next command gets a fresh one.
    expect((await t.exec('echo after abort')).stdout).toBe('after abort\n')
    expect(await loopPid(t)).not.toBe(loop)
  })

  it('kills a timed-out command that was given stdin, then serves the next one on a fresh channel', async () => {
    const t = transportTo()
    const loop = await loopPid(t)
    const result = await t.exec(new Command('sleep 1243 & sleep 1243', [], { stdin: Buffer.alloc(10, 65) }), { timeoutMs: 300 })
    expect(result).toMatchObject({ timedOut: true, code: null })
    expect(await waitUntil(() => !processes().includes('sleep 1243'))).toBe(true)
    expect((await t.exec('echo fresh')).stdout).toBe('fresh\n')
    expect(await loopPid(t)).not.toBe(loop)
  })

  it('runs commands that come while it is busy on channels of their own, and keeps spares for them from then on', async () => {
    const t = transportTo()
    await t.exec('true')
    expect(t.spareChannels).toBe(0)
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => t.exec(`sleep 0.2; echo ${i}`)))
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 6 }, (_, i) => `${i}\n`))
    expect(t.roundTrips).toBe(7)
    expect(await waitUntil(() => t.spareChannels === 2)).toBe(true)
    // A script the shell's `read` cannot carry (a NUL byte) goes on a channel of its own.
    expect((await t.exec("printf 'a\\0b' | wc -c # \0")).stdout.trim()).toBe('3')
  })

  it('runs the command elsewhere when the loop was killed while idle, and opens a new one', async () => {
    const t = transportTo()
    const loop = await loopPid(t)
    process.kill(loop, 'SIGKILL')
    // Used before the client has heard of it (no socket read in between), or after: it runs either way.
    expect((await t.exec(new Command('echo once', [], { stdin: 'x' }))).stdout).toBe('once\n')
    expect((await t.exec('echo twice')).stdout).toBe('twice\n')
    const next = await loopPid(t)
    expect(next).not.toBe(loop)
    expect(await loopPid(t)).toBe(next)
  })

  it('fails a command with the connection error when the connection is cut under it, and reconnects', async () => {
    const proxy = await startFaultProxy({ targetPort: ssh.servers[0].port })
    proxies.push(proxy)
    await appendFile(ssh.knownHostsFile, `[127.0.0.1]:${proxy.port} ${ssh.servers[0].hostKeyPub}\n`)
    const t = transportTo({ port: proxy.port, connectRetries: 1 })
    expect((await t.exec('echo up')).stdout).toBe('up\n')
    const started: string[] = []
    const running = t.exec('echo started; sleep 1244', { onStdout: (chunk) => started.push(chunk.toString()) }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(await waitUntil(() => started.join('').includes('started'), 10_000)).toBe(true)
    await proxy.cut()
    const error = await running
    expect(error).toBeInstanceOf(ConnectionError)
    expect((error as Error).message).toMatch(/connection to loop-host .* was lost/)
    await proxy.restore()
    expect((await t.exec('echo again')).stdout).toBe('again\n')
  })

  it('is opened ahead by warmUp() (not a round trip), and not used with a single channel slot', async () => {
    const t = transportTo()
    t.warmUp()
    expect(await waitUntil(() => t.hasCommandChannel)).toBe(true)
    expect(t.roundTrips).toBe(0)
    expect((await t.exec('echo warm')).stdout).toBe('warm\n')
    expect(t.roundTrips).toBe(1)
    expect(t.spareChannels).toBe(0)

    // One slot: a command that found the command channel busy would wait for its slot for ever.
    const single = transportTo({ maxChannels: 1 })
    const results = await Promise.all([single.exec('sleep 0.2; echo a'), single.exec('echo b')])
    expect(results.map((r) => r.stdout)).toEqual(['a\n', 'b\n'])
    expect(single.hasCommandChannel).toBe(false)
  })

  it('runs every command on a session of its own with commandChannel: false', async () => {
    const t = transportTo({ commandChannel: false })
    const shellPid = async () => Number((await t.exec('echo $$')).stdout.trim())
    const first = await shellPid()
    expect(await shellPid()).not.toBe(first)
    expect(t.hasCommandChannel).toBe(false)
  })
})
