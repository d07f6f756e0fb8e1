import { readFile } from 'node:fs/promises'
// ssh2 is CommonJS: Node's ESM loader only sees its default export.
import ssh2, { type AnyAuthMethod, type AuthenticationType, type AuthHandlerMiddleware, type ParsedKey } from 'ssh2'

const { utils } = ssh2
import type { Endpoint, IdentityFile, SshContext } from './settings.js'

/** An identity file after reading: a usable key, or why it cannot be used. */
export interface LoadedIdentity {
  file: IdentityFile
  key?: ParsedKey
  /** Why the key is not offered (missing, encrypted without passphrase, unreadable). */
  problem?: string
}

export const PASSPHRASE_ENV = 'DEPLOYFILE_SSH_PASSPHRASE'

/**
 * Reads and decrypts identity files once per transport. Encrypted keys get their passphrase from
 * the variable named by `passphraseEnv`, else DEPLOYFILE_SSH_PASSPHRASE, else the prompt (TTY only).
 */
export class IdentityStore {
  private readonly cache = new Map<string, Promise<LoadedIdentity>>()

  constructor(
    private readonly ctx: SshContext,
    private readonly passphraseEnv: string | undefined,
  ) {}

  load(files: IdentityFile[]): Promise<LoadedIdentity[]> {
    // One at a time: two encrypted keys must not prompt at once.
    return files.reduce<Promise<LoadedIdentity[]>>(
      async (done, file) => [...(await done), await this.loadOne(file)],
      Promise.resolve([]),
    )
  }

  private loadOne(file: IdentityFile): Promise<LoadedIdentity> {
    let loaded = this.cache.get(file.path)
    if (!loaded) {
      loaded = this.read(file)
      this.cache.set(file.path, loaded)
    }
    return loaded
  }

  private async read(file: IdentityFile): Promise<LoadedIdentity> {
    let data: Buffer
    try {
      data = await readFile(file.path)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      return { file, problem: code === 'ENOENT' ? 'not found' : `cannot read: ${code ?? (error as Error).message}` }
    }
    const plain = parse(data)
    if (!(plain instanceof Error)) return { file, key: plain }
    if (!/encrypted|passphrase/i.test(plain.message)) return { file, problem: `not a private key ssh2 can use (${plain.message})` }

    const names = this.passphraseEnv ? [this.passphraseEnv, PASSPHRASE_ENV] : [PASSPHRASE_ENV]
    const envName = names.find((name) => this.ctx.env[name] !== undefined)
    let passphrase = envName ? this.ctx.env[envName] : undefined
    let source = `$${envName ?? names[0]}`
    if (passphrase === undefined && this.ctx.promptPassphrase) {
      passphrase = await this.ctx.promptPassphrase(file.display)
      source = 'the passphrase typed'
    }
    if (passphrase === undefined) return { file, problem: `encrypted, and ${names.map((n) => `$${n}`).join(' / ')} is not set` }
    const decrypted = parse(data, passphrase)
    if (decrypted instanceof Error) return { file, problem: `encrypted, and ${source} does not decrypt it` }
    return { file, key: decrypted }
  }
}

function parse(data: Buffer, passphrase?: string): ParsedKey | Error {
  const result = utils.parseKey(data, passphrase) as ParsedKey | ParsedKey[] | Error
  if (Array.isArray(result)) return result[0] ?? new Error('no key in file')
  if (!(result instanceof Error) && !result.isPrivateKey()) return new Error('this is a public key')
  return result
}

/** Tracks what was tried, so an auth failure can say it. */
export interface AuthPlan {
  handler: AuthHandlerMiddleware
  /** `publickey (~/.ssh/id_ed25519), agent`: methods actually offered, and keys skipped with why. */
  describe(): string
  /** Methods the server said it accepts (from its last answer). */
  serverMethods(): string[] | undefined
}

/** Identity files in order, then the agent (SSH_AUTH_SOCK), through ssh2's authHandler. */
export function planAuth(endpoint: Endpoint, identities: LoadedIdentity[], agentSocket: string | undefined): AuthPlan {
  const methods: Array<{ label: string; method: AnyAuthMethod }> = []
  for (const identity of identities) {
    if (identity.key) {
      methods.push({
        label: `publickey (${identity.file.display})`,
        method: { type: 'publickey', username: endpoint.user, key: identity.key },
      })
    }
  }
  if (agentSocket) methods.push({ label: 'agent', method: { type: 'agent', username: endpoint.user, agent: agentSocket } })

  const tried: string[] = []
  let serverMethods: string[] | undefined
  let next = 0
  const handler: AuthHandlerMiddleware = (methodsLeft, _partial, callback) => {
    if (Array.isArray(methodsLeft)) serverMethods = methodsLeft
    while (next < methods.length) {
      const candidate = methods[next++]
      // Keys and agent both authenticate with "publickey"; skip them if the server stopped offering it.
      if (Array.isArray(methodsLeft) && !methodsLeft.includes('publickey' as AuthenticationType)) continue
      tried.push(candidate.label)
      return callback(candidate.method)
    }
    callback(false as unknown as AnyAuthMethod)
  }

  return {
    handler,
    describe() {
      const parts = [...tried]
      for (const identity of identities) {
        if (identity.problem && !(identity.file.optional && identity.problem === 'not found')) {
          parts.push(`publickey (${identity.file.display}: ${identity.problem})`)
        }
      }
      if (!agentSocket) parts.push('agent (SSH_AUTH_SOCK is not set)')
      return parts.length > 0 ? parts.join(', ') : 'nothing (no identity file found and no agent)'
    },
    serverMethods: () => serverMethods,
  }
}
