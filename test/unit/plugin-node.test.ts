/**
 * The Node.js plugin on the common deploy: the plan (order, phases), and runs
 * on the MemoryTransport that show what each host is sent, what a failed
 * health check does (the fleet goes back and pm2 runs the old release
 * again), and the systemd variant, which cannot run here (no systemd).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { node } from '../../plugins/node.js'
import { use } from '../../src/dsl/tasks.js'
import { set } from '../../src/dsl/settings.js'
import { host } from '../../src/dsl/hosts.js'
import type { Registry } from '../../src/model/registry.js'
import { buildPlan } from '../../src/plan/plan.js'
import type { Responder } from '../../src/transport/memory/memory-transport.js'
import { declare, ofType, runPlan } from './helpers.js'

const appDir = mkdtempSync(join(tmpdir(), 'df-node-app-'))
afterAll(() => rmSync(appDir, { recursive: true, force: true }))

async function fleet(extra: () => void = () => {}): Promise<Registry> {
  return declare(() => {
    use(node)
    set('repository', 'https://git.example.test/api.git')
    set('user', 'tester')
    set('node_health_url', 'http://127.0.0.1:3000/health')
    host('api[1:2]', { deployPath: '/srv/api' })
    extra()
  })
}

/** The probe of deploy:lock: releases 1 and 2, 2 live. */
const probe: Responder = {
  match: /@ledger_begin/,
  result: {
    stdout: ['@lock taken', '@now 1700000000', '@current releases/2', '@release\t1\t0\t\t1', '@release\t1\t0\t\t2', '@mv_t yes', '@ledger_begin', '@ledger_end', ''].join('\n'),
  },
}
const gitExport: Responder = { match: /git -C .* archive/, result: { stdout: '@revision 0123abcd\n' } }
const healthy: Responder = { match: /--input-type=module/, result: { stdout: '@healthy 200\n' } }
const unhealthy: Responder = { match: /--input-type=module/, result: { stdout: '@unhealthy ECONNREFUSED\n' } }
const pm2Table: Responder = { match: /pm2 startOrReload/, result: { stdout: '[PM2] Applying action reloadProcessId on app [api]\n' } }

describe('the Node deploy plan', () => {
  it('is the common deploy with the Node steps hooked in, with their phases', async () => {
    const registry = await fleet()
    const plan = buildPlan(registry, 'deploy', [...registry.hosts.values()])
    expect(plan.steps.map((s) => `${s.task.name}:${s.phase}`)).toEqual([
      'deploy:info:prepare',
      'deploy:setup:prepare',
      'node:check:prepare',
      'deploy:lock:prepare',
      'deploy:release:prepare',
      'deploy:update_code:prepare',
      'node:build_local:prepare',
      'deploy:shared:prepare',
      'deploy:writable:prepare',
      'node:install:prepare',
      'deploy:clear_paths:prepare',
      'deploy:verify:prepare',
      'deploy:prepared:prepare',
      'deploy:symlink:switch',
      'node:restart:post-switch',
      'node:healthcheck:post-switch',
      'deploy:healthcheck:post-switch',
      'deploy:unlock:finish',
      'deploy:cleanup:finish',
      'deploy:success:finish',
    ])
    expect(plan.failSteps.map((s) => s.task.name)).toEqual(['deploy:revert', 'deploy:reverted', 'node:restart', 'fleet:check', 'deploy:unlock'])
  })

  it('rollback restarts the app on the release it goes back to', async () => {
    const registry = await fleet()
    const plan = buildPlan(registry, 'rollback', [...registry.hosts.values()])
    expect(plan.steps.map((s) => s.task.name)).toEqual(['node:check', 'deploy:lock', 'rollback:switch', 'fleet:check', 'deploy:reverted', 'node:restart', 'deploy:unlock'])
  })

  it('refuses a node_restart or node_build it does not know, naming the key, before the lock', async () => {
    for (const [key, value] of [['node_restart', 'forever'], ['node_build', 'cloud']] as const) {
      const { outcome, transports } = await runPlan(await fleet(() => set(key, value as never)), 'deploy', { responders: [probe] })
      expect(outcome.exitCode, key).toBe(2)
      expect((outcome.error as Error | undefined)?.message, key).toContain(key)
      for (const transport of transports.values()) expect(transport.scripts.join('\n')).not.toContain('deploy.lock')
    }
  })
})

describe('a Node deploy on the MemoryTransport', () => {
  it('installs in the release, reloads pm2 through current after the switch, then asks the health URL', async () => {
    const { outcome, transports } = await runPlan(await fleet(), 'deploy', { responders: [probe, gitExport, pm2Table, healthy] })
    expect(outcome.error).toBeUndefined()
    for (const [alias, transport] of transports) {
      const scripts = transport.scripts
      const install = scripts.findIndex((s) => s.includes('npm ci --omit=dev --no-audit --no-fund'))
      const switched = scripts.findIndex((s) => s.includes('"status":"live"'))
      const restart = scripts.findIndex((s) => s.includes('pm2 startOrReload /srv/api/current/ecosystem.config.cjs --cwd /srv/api/current --update-env\n'))
      const health = scripts.findIndex((s) => s.includes('http://127.0.0.1:3000/health 5 5000'))
      expect([install, switched, restart, health].every((i) => i >= 0), alias).toBe(true)
      expect(install < switched && switched < restart && restart < health, alias).toBe(true)
      expect(scripts[install], alias).toContain('cd /srv/api/releases/3\n')
      expect(scripts[install], alias).toContain('cmp -s /srv/api/current/package-lock.json package-lock.json')
    }
  })

  it('a failed health check on one host sends every host back, and pm2 runs the old release again', async () => {
    const { outcome, transports, events } = await runPlan(await fleet(), 'deploy', {
      responders: (h) => [probe, gitExport, pm2Table, h.alias === 'api2' ? unhealthy : healthy],
    })
    expect(outcome.exitCode).toBe(1)
    expect(outcome.failure).toMatchObject({ task: 'node:healthcheck', host: 'api2', phase: 'post-switch' })
    expect((outcome.error as Error | undefined)?.message).toBe('http://127.0.0.1:3000/health did not answer 2xx on api2 after 5 tries (ECONNREFUSED).')
    expect(ofType(events, 'recovery:end')[0].ok).toBe(true)
    for (const [alias, transport] of transports) {
      const scripts = transport.scripts
      const reverted = scripts.findIndex((s) => s.includes('"status":"failed"') && s.includes('@switched_back'))
      const restarts = scripts.flatMap((s, i) => (s.includes('pm2 startOrReload') ? [i] : []))
      // Once after the switch, once after going back (the revert sets current to releases/2 first).
      expect(restarts.length, alias).toBe(2)
      expect(reverted > restarts[0] && reverted < restarts[1], alias).toBe(true)
    }
  })

  it('a failure before the switch restarts nothing', async () => {
    const { outcome, transports } = await runPlan(await fleet(), 'deploy', {
      responders: (h) => [probe, gitExport, pm2Table, healthy, ...(h.alias === 'api1' ? [{ match: /npm ci/, result: { code: 1, stderr: 'npm ERR! lockfile out of sync' } }] : [])],
    })
    expect(outcome.failure).toMatchObject({ task: 'node:install', host: 'api1', phase: 'prepare' })
    for (const transport of transports.values()) expect(transport.scripts.join('\n')).not.toContain('pm2 startOrReload')
  })

  it('a pm2 process started from a release directory fails the deploy with what to fix', async () => {
    const pinned: Responder = { match: /pm2 startOrReload/, result: { stdout: '@pinned api /srv/api/releases/1/server.js\n' } }
    const { outcome } = await runPlan(await fleet(), 'deploy', { responders: [probe, gitExport, pinned, healthy] })
    expect(outcome.failure).toMatchObject({ task: 'node:restart', phase: 'post-switch' })
    expect((outcome.error as Error | undefined)?.message).toBe('pm2 runs api from /srv/api/releases/1/server.js: a release directory, not /srv/api/current, so it never picks up a new release.')
    expect((outcome.error as { hint?: string } | undefined)?.hint).toContain('pm2 delete api')
  })

  it('fork mode is a warning: a reload restarts it with a gap', async () => {
    const forked: Responder = { match: /pm2 startOrReload/, result: { stdout: '@fork api\n' } }
    const { outcome, events } = await runPlan(await fleet(), 'deploy', { responders: [probe, gitExport, forked, healthy] })
    expect(outcome.error).toBeUndefined()
    expect(ofType(events, 'log').filter((e) => e.level === 'warning' && /fork mode/.test(e.message)).map((e) => e.host).sort()).toEqual(['api1', 'api2'])
  })

  it('systemd (unit-tested only: no systemd in the sandbox): reload-or-restart with the systemctl command given', async () => {
    const registry = await fleet(() => {
      set('node_restart', 'systemd')
      set('systemd_unit', 'api.service')
      set('bin/systemctl', 'sudo systemctl')
    })
    const { outcome, transports } = await runPlan(registry, 'deploy', { responders: [probe, gitExport, healthy] })
    expect(outcome.error).toBeUndefined()
    for (const transport of transports.values()) {
      const all = transport.scripts.join('\n')
      expect(all).toContain('sudo systemctl reload-or-restart -- api.service\nsudo systemctl is-active --quiet -- api.service')
      expect(all).not.toContain('pm2')
    }
  })

  it('systemd without a unit is a configuration error (exit 2) naming the setting, before the lock', async () => {
    const { outcome, transports } = await runPlan(await fleet(() => set('node_restart', 'systemd')), 'deploy', { responders: [probe, gitExport, healthy] })
    expect(outcome.exitCode).toBe(2)
    expect((outcome.error as Error | undefined)?.message).toContain('systemd_unit is not set')
    for (const transport of transports.values()) expect(transport.scripts.join('\n')).not.toContain('deploy.lock')
  })

  it('node_build local with no upload_path is a configuration error before anything is uploaded', async () => {
    const { outcome, transports } = await runPlan(await fleet(() => set('node_build', 'local')), 'deploy', { responders: [probe, gitExport, healthy] })
    expect(outcome.exitCode).toBe(2)
    expect((outcome.error as Error | undefined)?.message).toContain('upload_path is not set')
    for (const transport of transports.values()) expect(transport.scripts.join('\n')).not.toContain('npm ci')
  })

  it('node_build local installs nothing on the hosts (a dry run says what it would build)', async () => {
    const { outcome, transports, events } = await runPlan(await fleet(() => {
      set('node_build', 'local')
      set('upload_path', appDir)
    }), 'deploy', { dryRun: true, responders: [probe, gitExport, healthy] })
    expect(outcome.error).toBeUndefined()
    expect(ofType(events, 'log').some((e) => e.message === `would build ${appDir} here and upload it`)).toBe(true)
    for (const transport of transports.values()) {
      const all = transport.scripts.join('\n')
      expect(all).not.toContain('npm ci')
      // The code is uploaded (from upload_path), not checked out on the host, though repository is set.
      expect(all).not.toContain('git -C')
      expect(all).toContain('tar -x -f - -C /srv/api/releases/3')
    }
  })
})
