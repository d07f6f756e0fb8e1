/** Host patterns, Registry.addHost and host option validation. */
import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/model/errors.js'
import { expandHostPattern, Host } from '../../src/model/host.js'
import { Registry } from '../../src/model/registry.js'
import { host, localhost } from '../../src/dsl/hosts.js'
import { declare } from './helpers.js'

describe('expandHostPattern', () => {
  it('leaves a plain name alone', () => {
    expect(expandHostPattern('web.acme.test')).toEqual(['web.acme.test'])
  })

  it('expands a numeric range', () => {
    expect(expandHostPattern('web[1:3].acme.test')).toEqual(['web1.acme.test', 'web2.acme.test', 'web3.acme.test'])
  })

  it('keeps zero padding', () => {
    const names = expandHostPattern('web[01:10]')
    expect(names).toHaveLength(10)
    expect(names[0]).toBe('web01')
    expect(names[8]).toBe('web09')
    expect(names[9]).toBe('web10')
  })

  it('pads to the width of the start', () => {
    expect(expandHostPattern('n[008:011]')).toEqual(['n008', 'n009', 'n010', 'n011'])
  })

  it('does not pad [1:10]', () => {
    expect(expandHostPattern('w[9:10]')).toEqual(['w9', 'w10'])
  })

  it('expands letters', () => {
    expect(expandHostPattern('db[a:c]')).toEqual(['dba', 'dbb', 'dbc'])
  })

  it('a one-element range is allowed', () => {
    expect(expandHostPattern('x[5:5]')).toEqual(['x5'])
  })

  it('two ranges multiply, first range outermost', () => {
    expect(expandHostPattern('r[1:2]-[a:b]')).toEqual(['r1-a', 'r1-b', 'r2-a', 'r2-b'])
  })

  it.each([
    ['web[3:1]', /ends before it starts/],
    ['db[c:a]', /ends before it starts/],
    ['web[1:b]', /numbers \[1:3\] or letters/],
    ['web[ab:cd]', /not a range/],
    ['web[x]', /not a range/],
    ['web[1-3]', /not a range/],
  ])('rejects %s', (pattern, message) => {
    expect(() => expandHostPattern(pattern)).toThrow(ConfigError)
    expect(() => expandHostPattern(pattern)).toThrow(message)
  })
})

describe('Registry.addHost', () => {
  it('adds every expanded host in order', () => {
    const registry = new Registry()
    const hosts = registry.addHost('web[1:3]', { labels: { stage: 'prod' } })
    expect(hosts.map((h) => h.alias)).toEqual(['web1', 'web2', 'web3'])
    expect([...registry.hosts.keys()]).toEqual(['web1', 'web2', 'web3'])
    expect(hosts.every((h) => h.labels.stage === 'prod')).toBe(true)
  })

  it('zips a hostname with a range to the aliases', () => {
    const registry = new Registry()
    const hosts = registry.addHost('web[1:3]', { hostname: '10.0.0.[11:13]' })
    expect(hosts.map((h) => [h.alias, h.hostname])).toEqual([
      ['web1', '10.0.0.11'],
      ['web2', '10.0.0.12'],
      ['web3', '10.0.0.13'],
    ])
  })

  it('a plain hostname is shared by every alias', () => {
    const hosts = new Registry().addHost('a[1:2]', { hostname: 'bastion.test' })
    expect(hosts.map((h) => h.hostname)).toEqual(['bastion.test', 'bastion.test'])
  })

  it('rejects a hostname range of another length', () => {
    expect(() => new Registry().addHost('web[1:3]', { hostname: '10.0.0.[1:2]' })).toThrow(/different number of hosts/)
  })

  it('marks local hosts', () => {
    const registry = new Registry()
    expect(registry.addHost('localhost', {}, true)[0].local).toBe(true)
    expect(registry.addHost('remote', {})[0].local).toBe(false)
  })
})

describe('Host', () => {
  it('the hostname defaults to the alias', () => {
    expect(new Host('web1').hostname).toBe('web1')
  })

  it('labels include the alias', () => {
    expect(new Host('web1', { labels: { role: 'web' } }).labels).toEqual({ role: 'web', alias: 'web1' })
  })

  it('deployPath and config become host settings; deployPath wins over config.deploy_path', () => {
    const h = new Host('w', { deployPath: '/srv/a', config: { deploy_path: '/srv/b', branch: 'main' } })
    expect(h.config.get('deploy_path')).toBe('/srv/a')
    expect(h.config.get('branch')).toBe('main')
  })

  it('set() is chainable', () => {
    const h = new Host('w').set('branch', 'dev').set('keep_releases', 3)
    expect([...h.config.entries()].filter(([key]) => key !== 'alias' && key !== 'hostname')).toEqual([
      ['branch', 'dev'],
      ['keep_releases', 3],
    ])
  })

  it('an unknown option is an error with a suggestion', () => {
    let error: unknown
    try {
      new Host('web1', { remoteUsr: 'deploy' } as never)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).message).toContain('Unknown option "remoteUsr" for host web1')
    expect((error as ConfigError).hint).toContain('Did you mean "remoteUser"')
  })

  it.each([0, -1, 65536, 22.5, Number.NaN, '22'])('rejects port %j', (port) => {
    expect(() => new Host('web1', { port: port as number })).toThrow(/port must be a number from 1 to 65535/)
  })

  it.each([1, 22, 65535])('accepts port %j', (port) => {
    expect(new Host('web1', { port }).options.port).toBe(port)
  })

  it('rejects an unknown strictHostKeyChecking', () => {
    expect(() => new Host('w', { strictHostKeyChecking: 'no' as never })).toThrow(/strictHostKeyChecking/)
  })
})

describe('host() and localhost() in the DSL', () => {
  it('declare into the current registry, with their settings', async () => {
    const registry = await declare(() => {
      host('web[1:2]', { remoteUser: 'deploy', config: { branch: 'prod' } })
      localhost()
    })
    expect([...registry.hosts.keys()]).toEqual(['web1', 'web2', 'localhost'])
    expect(registry.hosts.get('web2')!.config.get('branch')).toBe('prod')
    expect(registry.hosts.get('localhost')!.local).toBe(true)
  })

  it('an unknown option fails at declaration time', async () => {
    const error = await declare(() => void host('web1', { deploy_path: '/x' } as never)).catch((e) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.message).toContain('Unknown option "deploy_path"')
    expect(error.hint).toContain('Did you mean "deployPath"')
  })
})
