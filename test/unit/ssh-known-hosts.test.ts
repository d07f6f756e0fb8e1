import { createHash, createHmac, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Host } from '../../src/model/host.js'
import {
  checkKnownHost,
  hostsFieldMatches,
  knownHostsName,
  parseKnownHosts,
  parsePublicKey,
  readKnownHosts,
} from '../../src/transport/ssh/known-hosts.js'
import { parseJumpSpec, resolveSettings } from '../../src/transport/ssh/settings.js'

/** A fake wire-format key blob: string type, then bytes. */
function blob(type: string, seed: string): Buffer {
  const name = Buffer.from(type)
  const length = Buffer.alloc(4)
  length.writeUInt32BE(name.length)
  return Buffer.concat([length, name, createHash('sha256').update(seed).digest()])
}

function hashed(name: string): string {
  const salt = randomBytes(20)
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

describe('known_hosts', () => {
  const ed = blob('ssh-ed25519', 'a')
  const edOther = blob('ssh-ed25519', 'b')
  const rsa = blob('ssh-rsa', 'c')

  it('reads the key type and the OpenSSH-style fingerprint from the wire blob', () => {
    const key = parsePublicKey(ed)
    expect(key.type).toBe('ssh-ed25519')
    expect(key.fingerprint).toBe(`SHA256:${createHash('sha256').update(ed).digest('base64').replace(/=+$/, '')}`)
    expect(key.fingerprint).not.toContain('=')
  })

  it('names non-22 ports [host]:port', () => {
    expect(knownHostsName('example.com', 22)).toBe('example.com')
    expect(knownHostsName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222')
  })

  it('matches comma lists, wildcards, negations and hashed names', () => {
    expect(hostsFieldMatches('web1,web2.example.com', 'web2.example.com')).toBe(true)
    expect(hostsFieldMatches('web1,web2', 'web3')).toBe(false)
    expect(hostsFieldMatches('*.example.com', 'WEB.example.com')).toBe(true)
    expect(hostsFieldMatches('*.example.com,!db.example.com', 'db.example.com')).toBe(false)
    expect(hostsFieldMatches('web?', 'web7')).toBe(true)
    expect(hostsFieldMatches('[127.0.0.1]:2222', '[127.0.0.1]:2222')).toBe(true)
    expect(hostsFieldMatches('127.0.0.1', '[127.0.0.1]:2222')).toBe(false)
    expect(hostsFieldMatches(hashed('[10.0.0.1]:2200'), '[10.0.0.1]:2200')).toBe(true)
    expect(hostsFieldMatches(hashed('[10.0.0.1]:2200'), '[10.0.0.1]:2201')).toBe(false)
    // Literal patterns are compared without a regex, still case-insensitively; a compiled wildcard is reused.
    expect(hostsFieldMatches('Web1.Example.com', 'web1.example.COM')).toBe(true)
    expect(hostsFieldMatches('web.example.com', 'webXexample.com')).toBe(false)
    expect(hostsFieldMatches('*.example.com', 'other.org')).toBe(false)
    expect(hostsFieldMatches('*.example.com', 'api.example.com')).toBe(true)
  })

  it('reads a known_hosts file again when its text changes (a parse is reused only for the same text)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'deployfile-known-hosts-'))
    const file = path.join(dir, 'changing_known_hosts')
    await writeFile(file, `[127.0.0.1]:2222 ssh-ed25519 ${ed.toString('base64')}\n`)
    const first = await readKnownHosts([file])
    expect(await readKnownHosts([file])).toEqual(first)
    expect(checkKnownHost(first, '127.0.0.1', 2222, parsePublicKey(ed)).status).toBe('known')
    await writeFile(file, `[127.0.0.1]:2222 ssh-ed25519 ${edOther.toString('base64')}\n`)
    const second = await readKnownHosts([file])
    expect(checkKnownHost(second, '127.0.0.1', 2222, parsePublicKey(ed)).status).toBe('changed')
    expect(await readKnownHosts([path.join(dir, 'missing')])).toEqual([])
    await rm(dir, { recursive: true, force: true })
  })

  it('tells known, unknown, changed and revoked keys apart', () => {
    const text = [
      '# comment',
      '',
      `[h]:2222,other ssh-ed25519 ${ed.toString('base64')} comment`,
      `@cert-authority * ssh-ed25519 ${edOther.toString('base64')}`,
      `changed.example ssh-ed25519 ${ed.toString('base64')}`,
      `rsaonly ssh-rsa ${rsa.toString('base64')}`,
      `@revoked * ssh-rsa ${rsa.toString('base64')}`,
      'garbage line',
    ].join('\n')
    const entries = parseKnownHosts(text, '/kh')
    expect(entries).toHaveLength(5)
    expect(checkKnownHost(entries, 'h', 2222, parsePublicKey(ed)).status).toBe('known')
    expect(checkKnownHost(entries, 'h', 22, parsePublicKey(ed)).status).toBe('unknown')
    const changed = checkKnownHost(entries, 'changed.example', 22, parsePublicKey(edOther))
    expect(changed.status).toBe('changed')
    // The @cert-authority line does not make edOther a known key.
    expect(checkKnownHost(entries, 'new.example', 22, parsePublicKey(edOther)).status).toBe('unknown')
    expect(checkKnownHost(entries, 'rsaonly', 22, parsePublicKey(rsa)).status).toBe('revoked')
    const otherType = checkKnownHost(entries, 'rsaonly', 22, parsePublicKey(ed))
    expect(otherType).toEqual({ status: 'unknown', otherTypes: ['ssh-rsa'] })
  })
})

describe('ssh settings', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'deployfile-ssh-settings-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('parses ProxyJump specs', () => {
    expect(parseJumpSpec('bastion')).toEqual({ host: 'bastion', user: undefined, port: undefined })
    expect(parseJumpSpec('ops@bastion:2200')).toEqual({ user: 'ops', host: 'bastion', port: 2200 })
    expect(parseJumpSpec('ssh://ops@[::1]:22')).toEqual({ user: 'ops', host: '::1', port: 22 })
    expect(() => parseJumpSpec('bastion:99999')).toThrow(/proxyJump/)
  })

  it('takes host options over ssh config over defaults, with ~ and % tokens and jump hosts from config', async () => {
    const home = path.join(dir, 'home')
    const config = path.join(dir, 'config')
    await writeFile(
      config,
      [
        'Host web*',
        '  HostName %h.internal',
        '  Port 2200',
        '  User deploy',
        '  IdentityFile ~/.ssh/web_%r',
        '  ProxyJump jump',
        '  StrictHostKeyChecking accept-new',
        'Host jump',
        '  HostName 203.0.113.7',
        '  User ops',
        '  IdentityFile ~/.ssh/jump_key',
        '  UserKnownHostsFile ~/.ssh/jump_known',
        '',
      ].join('\n'),
    )
    const ctx = { env: {}, homeDir: home, localUser: 'me' }
    const fromConfig = await resolveSettings(new Host('web1', { sshConfigFile: config, useSshConfig: false }), ctx)
    expect(fromConfig).toMatchObject({ hostname: 'web1.internal', port: 2200, user: 'deploy', strict: 'accept-new', maxChannels: 8, connectTries: 3 })
    expect(fromConfig.identityFiles.map((id) => id.display)).toEqual(['~/.ssh/web_deploy'])
    expect(fromConfig.knownHostsFiles[0]).toBe(path.join(home, '.ssh/known_hosts'))
    expect(fromConfig.jumps).toHaveLength(1)
    expect(fromConfig.jumps[0]).toMatchObject({ hostname: '203.0.113.7', port: 22, user: 'ops', role: 'jump host' })
    expect(fromConfig.jumps[0].identityFiles.map((id) => id.display)).toEqual(['~/.ssh/jump_key', '~/.ssh/web_deploy'])
    expect(fromConfig.jumps[0].knownHostsFiles[0]).toBe(path.join(home, '.ssh/jump_known'))

    const overridden = await resolveSettings(
      new Host('web1', { sshConfigFile: config, useSshConfig: false, hostname: '10.0.0.1', port: 22, remoteUser: 'root', proxyJump: 'none', strictHostKeyChecking: 'yes', identityFile: '/k' }),
      ctx,
    )
    expect(overridden).toMatchObject({ hostname: '10.0.0.1', port: 22, user: 'root', strict: 'yes', jumps: [] })
    expect(overridden.identityFiles.map((id) => id.path)).toEqual(['/k', path.join(home, '.ssh/web_root')])

    const plain = await resolveSettings(new Host('db1', { useSshConfig: false }), ctx)
    expect(plain).toMatchObject({ hostname: 'db1', port: 22, user: 'me', strict: 'yes' })
    // No key named anywhere: the default identities, skipped silently when missing.
    expect(plain.identityFiles.every((id) => id.optional)).toBe(true)
  })

  it('a key file and a known_hosts file given by the environment (the GitHub Action) apply to every host', async () => {
    const home = path.join(dir, 'home')
    const ctx = { env: { DEPLOYFILE_SSH_KEY_FILE: '/run/key', DEPLOYFILE_SSH_KNOWN_HOSTS: '/run/known_hosts' }, homeDir: home, localUser: 'me' }
    const plain = await resolveSettings(new Host('db1', { useSshConfig: false }), ctx)
    // The key comes first and replaces the default identities, as a key named in ssh config would.
    expect(plain.identityFiles.map((id) => [id.path, id.optional])).toEqual([['/run/key', false]])
    expect(plain.knownHostsFiles).toEqual([path.join(home, '.ssh/known_hosts'), '/etc/ssh/ssh_known_hosts', '/run/known_hosts'])
    const explicit = await resolveSettings(new Host('db1', { useSshConfig: false, identityFile: '/k', knownHostsFile: '/kh' }), ctx)
    expect(explicit.identityFiles.map((id) => id.path)).toEqual(['/run/key', '/k'])
    expect(explicit.knownHostsFiles).toEqual(['/kh', '/run/known_hosts'])
  })
})
