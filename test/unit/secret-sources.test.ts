/** secretsFrom(): values a recipe derives from settings are masked from a run's first line (issue 11, item 4). */
import { describe, expect, it } from 'vitest'
import { secretsFrom, set } from '../../src/dsl/settings.js'
import { host } from '../../src/dsl/hosts.js'
import { RunState } from '../../src/executor/run-state.js'
import { loadSecretSources } from '../../src/executor/secret-sources.js'
import type { RunEvent } from '../../src/model/events.js'
import { MemoryTransport } from '../../src/transport/memory/memory-transport.js'
import { secretValuesOf } from '../../recipes/laravel/dotenv.js'
import { declare } from './helpers.js'

describe('secretsFrom', () => {
  it('runs each source once per host before the run, and reports one that fails without stopping', async () => {
    const registry = await declare(() => {
      // Settings of the user's own (untyped here).
      host('a', { config: { api_keys: { one: 'Key-Of-Host-A-1' } } })
      host('b', { config: { api_keys: { one: 'Key-Of-Host-B-1' } } })
      set('broken' as never, (() => {
        throw new Error('TOKEN is not set')
      }) as never)
      secretsFrom(async (config) => Object.values((await config.get('api_keys')) as Record<string, string>))
      secretsFrom(async (config) => [String(await config.get('broken'))])
    })
    const events: RunEvent[] = []
    const hosts = [...registry.hosts.values()]
    const state = new RunState(registry, hosts, {
      runId: 'r',
      overrides: new Map(),
      transportFor: (h) => new MemoryTransport(h),
      localTransportFor: (h) => new MemoryTransport(h),
      sink: (event) => events.push(event),
    })
    await loadSecretSources(state)
    expect(state.secrets.redact('Key-Of-Host-A-1 Key-Of-Host-B-1')).toBe('*** ***')
    const warnings = events.filter((e) => e.type === 'log' && e.level === 'warning')
    expect(warnings).toHaveLength(2)
    expect(JSON.stringify(warnings)).toContain('TOKEN is not set')
  })
})

describe("the Laravel recipe's .env values", () => {
  it('are secrets raw and as written, numbers of 4+ digits included, public keys and booleans not', () => {
    const values = secretValuesOf(
      [
        'APP_NAME=Shown',
        'APP_DEBUG=false',
        'DB_PORT=3306',
        'DB_PASSWORD="dbPASS\\"3\\$x"',
        "QUOTED='single $x'",
        'PIN=48213',
        'SHORT=123',
        'export MAIL_PASSWORD=plain-value # a comment',
        'MULTI="line1\\nline2-longer"',
      ].join('\n'),
    )
    expect(values).toEqual(
      expect.arrayContaining(['dbPASS"3$x', 'dbPASS\\"3\\$x', 'single $x', '48213', 'plain-value', 'line1\nline2-longer', 'line1\\nline2-longer']),
    )
    for (const shown of ['Shown', 'false', '3306', '123']) expect(values).not.toContain(shown)
  })
})
