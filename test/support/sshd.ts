/**
 * Test harness: real OpenSSH daemons (/usr/sbin/sshd) on loopback.
 *
 * Each daemon gets a free 127.0.0.1 port, its own ed25519 host key and its own
 * sshd_config in a fresh temp dir, and runs in the foreground (`-D -e`) as a
 * child of the test process (no systemd here). A tiny `sh` wrapper holds a pipe
 * from this process: if the test process dies, even by SIGKILL, the pipe closes
 * and the wrapper kills its daemon, so no sshd outlives the tests.
 *
 * The client side is a fake home directory (`homeDir`) holding an ed25519 user
 * key, a known_hosts file with `[127.0.0.1]:PORT` lines for every daemon, and
 * an ssh config file with one `Host` block per daemon. Pass `homeDir` to
 * `createSshTransport(host, { homeDir })` so `~/.ssh/...` resolves there and
 * the real ~/.ssh of the machine is never read.
 *
 * Tests log in as a dedicated user `deployfile-test` (created idempotently with
 * useradd, unlocked with `usermod -p '*'`; needs root), or as root with
 * `{ user: 'root' }`. `workDir` is a scratch dir the login user owns.
 *
 * Several test files may use this at the same time from separate processes:
 * every path is a fresh temp dir, every port is asked from the OS, and a port
 * lost to a race is retried with another one.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, readdirSync, readFileSync } from 'node:fs'
import { appendFile, chmod, chown, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

export const SSHD_BIN = process.env.DEPLOYFILE_SSHD ?? '/usr/sbin/sshd'
const DEFAULT_USER = 'deployfile-test'
const READY_TIMEOUT_MS = 10_000
const STOP_TIMEOUT_MS = 5_000

export interface SshServer {
  /** Name of this daemon in the generated ssh config (`Host <alias>`). */
  readonly alias: string
  /** Always 127.0.0.1. */
  readonly hostname: string
  readonly port: number
  /** Host public key as in a known_hosts line: `ssh-ed25519 AAAA…`. */
  readonly hostKeyPub: string
  /** Like OpenSSH prints it: `SHA256:…` (base64, no padding). */
  readonly hostKeyFingerprint: string
  /** The line for known_hosts: `[127.0.0.1]:PORT ssh-ed25519 AAAA…`. */
  readonly knownHostsLine: string
  /** Temp dir of this daemon (config, host key, pid file). */
  readonly dir: string
  readonly configFile: string
  /** PID of the listening sshd, undefined while stopped. */
  readonly pid: number | undefined
  readonly running: boolean
  /** What sshd wrote on stderr so far (LogLevel ERROR). */
  readonly log: string
  /** Stops the daemon and the connections it serves. */
  stop(): Promise<void>
  /** (Re)starts the daemon on the same port. */
  start(): Promise<void>
}

export interface SshServers {
  servers: SshServer[]
  /** Private key path of the login user (ed25519, no passphrase). */
  userKey: string
  /** Its public key line. */
  userKeyPub: string
  /** known_hosts with a line for every daemon (`<homeDir>/.ssh/known_hosts`). */
  knownHostsFile: string
  /** ssh config with a `Host <alias>` block per daemon (HostName, Port, User, IdentityFile, UserKnownHostsFile). */
  sshConfigFile: string
  /** The remote user the daemons accept. */
  user: string
  /** Fake local home dir: pass it as `homeDir` to the transport. */
  homeDir: string
  /** Home dir of the remote user on the "server" (this machine). */
  remoteHome: string
  /** A scratch dir owned by the remote user. */
  workDir: string
  /** Host options that reach server `index` directly, without ssh config (one connection try: fail fast). */
  hostOptions(index: number): {
    hostname: string
    port: number
    remoteUser: string
    identityFile: string
    knownHostsFile: string
    useSshConfig: boolean
    connectRetries: number
  }
  /** Adds a public key line to the authorized_keys every daemon reads. */
  authorize(publicKey: string): Promise<void>
  /** Generates an ed25519 key pair (optionally encrypted) in a temp dir; returns the private key path. */
  generateKey(name: string, passphrase?: string): Promise<{ privateKey: string; publicKey: string }>
  /** Stops every daemon and removes the temp dirs. */
  stopAll(): Promise<void>
}

export interface StartSshServersOptions {
  /** Login user; default `deployfile-test` (created if missing). `root` works too. */
  user?: string
  /** Indexes of the daemons NOT to start now (call `server.start()` later). */
  deferStart?: number[]
  /** Prefix of the aliases in the generated ssh config (default `dftest`). */
  aliasPrefix?: string
  /** Extra sshd_config lines for every daemon. */
  extraConfig?: string[]
}

/** Daemons started by this process, stopped on exit whatever happens. */
const liveDaemons = new Set<RunningDaemon>()
let exitHookInstalled = false

interface RunningDaemon {
  pid: number
  wrapper: ChildProcess
}

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const daemon of liveDaemons) {
      killConnectionChildren(daemon.pid)
      try {
        process.kill(daemon.pid, 'SIGTERM')
      } catch {
        // already gone
      }
    }
  })
}

/** Starts `count` sshd daemons and returns them with the client-side files. */
export async function startSshServers(count: number, options: StartSshServersOptions = {}): Promise<SshServers> {
  installExitHook()
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 })
  await chmod('/run/sshd', 0o755)

  const user = options.user ?? (process.getuid?.() === 0 ? DEFAULT_USER : userInfo().username)
  const account = await ensureUser(user)
  const penalties = await supportsPerSourcePenalties()

  const base = await mkdtemp(path.join(tmpdir(), 'deployfile-sshd-'))
  // sshd reads authorized_keys as the login user: the dir must be traversable.
  await chmod(base, 0o755)
  const homeDir = path.join(base, 'home')
  const sshDir = path.join(homeDir, '.ssh')
  await mkdir(sshDir, { recursive: true, mode: 0o700 })
  const workDir = path.join(base, 'work')
  await mkdir(workDir, { mode: 0o755 })
  await chown(workDir, account.uid, account.gid)

  const userKey = path.join(sshDir, 'id_ed25519')
  await keygen(userKey, 'deployfile-test-user')
  const userKeyPub = (await readFile(`${userKey}.pub`, 'utf8')).trim()
  const authorizedKeys = path.join(base, 'authorized_keys')
  await writeFile(authorizedKeys, `${userKeyPub}\n`, { mode: 0o644 })
  await chmod(authorizedKeys, 0o644)

  const prefix = options.aliasPrefix ?? 'dftest'
  const deferred = new Set(options.deferStart ?? [])
  const servers: ServerImpl[] = []
  for (let i = 0; i < count; i++) {
    const dir = path.join(base, `sshd-${i + 1}`)
    await mkdir(dir, { mode: 0o755 })
    const hostKey = path.join(dir, 'ssh_host_ed25519_key')
    await keygen(hostKey, `deployfile-test-host-${i + 1}`)
    const hostKeyPub = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ')
    servers.push(
      new ServerImpl({
        alias: `${prefix}-${i + 1}`,
        dir,
        hostKey,
        hostKeyPub,
        authorizedKeys,
        extraConfig: [...(options.extraConfig ?? []), ...(penalties ? ['PerSourcePenalties no'] : [])],
        user,
      }),
    )
  }

  try {
    // Ports first (deferred daemons reserve theirs too), then start in parallel.
    for (const server of servers) await server.choosePort()
    await Promise.all(servers.map((server, i) => (deferred.has(i) ? undefined : server.start())))
  } catch (error) {
    await Promise.all(servers.map((server) => server.stop().catch(() => undefined)))
    await rm(base, { recursive: true, force: true })
    throw error
  }

  for (const server of servers) server.publishedPort = true
  const knownHostsFile = path.join(sshDir, 'known_hosts')
  await writeFile(knownHostsFile, servers.map((s) => `${s.knownHostsLine}\n`).join(''), { mode: 0o600 })

  const sshConfigFile = path.join(base, 'ssh_config')
  const configText = [
    ...servers.map((s) => `Host ${s.alias}\n  HostName 127.0.0.1\n  Port ${s.port}\n`),
    `Host ${prefix}-*`,
    `  User ${user}`,
    `  IdentityFile ${userKey}`,
    `  UserKnownHostsFile ${knownHostsFile}`,
    `  StrictHostKeyChecking yes`,
    '',
  ].join('\n')
  await writeFile(sshConfigFile, configText, { mode: 0o600 })

  let stopped = false
  return {
    servers,
    userKey,
    userKeyPub,
    knownHostsFile,
    sshConfigFile,
    user,
    homeDir,
    remoteHome: account.home,
    workDir,
    hostOptions(index: number) {
      const server = servers[index]
      if (!server) throw new Error(`No server #${index}`)
      return {
        hostname: '127.0.0.1',
        port: server.port,
        remoteUser: user,
        identityFile: userKey,
        knownHostsFile,
        useSshConfig: false,
        connectRetries: 1,
      }
    },
    async authorize(publicKey: string) {
      await appendFile(authorizedKeys, `${publicKey.trim()}\n`)
    },
    async generateKey(name: string, passphrase?: string) {
      const privateKey = path.join(base, 'keys', name)
      await mkdir(path.dirname(privateKey), { recursive: true, mode: 0o700 })
      await keygen(privateKey, `deployfile-test-${name}`, passphrase)
      return { privateKey, publicKey: (await readFile(`${privateKey}.pub`, 'utf8')).trim() }
    },
    async stopAll() {
      if (stopped) return
      stopped = true
      await Promise.all(servers.map((server) => server.stop()))
      await rm(base, { recursive: true, force: true })
    },
  }
}

interface ServerSpec {
  alias: string
  dir: string
  hostKey: string
  hostKeyPub: string
  authorizedKeys: string
  extraConfig: string[]
  user: string
}

class ServerImpl implements SshServer {
  readonly hostname = '127.0.0.1'
  readonly alias: string
  readonly dir: string
  readonly configFile: string
  readonly hostKeyPub: string
  readonly hostKeyFingerprint: string
  port = 0
  log = ''
  private daemon: RunningDaemon | undefined
  private exited: Promise<void> | undefined

  constructor(private readonly spec: ServerSpec) {
    this.alias = spec.alias
    this.dir = spec.dir
    this.configFile = path.join(spec.dir, 'sshd_config')
    this.hostKeyPub = spec.hostKeyPub
    const blob = Buffer.from(spec.hostKeyPub.split(' ')[1] ?? '', 'base64')
    this.hostKeyFingerprint = `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`
  }

  get knownHostsLine(): string {
    return `[127.0.0.1]:${this.port} ${this.hostKeyPub}`
  }

  get pid(): number | undefined {
    return this.daemon?.pid
  }

  get running(): boolean {
    return this.daemon !== undefined
  }

  async choosePort(): Promise<void> {
    this.port = await freePort()
  }

  async start(): Promise<void> {
    if (this.daemon) return
    if (!this.port) await this.choosePort()
    // A free port can be taken by someone else before sshd binds it; pick another then
    // (unless the port is already published in known_hosts/ssh config: then fail loudly).
    for (let attempt = 1; ; attempt++) {
      try {
        await this.spawnDaemon()
        return
      } catch (error) {
        const inUse = error instanceof Error && /Address already in use|Cannot bind any address/i.test(error.message)
        if (!inUse || attempt >= 5 || this.publishedPort) throw error
        this.port = await freePort()
      }
    }
  }

  /** Set once the port is written to known_hosts and ssh config: it must not change any more. */
  publishedPort = false

  private async spawnDaemon(): Promise<void> {
    await writeFile(this.configFile, this.sshdConfig(), { mode: 0o644 })
    this.log = ''
    // The wrapper starts sshd, prints its pid, and kills it when our pipe on fd 3 closes
    // (this process exited, however it died). `wait` makes the wrapper exit with sshd.
    const wrapper = spawn(
      '/bin/sh',
      [
        '-c',
        'exec 3<&0; "$0" -D -e -f "$1" 3<&- </dev/null & p=$!; echo "$p"; (read _ <&3; kill -TERM "$p" 2>/dev/null) & wait "$p"',
        SSHD_BIN,
        this.configFile,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    )
    const exited = new Promise<void>((resolve) => wrapper.once('exit', () => resolve()))
    wrapper.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.log += chunk
    })
    const pid = await new Promise<number>((resolve, reject) => {
      let out = ''
      wrapper.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk
        const line = /^(\d+)\n/.exec(out)
        if (line) resolve(Number(line[1]))
      })
      wrapper.once('exit', () => reject(new Error(`sshd wrapper exited before starting: ${this.log}`)))
      wrapper.once('error', reject)
    })
    const daemon: RunningDaemon = { pid, wrapper }
    this.daemon = daemon
    this.exited = exited
    liveDaemons.add(daemon)
    void exited.then(() => {
      liveDaemons.delete(daemon)
      if (this.daemon === daemon) this.daemon = undefined
    })
    try {
      await waitForBanner(this.port, exited, () => this.log)
      // The banner may have come from another daemon on the same port (ours then failed to bind).
      if (!(await listensOn(pid, this.port))) throw new Error(`Address already in use: port ${this.port} answers, but not from sshd ${pid}`)
    } catch (error) {
      await this.stop()
      throw error
    }
  }

  private sshdConfig(): string {
    const { hostKey, authorizedKeys, user } = this.spec
    return [
      `Port ${this.port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${path.join(this.dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'MaxStartups 100:30:200',
      'MaxSessions 10',
      'MaxAuthTries 10',
      'LoginGraceTime 30',
      user === 'root' ? 'PermitRootLogin prohibit-password' : 'PermitRootLogin no',
      `AllowUsers ${user}`,
      'AllowTcpForwarding yes',
      'AllowAgentForwarding yes',
      'PrintMotd no',
      'PrintLastLog no',
      'UseDNS no',
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
      ...this.spec.extraConfig,
      '',
    ].join('\n')
  }

  async stop(): Promise<void> {
    const daemon = this.daemon
    if (!daemon) return
    // A stopped server must look gone: end the sessions it serves too (sshd's per-connection
    // children survive the listener otherwise).
    killConnectionChildren(daemon.pid)
    try {
      process.kill(daemon.pid, 'SIGTERM')
    } catch {
      // already gone
    }
    const exited = this.exited ?? Promise.resolve()
    const timer = setTimeout(() => {
      try {
        process.kill(daemon.pid, 'SIGKILL')
      } catch {
        // gone
      }
    }, STOP_TIMEOUT_MS)
    await exited
    clearTimeout(timer)
    daemon.wrapper.stdin?.destroy()
    liveDaemons.delete(daemon)
    if (this.daemon === daemon) this.daemon = undefined
  }
}

/** Kills the per-connection sshd processes forked by a listening sshd, and everything under them (sessions). */
function killConnectionChildren(parentPid: number): void {
  const descendants: number[] = []
  const visit = (pid: number) => {
    for (const child of childPids(pid)) {
      descendants.push(child)
      visit(child)
    }
  }
  visit(parentPid)
  for (const pid of descendants) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
}

function childPids(parentPid: number): number[] {
  const children: number[] = []
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return children
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(fields[1]) === parentPid) children.push(Number(entry))
    } catch {
      // process ended meanwhile
    }
  }
  return children
}

/**
 * Ports this process has handed out: the OS may offer a port again once its probe listener closed,
 * and two daemons given the same port looked both started (the second one's bind failed, the first
 * one answered its banner check), so one daemon served two hosts.
 */
const handedOut = new Set<number>()

/** Asks the OS for a free loopback port, never one this process handed out before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await probePort()
    if (handedOut.has(port)) continue
    handedOut.add(port)
    return port
  }
}

function probePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/** Does process `pid` hold the listening socket of 127.0.0.1:`port`? (true where /proc cannot tell) */
async function listensOn(pid: number, port: number): Promise<boolean> {
  let table: string
  try {
    table = await readFile('/proc/net/tcp', 'utf8')
  } catch {
    return true
  }
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`
  const inodes = table
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[1] === local && fields[3] === '0A')
    .map((fields) => `socket:[${fields[9]}]`)
  if (inodes.length === 0) return true // not in this namespace's table: cannot tell
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
    if (inodes.includes(target)) return true
  }
  return false
}

/** Waits until the daemon answers with an SSH banner, or fails with its log. */
async function waitForBanner(port: number, exited: Promise<void>, log: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  let gone = false
  void exited.then(() => {
    gone = true
  })
  for (;;) {
    if (gone) throw new Error(`sshd on port ${port} exited at start: ${log().trim() || '(no output)'}`)
    if (await bannerOnce(port)) return
    if (Date.now() > deadline) throw new Error(`sshd on port ${port} did not answer within ${READY_TIMEOUT_MS} ms: ${log()}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

function bannerOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    let data = ''
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(2000, () => done(false))
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1')
      if (data.includes('\n')) done(data.startsWith('SSH-2.0-'))
    })
    socket.on('error', () => done(false))
    socket.on('close', () => done(false))
  })
}

async function keygen(file: string, comment: string, passphrase = ''): Promise<void> {
  await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', comment, '-f', file])
  chmodSync(file, 0o600)
}

let penaltiesSupport: Promise<boolean> | undefined
/** OpenSSH 9.8+ penalises failed logins per source address; tests provoke some on purpose. */
function supportsPerSourcePenalties(): Promise<boolean> {
  penaltiesSupport ??= execFileAsync(SSHD_BIN, ['-V'])
    .then(({ stdout, stderr }) => `${stdout}${stderr}`)
    .catch((error: { stderr?: string }) => error.stderr ?? '')
    .then((text) => {
      const match = /OpenSSH_(\d+)\.(\d+)/.exec(text)
      if (!match) return false
      const major = Number(match[1])
      const minor = Number(match[2])
      return major > 9 || (major === 9 && minor >= 8)
    })
  return penaltiesSupport
}

interface Account {
  uid: number
  gid: number
  home: string
}

/** Creates the login user if missing (idempotent, safe from parallel processes) and unlocks it for key logins. */
async function ensureUser(name: string): Promise<Account> {
  const existing = await lookupUser(name)
  if (existing && name !== DEFAULT_USER) return existing
  if (!existing) {
    if (process.getuid?.() !== 0) throw new Error(`User ${name} does not exist and only root can create it.`)
    for (let attempt = 1; ; attempt++) {
      try {
        await execFileAsync('useradd', ['--create-home', '--shell', '/bin/bash', name])
        break
      } catch (error) {
        if (await lookupUser(name)) break // created by a parallel test process
        if (attempt >= 30) throw error
        await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200)) // /etc/passwd lock held
      }
    }
  }
  // useradd leaves the account locked ('!' in /etc/shadow): sshd then refuses even key logins.
  for (let attempt = 1; ; attempt++) {
    if (!(await isLocked(name))) break
    try {
      await execFileAsync('usermod', ['-p', '*', name])
    } catch (error) {
      if (attempt >= 30) throw error
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200))
    }
  }
  const account = await lookupUser(name)
  if (!account) throw new Error(`User ${name} was not created.`)
  return account
}

async function lookupUser(name: string): Promise<Account | undefined> {
  const passwd = await readFile('/etc/passwd', 'utf8')
  for (const line of passwd.split('\n')) {
    const fields = line.split(':')
    if (fields[0] === name) return { uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5] ?? '/' }
  }
  return undefined
}

async function isLocked(name: string): Promise<boolean> {
  let shadow: string
  try {
    shadow = await readFile('/etc/shadow', 'utf8')
  } catch {
    return false
  }
  for (const line of shadow.split('\n')) {
    const fields = line.split(':')
    if (fields[0] === name) return (fields[1] ?? '').startsWith('!')
  }
  return false
}

/** A random suffix for names in tests. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`
}
