/** Host selectors. */
import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/model/errors.js'
import { Host } from '../../src/model/host.js'
import { compileSelector, selectHosts } from '../../src/plan/selector.js'

const hosts = [
  new Host('web1', { labels: { stage: 'prod', role: 'web' } }),
  new Host('web2', { labels: { stage: 'prod', role: 'web' } }),
  new Host('worker1', { labels: { stage: 'prod', role: 'worker' } }),
  new Host('db1', { labels: { stage: 'prod', role: 'db' } }),
  new Host('staging', { labels: { stage: 'staging', role: 'web' } }),
  new Host('bare'),
]
const aliases = (selected: Host[]) => selected.map((h) => h.alias)
const select = (...selectors: string[]) => aliases(selectHosts(hosts, selectors))

describe('selectHosts', () => {
  it('no selector selects every host', () => {
    expect(select()).toEqual(['web1', 'web2', 'worker1', 'db1', 'staging', 'bare'])
  })

  it('all selects every host', () => {
    expect(select('all')).toEqual(aliases(hosts))
  })

  it('an alias selects that host', () => {
    expect(select('worker1')).toEqual(['worker1'])
  })

  it('k=v', () => {
    expect(select('stage=staging')).toEqual(['staging'])
  })

  it('k!=v (hosts without the label match too)', () => {
    expect(select('stage!=prod')).toEqual(['staging', 'bare'])
  })

  it('k=a|b', () => {
    expect(select('role=worker|db')).toEqual(['worker1', 'db1'])
  })

  it('k!=a|b', () => {
    expect(select('role!=web|db')).toEqual(['worker1', 'bare'])
  })

  it(', is OR', () => {
    expect(select('db1,role=worker')).toEqual(['worker1', 'db1'])
  })

  it('& is AND', () => {
    expect(select('stage=prod&role=web')).toEqual(['web1', 'web2'])
  })

  it('& binds tighter than ,', () => {
    expect(select('stage=prod & role=web, alias=staging')).toEqual(['web1', 'web2', 'staging'])
  })

  it('spaces around operators are allowed', () => {
    expect(select('role = worker')).toEqual(['worker1'])
  })

  it('several selectors are OR-ed and keep declaration order, each host once', () => {
    expect(select('db1', 'web1', 'role=web')).toEqual(['web1', 'web2', 'db1', 'staging'])
  })

  it('alias=… works through the implicit label', () => {
    expect(select('alias=web2')).toEqual(['web2'])
  })

  it('an unknown alias is a ConfigError naming the nearest host', () => {
    let error: unknown
    try {
      select('web3')
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).message).toBe('Unknown host "web3".')
    expect((error as ConfigError).hint).toMatch(/Did you mean .*"web1"/)
    expect((error as ConfigError).exitCode).toBe(2)
  })

  it('a label selector matching nothing names the nearest label', () => {
    let error: unknown
    try {
      select('stage=prd')
    } catch (e) {
      error = e
    }
    expect((error as ConfigError).message).toBe('No host matches the selector "stage=prd".')
    expect((error as ConfigError).hint).toContain('"stage=prod"')
  })

  it('without a near name, the hint lists the hosts', () => {
    const error = (() => {
      try {
        select('zzzzzzzzzzzz')
      } catch (e) {
        return e as ConfigError
      }
    })()
    expect(error?.hint).toBe(
      'Hosts: web1 (stage=prod, role=web), web2 (stage=prod, role=web), worker1 (stage=prod, role=worker), db1 (stage=prod, role=db), staging (stage=staging, role=web), bare. Select by alias, key=value, key!=value, a|b; "," is OR, "&" is AND.',
    )
  })

  it('one failing selector among several is still an error', () => {
    expect(() => select('web1', 'nope-host')).toThrow(/Unknown host "nope-host"/)
  })

  it('no hosts at all is a ConfigError with a hint', () => {
    expect(() => selectHosts([], [])).toThrow(/declares no host/)
  })

  it('an empty selector is an error', () => {
    expect(() => compileSelector(' , ')).toThrow(/Empty host selector/)
  })
})

describe('compileSelector', () => {
  it('evaluates against a label record', () => {
    const match = compileSelector('stage=prod&role!=db')
    expect(match({ stage: 'prod', role: 'web', alias: 'x' })).toBe(true)
    expect(match({ stage: 'prod', role: 'db', alias: 'x' })).toBe(false)
    expect(match({ role: 'web', alias: 'x' })).toBe(false)
  })
})
