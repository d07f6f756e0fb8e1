import { readFile } from 'node:fs/promises'
import { homedir, userInfo } from 'node:os'
import path from 'node:path'
import SSHConfig from 'ssh-config'
import { ConfigError } from '../../model/errors.js'
import type { Host, StrictHostKeyChecking } from '../../model/host.js'

/** What the transport gets from its caller besides the host. */
export interface SshContext {
  /** Environment to read SSH_AUTH_SOCK and passphrase variables from (default process.env). */
  env: NodeJS.ProcessEnv
  /** Home directory for `~` (default os.homedir()). */
  homeDir: string
  /** Local user name (`%u`, and the default remote user). */
  localUser: string
  /** Asks for the passphrase of an encrypted key (only given on a TTY). */
  promptPassphrase?: (file: string) => Promise<string>
}

/** Everything needed to reach one machine: the host itself or a jump host in front of it. */
export interface Endpoint {
  /** The name shown in messages: the host alias, or the jump spec. */
  alias: string
  /** `host` for the target, `jump host` for a bastion. */
  role: 'host' | 'jump host'
  hostname: string
  port: number
  user: string
  /** Private key files to try, in order (absolute paths). */
  identityFiles: IdentityFile[]
  /** known_hosts files to read; the first is the one `accept-new` writes to. */
  knownHostsFiles: string[]
  strict: StrictHostKeyChecking
}

export interface IdentityFile {
  path: string
  /** As the user wrote it (`~/.ssh/id_ed25519`), for messages. */
  display: string
  /** Default identities (~/.ssh/id_*) are skipped silently when missing. */
  optional: boolean
}

/** The resolved connection settings of a host: host options beat ssh config, which beats defaults. */
export interface SshSettings extends Endpoint {
  role: 'host'
  /** Bastions to go through, in order (first is reached directly). */
  jumps: Endpoint[]
  forwardAgent: boolean
  connectTimeout: number
  connectTries: number
  maxChannels: number
  /** Commands go over one long-lived session when they can (see HostOptions.commandChannel). */
  commandChannel: boolean
  passphraseEnv?: string
  /** Milliseconds between SSH keepalive requests while connected (ssh config ServerAliveInterval). */
  keepaliveInterval: number
  /** Keepalives left unanswered before the connection counts as dead (ssh config ServerAliveCountMax). */
  keepaliveCountMax: number
}

export const DEFAULT_CONNECT_TIMEOUT = 10_000
export const DEFAULT_CONNECT_TRIES = 3
export const DEFAULT_MAX_CHANNELS = 8
/** Commands go over one long-lived session per connection unless a host says otherwise. */
export const DEFAULT_COMMAND_CHANNEL = true
/**
 * A hung network (no FIN, no RST) is only seen by keepalives: one every 2 s, and 3 left unanswered,
 * finds it in ~6–8 s instead of the minute a long command would otherwise hang, while a host that
 * is merely busy still answers a keepalive within 6 s.
 */
export const DEFAULT_KEEPALIVE_INTERVAL = 2_000
export const DEFAULT_KEEPALIVE_COUNT_MAX = 3
/** A private key file tried first for every host (set by the GitHub Action for its run). */
export const KEY_FILE_ENV = 'DEPLOYFILE_SSH_KEY_FILE'
/** A known_hosts file read besides the usual ones for every host (set by the GitHub Action for its run). */
export const KNOWN_HOSTS_ENV = 'DEPLOYFILE_SSH_KNOWN_HOSTS'
const DEFAULT_IDENTITIES = ['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk', 'id_dsa']

export function defaultContext(options: { env?: NodeJS.ProcessEnv; homeDir?: string; promptPassphrase?: (file: string) => Promise<string> } = {}): SshContext {
  const env = options.env ?? process.env
  let localUser = env.USER ?? env.LOGNAME ?? ''
  if (!localUser) {
    try {
      localUser = userInfo().username
    } catch {
      localUser = 'root'
    }
  }
  return { env, homeDir: options.homeDir ?? homedir(), localUser, promptPassphrase: options.promptPassphrase }
}

type Computed = Record<string, string | string[]>

/** Parsed ssh config by text: every host of a fleet reads the same files, parsed once. */
const parsedConfigs = new Map<string, SSHConfig>()

/** Parsed ssh config of a host: the extra file first, then ~/.ssh/config (first value wins, as in OpenSSH). */
export class SshConfigFiles {
  private constructor(private readonly config: SSHConfig | undefined) {}

  static async load(host: Host, ctx: SshContext): Promise<SshConfigFiles> {
    const texts: string[] = []
    const files: Array<{ file: string; required: boolean }> = []
    if (host.options.sshConfigFile) files.push({ file: expandHome(host.options.sshConfigFile, ctx.homeDir), required: true })
    if (host.options.useSshConfig !== false) files.push({ file: path.join(ctx.homeDir, '.ssh', 'config'), required: false })
    for (const { file, required } of files) {
      try {
        texts.push(await readFile(file, 'utf8'))
      } catch (error) {
        // ~/.ssh/config is optional; a file named in the deployfile is not.
        if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !required) continue
        throw new ConfigError(
          `Host ${host.alias}: cannot read ssh config file ${file}: ${(error as Error).message}`,
          required ? 'Fix or remove the sshConfigFile option of this host.' : 'Fix ~/.ssh/config or set useSshConfig: false.',
        )
      }
    }
    if (texts.length === 0) return new SshConfigFiles(undefined)
    const text = texts.join('\n')
    try {
      let parsed = parsedConfigs.get(text)
      if (!parsed) {
        parsed = SSHConfig.parse(text)
        if (parsedConfigs.size >= 8) parsedConfigs.clear()
        parsedConfigs.set(text, parsed)
      }
      return new SshConfigFiles(parsed)
    } catch (error) {
      throw new ConfigError(`Host ${host.alias}: cannot parse ssh config (${files.map((f) => f.file).join(', ')}): ${(error as Error).message}`)
    }
  }

  /** The settings ssh config gives `name` (keys lower-cased). */
  compute(name: string): Computed {
    if (!this.config) return {}
    // Match exec runs commands, like OpenSSH does; keep that off: a deploy tool should not.
    return this.config.compute(name, { ignoreCase: true, matchExec: false })
  }
}

function first(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined
  return Array.isArray(value) ? value[0] : value
}

function all(value: string | string[] | undefined): string[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

/** `~` and `~/x` → the home dir. */
export function expandHome(file: string, homeDir: string): string {
  if (file === '~') return homeDir
  if (file.startsWith('~/')) return path.join(homeDir, file.slice(2))
  return file
}

/** Shows a path with `~` for the home dir. */
export function displayPath(file: string, homeDir: string): string {
  if (file === homeDir) return '~'
  if (file.startsWith(homeDir.endsWith('/') ? homeDir : `${homeDir}/`)) return `~/${file.slice(homeDir.length).replace(/^\/+/, '')}`
  return file
}

/** ssh config's %-tokens in paths: %d %u %h %p %r %n %%. */
function expandTokens(value: string, tokens: Record<string, string>): string {
  return value.replace(/%(.)/g, (whole, letter: string) => (letter === '%' ? '%' : (tokens[letter] ?? whole)))
}

function parsePort(value: string | undefined, where: string): number | undefined {
  if (value === undefined) return undefined
  const port = Number(value)
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(`${where}: bad port "${value}".`)
  return port
}

function parseStrict(value: string | undefined): StrictHostKeyChecking | undefined {
  if (value === undefined) return undefined
  switch (value.toLowerCase()) {
    case 'yes':
    case 'ask': // nobody to ask: as strict as yes
      return 'yes'
    case 'accept-new':
      return 'accept-new'
    case 'no':
    case 'off':
      return 'off'
    default:
      return undefined
  }
}

/** Resolves a host's connection settings from its options and ssh config. */
export async function resolveSettings(host: Host, ctx: SshContext): Promise<SshSettings> {
  const config = await SshConfigFiles.load(host, ctx)
  const options = host.options
  const computed = config.compute(host.alias)
  // HostName may use %h (the name given, here the alias), as in `HostName %h.internal`.
  const configHostname = first(computed.hostname)
  const hostname = options.hostname ?? (configHostname ? expandTokens(configHostname, { h: host.alias }) : host.alias)
  const port = options.port ?? parsePort(first(computed.port), `ssh config of ${host.alias}`) ?? 22
  const user = options.remoteUser ?? first(computed.user) ?? ctx.localUser
  const tokens = tokenMap(ctx, { hostname, port, user, alias: host.alias })

  const explicitKeys = options.identityFile === undefined ? [] : Array.isArray(options.identityFile) ? options.identityFile : [options.identityFile]
  const identityFiles = identityList(explicitKeys, all(computed.identityfile), ctx, tokens)

  const knownHostsFiles = knownHostsList(options.knownHostsFile, computed, ctx, tokens)
  const strict = options.strictHostKeyChecking ?? parseStrict(first(computed.stricthostkeychecking)) ?? 'yes'

  const jumpSpec = options.proxyJump ?? first(computed.proxyjump)
  const jumps: Endpoint[] = []
  if (jumpSpec && jumpSpec.toLowerCase() !== 'none') {
    for (const spec of jumpSpec.split(',').map((s) => s.trim()).filter(Boolean)) {
      jumps.push(resolveJump(spec, host, config, ctx, identityFiles, options.knownHostsFile, options.strictHostKeyChecking))
    }
  }

  const forwardAgentConfig = first(computed.forwardagent)
  return {
    alias: host.alias,
    role: 'host',
    hostname,
    port,
    user,
    identityFiles,
    knownHostsFiles,
    strict,
    jumps,
    forwardAgent: options.forwardAgent ?? forwardAgentConfig?.toLowerCase() === 'yes',
    connectTimeout: options.connectTimeout ?? parseTimeout(first(computed.connecttimeout)) ?? DEFAULT_CONNECT_TIMEOUT,
    connectTries: Math.max(1, options.connectRetries ?? DEFAULT_CONNECT_TRIES),
    maxChannels: Math.max(1, options.maxChannels ?? DEFAULT_MAX_CHANNELS),
    commandChannel: options.commandChannel ?? DEFAULT_COMMAND_CHANNEL,
    passphraseEnv: options.passphraseEnv,
    keepaliveInterval: parseTimeout(first(computed.serveraliveinterval)) ?? DEFAULT_KEEPALIVE_INTERVAL,
    keepaliveCountMax: parseCount(first(computed.serveralivecountmax)) ?? DEFAULT_KEEPALIVE_COUNT_MAX,
  }
}

function parseCount(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  return Number.isInteger(n) && n > 0 ? n : undefined
}

function parseTimeout(seconds: string | undefined): number | undefined {
  if (seconds === undefined) return undefined
  const n = Number(seconds)
  return Number.isFinite(n) && n > 0 ? n * 1000 : undefined
}

function tokenMap(ctx: SshContext, target: { hostname: string; port: number; user: string; alias: string }): Record<string, string> {
  return { d: ctx.homeDir, u: ctx.localUser, h: target.hostname, p: String(target.port), r: target.user, n: target.alias }
}

function identityList(explicit: string[], fromConfig: string[], ctx: SshContext, tokens: Record<string, string>): IdentityFile[] {
  const seen = new Set<string>()
  const list: IdentityFile[] = []
  const add = (file: string, optional: boolean) => {
    const resolved = path.resolve(expandHome(expandTokens(file, tokens), ctx.homeDir))
    if (seen.has(resolved)) return
    seen.add(resolved)
    list.push({ path: resolved, display: displayPath(resolved, ctx.homeDir), optional })
  }
  // A key given to the whole run by the environment (the GitHub Action's) comes first.
  if (ctx.env[KEY_FILE_ENV]) add(ctx.env[KEY_FILE_ENV], false)
  for (const file of explicit) add(file, false)
  for (const file of fromConfig) add(file, false)
  // As OpenSSH: the default keys only when nothing names a key.
  if (list.length === 0) for (const name of DEFAULT_IDENTITIES) add(path.join(ctx.homeDir, '.ssh', name), true)
  return list
}

function knownHostsList(explicit: string | undefined, computed: Computed, ctx: SshContext, tokens: Record<string, string>): string[] {
  const resolve = (file: string) => path.resolve(expandHome(expandTokens(file, tokens), ctx.homeDir))
  // Host keys given to the whole run by the environment are read too, after the usual files (which
  // accept-new writes to): they add trust for this run without touching ~/.ssh.
  const fromEnv = ctx.env[KNOWN_HOSTS_ENV] ? [resolve(ctx.env[KNOWN_HOSTS_ENV])] : []
  if (explicit) return [resolve(explicit), ...fromEnv]
  const user = all(computed.userknownhostsfile).flatMap((entry) => entry.split(/\s+/)).filter(Boolean)
  const global = all(computed.globalknownhostsfile).flatMap((entry) => entry.split(/\s+/)).filter(Boolean)
  const files = user.length > 0 ? user.map(resolve) : [path.join(ctx.homeDir, '.ssh', 'known_hosts')]
  const globals = global.length > 0 ? global.map(resolve) : ['/etc/ssh/ssh_known_hosts']
  return [...files, ...globals.filter((file) => !files.includes(file)), ...fromEnv.filter((file) => !files.includes(file))]
}

/** `user@host:port`, `ssh://user@host:port`, `[::1]:2222`; the host may be an ssh config alias. */
export function parseJumpSpec(spec: string): { user?: string; host: string; port?: number } {
  let rest = spec.replace(/^ssh:\/\//, '')
  let user: string | undefined
  const at = rest.lastIndexOf('@')
  if (at >= 0) {
    user = rest.slice(0, at)
    rest = rest.slice(at + 1)
  }
  let host = rest
  let port: number | undefined
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest)
  if (bracketed) {
    host = bracketed[1]
    if (bracketed[2]) port = Number(bracketed[2])
  } else {
    const colon = rest.lastIndexOf(':')
    if (colon >= 0 && rest.indexOf(':') === colon) {
      host = rest.slice(0, colon)
      port = Number(rest.slice(colon + 1))
    }
  }
  if (!host || (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535))) {
    throw new ConfigError(`Bad proxyJump "${spec}".`, 'Write jump hosts like ssh -J does: user@bastion:22,user@other')
  }
  return { user, host, port }
}

function resolveJump(
  spec: string,
  host: Host,
  config: SshConfigFiles,
  ctx: SshContext,
  fallbackIdentities: IdentityFile[],
  knownHostsFile: string | undefined,
  strict: StrictHostKeyChecking | undefined,
): Endpoint {
  const parsed = parseJumpSpec(spec)
  const computed = config.compute(parsed.host)
  const configHostname = first(computed.hostname)
  const hostname = configHostname ? expandTokens(configHostname, { h: parsed.host }) : parsed.host
  const port = parsed.port ?? parsePort(first(computed.port), `ssh config of jump host ${parsed.host}`) ?? 22
  const user = parsed.user ?? first(computed.user) ?? host.options.remoteUser ?? ctx.localUser
  const tokens = tokenMap(ctx, { hostname, port, user, alias: parsed.host })
  // The jump host's own keys first (ssh config), then the keys of the host behind it.
  const own = identityList([], all(computed.identityfile), ctx, tokens).filter((id) => !id.optional)
  const seen = new Set(own.map((id) => id.path))
  const identityFiles = [...own, ...fallbackIdentities.filter((id) => !seen.has(id.path))]
  return {
    alias: spec,
    role: 'jump host',
    hostname,
    port,
    user,
    identityFiles,
    knownHostsFiles: knownHostsList(knownHostsFile, computed, ctx, tokens),
    strict: strict ?? parseStrict(first(computed.stricthostkeychecking)) ?? 'yes',
  }
}

/** `host port 22`, for messages. */
export function describeEndpoint(endpoint: Pick<Endpoint, 'alias' | 'hostname' | 'port'>): string {
  return endpoint.alias === endpoint.hostname
    ? `${endpoint.alias} (port ${endpoint.port})`
    : `${endpoint.alias} (${endpoint.hostname} port ${endpoint.port})`
}
