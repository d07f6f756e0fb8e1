import type { DeployConfig } from './config-types.js'
import { ConfigError } from './errors.js'
import { didYouMean } from './suggest.js'

/** How a host's SSH key is checked against known_hosts. */
export type StrictHostKeyChecking = 'yes' | 'accept-new' | 'off'

/** Options of a host, given to `host()` or `localhost()`. */
export interface HostOptions {
  /** Address to connect to. Default: the alias (or ssh config's HostName). */
  hostname?: string
  /** SSH user. Default: ssh config's User, else the local user. */
  remoteUser?: string
  /** SSH port. Default: ssh config's Port, else 22. */
  port?: number
  /** Private key file(s) to try, in order, before ssh config's IdentityFile and the agent. */
  identityFile?: string | string[]
  /** Environment variable holding the passphrase of an encrypted identity file. */
  passphraseEnv?: string
  /** Shortcut for the `deploy_path` setting of this host. */
  deployPath?: string
  /** Labels used by selectors such as `stage=prod` or `role=web|worker`. */
  labels?: Record<string, string>
  /** Settings for this host only; they beat global `set()` values. */
  config?: Partial<DeployConfig> & Record<string, unknown>
  /** An extra ssh config file read before ~/.ssh/config. */
  sshConfigFile?: string
  /** Use ~/.ssh/config (default true). */
  useSshConfig?: boolean
  /** known_hosts file. Default: ssh config's UserKnownHostsFile, else ~/.ssh/known_hosts. */
  knownHostsFile?: string
  /** Host key policy. Default `'yes'` (strict): unknown and changed keys are refused. */
  strictHostKeyChecking?: StrictHostKeyChecking
  /** Forward the local ssh-agent to the host. Default false. */
  forwardAgent?: boolean
  /** Bastion(s) to jump through, as in ssh's ProxyJump: `user@bastion:22,other`. */
  proxyJump?: string
  /** Connection timeout in milliseconds. Default 10000. */
  connectTimeout?: number
  /** Connection attempts before giving up (connection errors only). Default 3. */
  connectRetries?: number
  /** Most commands in flight at once on this host's connection. Default 8 (sshd allows 10). */
  maxChannels?: number
  /**
   * Run commands one after another over one long-lived session (the command channel) instead of
   * a new session each; commands that come while it is busy, or whose stdin is a stream, still get
   * sessions of their own. Default true; false runs every command on a session of its own.
   */
  commandChannel?: boolean
}

const HOST_OPTION_KEYS: ReadonlyArray<keyof HostOptions> = [
  'hostname',
  'remoteUser',
  'port',
  'identityFile',
  'passphraseEnv',
  'deployPath',
  'labels',
  'config',
  'sshConfigFile',
  'useSshConfig',
  'knownHostsFile',
  'strictHostKeyChecking',
  'forwardAgent',
  'proxyJump',
  'connectTimeout',
  'connectRetries',
  'maxChannels',
  'commandChannel',
]

/** A host of the deployfile: an alias, its options, and whether it is this machine. */
export class Host {
  /** Settings of this host (from `config` and `deployPath`). */
  readonly config = new Map<string, unknown>()

  constructor(
    /** The name selectors and output use. */
    readonly alias: string,
    readonly options: HostOptions = {},
    /** True for `localhost()`: commands run here, without SSH. */
    readonly local = false,
  ) {
    validateHostOptions(alias, options)
    // As in PHP Deployer, every host answers {{alias}} and {{hostname}}.
    this.config.set('alias', alias)
    this.config.set('hostname', options.hostname ?? alias)
    if (options.remoteUser !== undefined) this.config.set('remote_user', options.remoteUser)
    if (options.port !== undefined) this.config.set('port', options.port)
    for (const [key, value] of Object.entries(options.config ?? {})) this.config.set(key, value)
    if (options.deployPath !== undefined) this.config.set('deploy_path', options.deployPath)
  }

  /** Labels, including the implicit `alias`. */
  get labels(): Record<string, string> {
    return { ...(this.options.labels ?? {}), alias: this.alias }
  }

  /** The address to connect to. */
  get hostname(): string {
    return this.options.hostname ?? this.alias
  }

  /** Sets a setting for this host; chainable. */
  set<K extends keyof DeployConfig>(key: K, value: DeployConfig[K] | ((host: { alias: string }) => unknown)): this
  set(key: string, value: unknown): this
  set(key: string, value: unknown): this {
    this.config.set(key, value)
    return this
  }
}

function validateHostOptions(alias: string, options: HostOptions): void {
  for (const key of Object.keys(options)) {
    if (!(HOST_OPTION_KEYS as readonly string[]).includes(key)) {
      throw new ConfigError(
        `Unknown option "${key}" for host ${alias}.`,
        [didYouMean(key, HOST_OPTION_KEYS), `Host options are: ${HOST_OPTION_KEYS.join(', ')}.`].filter(Boolean).join(' '),
      )
    }
  }
  if (options.port !== undefined && (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535)) {
    throw new ConfigError(`Host ${alias}: port must be a number from 1 to 65535, got ${String(options.port)}.`)
  }
  const strict = options.strictHostKeyChecking
  if (strict !== undefined && !['yes', 'accept-new', 'off'].includes(strict)) {
    throw new ConfigError(`Host ${alias}: strictHostKeyChecking must be 'yes', 'accept-new' or 'off', got "${strict}".`)
  }
}

/**
 * Expands host patterns with ranges: `web[1:3]` → web1 web2 web3,
 * `web[01:10]` keeps the padding, `db[a:c]` → dba dbb dbc. Several ranges multiply.
 */
export function expandHostPattern(pattern: string): string[] {
  const match = /\[([^\]]+)\]/.exec(pattern)
  if (!match) {
    if (/[[\]]/.test(pattern)) throw new ConfigError(`Host pattern "${pattern}" has an unmatched bracket.`, 'Ranges look like web[1:3].')
    return [pattern]
  }
  const [whole, body] = match
  const range = /^\s*([0-9]+|[a-zA-Z])\s*:\s*([0-9]+|[a-zA-Z])\s*$/.exec(body)
  if (!range) throw new ConfigError(`Host pattern "${pattern}": "${whole}" is not a range like [1:3], [01:10] or [a:c].`)
  const [, from, to] = range
  const values: string[] = []
  if (/^\d+$/.test(from) && /^\d+$/.test(to)) {
    const width = from.length > 1 && from.startsWith('0') ? from.length : 0
    const start = Number(from)
    const end = Number(to)
    if (end < start) throw new ConfigError(`Host pattern "${pattern}": the range ends before it starts.`)
    for (let n = start; n <= end; n++) values.push(String(n).padStart(width, '0'))
  } else if ((/^[a-z]$/.test(from) && /^[a-z]$/.test(to)) || (/^[A-Z]$/.test(from) && /^[A-Z]$/.test(to))) {
    const start = from.charCodeAt(0)
    const end = to.charCodeAt(0)
    if (end < start) throw new ConfigError(`Host pattern "${pattern}": the range ends before it starts.`)
    for (let c = start; c <= end; c++) values.push(String.fromCharCode(c))
  } else {
    throw new ConfigError(`Host pattern "${pattern}": a range is numbers [1:3] or letters [a:c], not "${whole}".`)
  }
  const prefix = pattern.slice(0, match.index)
  const suffix = pattern.slice(match.index + whole.length)
  return values.flatMap((value) => expandHostPattern(`${prefix}${value}${suffix}`))
}
