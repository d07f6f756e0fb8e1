import { quote } from '../../shell/quote.js'
import {
  appendKnownHost,
  checkKnownHost,
  knownHostsName,
  knownKeyTypes,
  parsePublicKey,
  readKnownHosts,
  type PublicKey,
} from './known-hosts.js'
import { displayPath, type Endpoint } from './settings.js'

/** The server's key was refused: not retried, reported as a ConnectionError. */
export class HostKeyRejected extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message)
    this.name = 'HostKeyRejected'
  }
}

/** Host key algorithms ssh2 offers, best first. */
const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
] as const
type HostKeyAlgorithm = (typeof HOST_KEY_ALGORITHMS)[number]

export interface HostKeyCheck {
  /** For ssh2's `hostVerifier`. */
  verify: (key: Buffer, done: (ok: boolean) => void) => void
  /** Why the key was refused, once it was. */
  rejection(): HostKeyRejected | undefined
  /** The key the server showed. */
  seen(): PublicKey | undefined
  /** Algorithms ordered so the server shows a key type we already know (as OpenSSH does). */
  algorithms: HostKeyAlgorithm[] | undefined
}

/** Reads known_hosts and returns a verifier that applies the endpoint's policy. */
export async function prepareHostKeyCheck(endpoint: Endpoint, homeDir: string): Promise<HostKeyCheck> {
  const entries = endpoint.strict === 'off' ? [] : await readKnownHosts(endpoint.knownHostsFiles)
  const knownTypes = knownKeyTypes(entries, endpoint.hostname, endpoint.port)
  let rejected: HostKeyRejected | undefined
  let seenKey: PublicKey | undefined
  const writeTo = endpoint.knownHostsFiles[0]
  const where = `${endpoint.role === 'jump host' ? 'jump host ' : ''}${endpoint.alias}`
  const name = knownHostsName(endpoint.hostname, endpoint.port)
  const scan = `ssh-keyscan ${endpoint.port === 22 ? '' : `-p ${endpoint.port} `}${quote(endpoint.hostname)} >> ${displayPath(writeTo, homeDir)}`

  const verify = (raw: Buffer, done: (ok: boolean) => void) => {
    const key = parsePublicKey(raw)
    seenKey = key
    if (endpoint.strict === 'off') return done(true)
    const result = checkKnownHost(entries, endpoint.hostname, endpoint.port, key)
    switch (result.status) {
      case 'known':
        return done(true)
      case 'revoked':
        rejected = new HostKeyRejected(
          `the ${key.type} host key of ${where} (${key.fingerprint}) is marked @revoked in ${result.entry.file} line ${result.entry.line}`,
          'Replace the key on the server; a revoked key is never accepted.',
        )
        return done(false)
      case 'changed': {
        const old = result.entries[0]
        const oldPrint = parsePublicKey(old.blob).fingerprint
        rejected = new HostKeyRejected(
          `WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! The ${key.type} host key of ${where} is now ${key.fingerprint}, ` +
            `but ${old.file} line ${old.line} has ${oldPrint} for ${name}. Someone could be intercepting the connection ` +
            `(man-in-the-middle attack), or the server was reinstalled. Refusing to connect`,
          `Only if you know why the key changed: remove the old key with \`ssh-keygen -f ${quote(displayPath(old.file, homeDir))} -R ${quote(name)}\`, ` +
            `check the new fingerprint (${key.fingerprint}) on the server (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then add it: \`${scan}\`.` +
            ` (strictHostKeyChecking: 'off' skips every check: never in production.)`,
        )
        return done(false)
      }
      case 'unknown': {
        if (endpoint.strict === 'accept-new') {
          appendKnownHost(writeTo, endpoint.hostname, endpoint.port, key).then(
            () => done(true),
            // As OpenSSH: failing to remember the key does not stop this connection.
            () => done(true),
          )
          return
        }
        const others = result.otherTypes.length > 0 ? ` (known_hosts has a ${result.otherTypes.join(', ')} key for it, not ${key.type})` : ''
        rejected = new HostKeyRejected(
          `the host key of ${where} is unknown: ${key.type} ${key.fingerprint} is not in ${endpoint.knownHostsFiles
            .map((file) => displayPath(file, homeDir))
            .join(' or ')}${others}; strictHostKeyChecking is '${endpoint.strict}'`,
          `If ${key.fingerprint} is the server's key (check on the server: ssh-keygen -lf /etc/ssh/ssh_host_${key.type.replace(/^ssh-|-.*$/g, '')}_key.pub), ` +
            `trust it with \`${scan}\`, or set strictHostKeyChecking: 'accept-new' for this host to record it on first connection.`,
        )
        return done(false)
      }
    }
  }

  return {
    verify,
    rejection: () => rejected,
    seen: () => seenKey,
    algorithms: orderAlgorithms(knownTypes),
  }
}

function orderAlgorithms(knownTypes: string[]): HostKeyAlgorithm[] | undefined {
  if (knownTypes.length === 0) return undefined
  const preferred: HostKeyAlgorithm[] = []
  for (const type of knownTypes) {
    const algorithms: string[] = type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type]
    for (const algorithm of algorithms) {
      const known = HOST_KEY_ALGORITHMS.find((a) => a === algorithm)
      if (known && !preferred.includes(known)) preferred.push(known)
    }
  }
  if (preferred.length === 0) return undefined
  return [...preferred, ...HOST_KEY_ALGORITHMS.filter((a) => !preferred.includes(a))]
}
