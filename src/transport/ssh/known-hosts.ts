import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { appendFile, chmod, mkdir, readFile, stat } from 'node:fs/promises'
import path from 'node:path'

/** A server's public key as it came over the wire. */
export interface PublicKey {
  /** Key type from the blob: `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`… */
  type: string
  blob: Buffer
  /** As OpenSSH prints it: `SHA256:` + base64 without padding. */
  fingerprint: string
}

/** Reads the key type out of an SSH wire-format public key (string type, then key data). */
export function parsePublicKey(blob: Buffer): PublicKey {
  let type = 'unknown'
  if (blob.length >= 4) {
    const length = blob.readUInt32BE(0)
    if (length > 0 && length < 64 && 4 + length <= blob.length) type = blob.subarray(4, 4 + length).toString('latin1')
  }
  return { type, blob, fingerprint: fingerprint(blob) }
}

export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`
}

/** The name known_hosts uses: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(hostname: string, port: number): string {
  return port === 22 ? hostname : `[${hostname}]:${port}`
}

export interface KnownHostsEntry {
  file: string
  line: number
  marker?: 'revoked' | 'cert-authority'
  hosts: string
  type: string
  blob: Buffer
}

/** Parses a known_hosts file; bad lines are skipped as OpenSSH does. */
export function parseKnownHosts(text: string, file: string): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = []
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const trimmed = lines[i].trim()
    if (!trimmed || trimmed.startsWith('#')) continue
    const fields = trimmed.split(/\s+/)
    let marker: KnownHostsEntry['marker']
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') {
      marker = fields[0] === '@revoked' ? 'revoked' : 'cert-authority'
      fields.shift()
    } else if (fields[0]?.startsWith('@')) {
      continue
    }
    const [hosts, type, key] = fields
    if (!hosts || !type || !key) continue
    const blob = Buffer.from(key, 'base64')
    if (blob.length === 0) continue
    entries.push({ file, line: i + 1, marker, hosts, type, blob })
  }
  return entries
}

/**
 * Parsed known_hosts by file, reused while the text is the same: every host of a fleet reads the same file,
 * and parsing it per host made the client's cost per host grow with the fleet.
 */
const parsedFiles = new Map<string, { text: string; entries: KnownHostsEntry[] }>()

/** Reads known_hosts files; missing ones are empty. */
export async function readKnownHosts(files: string[]): Promise<KnownHostsEntry[]> {
  const entries: KnownHostsEntry[] = []
  for (const file of files) {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw error
    }
    let parsed = parsedFiles.get(file)
    if (parsed?.text !== text) {
      parsed = { text, entries: parseKnownHosts(text, file) }
      parsedFiles.set(file, parsed)
    }
    entries.push(...parsed.entries)
  }
  return entries
}

/** Compiled wildcard patterns: a fleet matches the same known_hosts patterns once per host. */
const globRegexes = new Map<string, RegExp>()

/** Glob of ssh patterns: `*` and `?`, case-insensitive. */
function globMatch(pattern: string, name: string): boolean {
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern.toLowerCase() === name.toLowerCase()
  let regex = globRegexes.get(pattern)
  if (!regex) {
    regex = new RegExp(
      `^${pattern
        .split('')
        .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('')}$`,
      'i',
    )
    globRegexes.set(pattern, regex)
  }
  return regex.test(name)
}

function hashedMatch(entry: string, name: string): boolean {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  const parts = entry.split('|')
  if (parts.length !== 4 || parts[1] !== '1') return false
  const salt = Buffer.from(parts[2], 'base64')
  const expected = Buffer.from(parts[3], 'base64')
  const actual = createHmac('sha1', salt).update(name).digest()
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}

/** Does the host field of an entry (comma list, wildcards, `!negation`, hashed) cover `name`? */
export function hostsFieldMatches(hosts: string, name: string): boolean {
  if (hosts.startsWith('|')) return hashedMatch(hosts, name)
  let matched = false
  for (const pattern of hosts.split(',')) {
    if (!pattern) continue
    if (pattern.startsWith('!')) {
      if (globMatch(pattern.slice(1), name)) return false
    } else if (globMatch(pattern, name)) {
      matched = true
    }
  }
  return matched
}

export type HostKeyStatus =
  | { status: 'known'; entry: KnownHostsEntry }
  | { status: 'revoked'; entry: KnownHostsEntry }
  | { status: 'changed'; entries: KnownHostsEntry[] }
  | { status: 'unknown'; otherTypes: string[] }

/** Checks a server key against known_hosts entries for `hostname:port`. */
export function checkKnownHost(entries: KnownHostsEntry[], hostname: string, port: number, key: PublicKey): HostKeyStatus {
  const name = knownHostsName(hostname, port)
  const matching = entries.filter((entry) => entry.marker !== 'cert-authority' && hostsFieldMatches(entry.hosts, name))
  const revoked = matching.find((entry) => entry.marker === 'revoked' && entry.blob.equals(key.blob))
  if (revoked) return { status: 'revoked', entry: revoked }
  const hosts = matching.filter((entry) => entry.marker === undefined)
  const same = hosts.find((entry) => entry.type === key.type && entry.blob.equals(key.blob))
  if (same) return { status: 'known', entry: same }
  const changed = hosts.filter((entry) => entry.type === key.type)
  if (changed.length > 0) return { status: 'changed', entries: changed }
  return { status: 'unknown', otherTypes: [...new Set(hosts.map((entry) => entry.type))] }
}

/** Key types known for a host, to ask the server for one of those first (as OpenSSH orders HostKeyAlgorithms). */
export function knownKeyTypes(entries: KnownHostsEntry[], hostname: string, port: number): string[] {
  const name = knownHostsName(hostname, port)
  return [
    ...new Set(
      entries.filter((entry) => entry.marker === undefined && hostsFieldMatches(entry.hosts, name)).map((entry) => entry.type),
    ),
  ]
}

/** Appends `[host]:port type base64` to a known_hosts file (dir 0700, file 0600 when created). */
export async function appendKnownHost(file: string, hostname: string, port: number, key: PublicKey): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
  let prefix = ''
  try {
    const info = await stat(file)
    if (info.size > 0) {
      const text = await readFile(file)
      if (text[text.length - 1] !== 0x0a) prefix = '\n'
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  const line = `${prefix}${knownHostsName(hostname, port)} ${key.type} ${key.blob.toString('base64')}\n`
  await appendFile(file, line, { mode: 0o600 })
  // appendFile's mode only applies when it creates the file; never loosen an existing one.
  const info = await stat(file)
  if ((info.mode & 0o077) !== 0 && info.size === Buffer.byteLength(line)) await chmod(file, 0o600)
}
