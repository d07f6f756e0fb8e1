/** The common recipe as a plan, and a dry run of `deploy` on the MemoryTransport. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { common } from '../../recipes/common.js'
import { use } from '../../src/dsl/tasks.js'
import { set } from '../../src/dsl/settings.js'
import { host } from '../../src/dsl/hosts.js'
import type { Registry } from '../../src/model/registry.js'
import { buildPlan } from '../../src/plan/plan.js'
import type { Responder } from '../../src/transport/memory/memory-transport.js'
import { declare, ofType, runPlan } from './helpers.js'

const sandbox = mkdtempSync(join(tmpdir(), 'df-common-'))
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

const uploadDir = join(sandbox, 'build')
mkdirSync(join(uploadDir, 'public'), { recursive: true })
writeFileSync(join(uploadDir, 'public', 'index.html'), '<h1>hi</h1>')

async function fleet(extra: () => void = () => {}): Promise<Registry> {
  return declare(() => {
    use(common)
    set('upload_path', uploadDir)
    set('user', 'tester')
    host('web[1:3]', { deployPath: '/srv/app' })
    extra()
  })
}

const plan = (registry: Registry, name: string) => buildPlan(registry, name, [...registry.hosts.values()])

describe('the deploy plan', () => {
  it('has the steps and phases in order', async () => {
    const p = plan(await fleet(), 'deploy')
    expect(p.steps.map((s) => [s.task.name, s.phase])).toEqual([
      ['deploy:info', 'prepare'],
      ['deploy:setup', 'prepare'],
      ['deploy:lock', 'prepare'],
      ['deploy:release', 'prepare'],
      ['deploy:update_code', 'prepare'],
      ['deploy:shared', 'prepare'],
      ['deploy:writable', 'prepare'],
      ['deploy:clear_paths', 'prepare'],
      ['deploy:verify', 'prepare'],
      ['deploy:prepared', 'prepare'],
      ['deploy:symlink', 'switch'],
      ['deploy:healthcheck', 'post-switch'],
      ['deploy:unlock', 'finish'],
      ['deploy:cleanup', 'finish'],
      ['deploy:success', 'finish'],
    ])
    expect(p.steps.every((s) => s.hosts.length === 3)).toBe(true)
  })

  it('the fail hook is deploy:failed: revert, reverted, unlock', async () => {
    const p = plan(await fleet(), 'deploy')
    expect(p.failSteps.map((s) => s.task.name)).toEqual(['deploy:revert', 'deploy:reverted', 'fleet:check', 'deploy:unlock'])
  })

  it('user hooks take the phase around the switch', async () => {
    const { after, before, task } = await import('../../src/dsl/tasks.js')
    const registry = await fleet(() => {
      task('reload-php', async () => {})
      task('warm-cache', async () => {})
      after('deploy:symlink', 'reload-php')
      before('deploy:symlink', 'warm-cache')
    })
    const phases = Object.fromEntries(plan(registry, 'deploy').steps.map((s) => [s.task.name, s.phase]))
    expect(phases['warm-cache']).toBe('prepare')
    expect(phases['reload-php']).toBe('post-switch')
  })

  it('use() twice applies the recipe once; deployfile values beat recipe defaults, before or after use()', async () => {
    let applied = 0
    const registry = await declare(() => {
      set('keep_releases', 2)
      use(common)
      use(common)
      set('writable_mode', 'chmod')
      const counting = () => void (applied += 1)
      use(counting)
      use(counting)
    })
    expect(applied).toBe(1)
    const config = registry.hostConfig(undefined)
    expect(await config.get('keep_releases')).toBe(2)
    expect(await config.get('writable_mode')).toBe('chmod')
    expect(await config.get('healthcheck_retries')).toBe(5)
    expect(registry.defaults.get('release_path')).toBe('{{deploy_path}}/releases/{{release_name}}')
    const overridden = registry.hostConfig(undefined, new Map([['keep_releases', 9]]))
    expect(await overridden.get('keep_releases')).toBe(9)
  })

  it('rollback and its fail hook', async () => {
    const p = plan(await fleet(), 'rollback')
    expect(p.steps.map((s) => s.task.name)).toEqual(['deploy:lock', 'rollback:switch', 'fleet:check', 'deploy:reverted', 'deploy:unlock'])
    expect(p.failSteps.map((s) => s.task.name)).toEqual(['fleet:check', 'deploy:unlock'])
  })
})

function probeAnswer(options: { lock?: 'taken' | 'held'; releases?: string; current?: string; ledger?: string[] } = {}): Responder {
  return {
    match: /@ledger_begin/,
    result: {
      stdout: [
        `@lock ${options.lock ?? 'taken'}`,
        ...(options.lock === 'held' ? ['@owner {"user":"alice","run_id":"other"}'] : []),
        '@now 1700000000',
        `@current ${options.current ?? 'releases/2'}`,
        ...(options.releases ?? '1 2').split(' ').map((name) => `@release\t1\t0\t\t${name}`),
        '@mv_t yes',
        '@ledger_begin',
        ...(options.ledger ?? []),
        '@ledger_end',
        '',
      ].join('\n'),
    },
  }
}

describe('a dry run of deploy on the MemoryTransport', () => {
  it('deploys release 3 on every host, switches with mv -fT, within the round-trip budget', async () => {
    const { outcome, transports, events } = await runPlan(await fleet(), 'deploy', { responders: [probeAnswer()], dryRun: true })
    expect(outcome.error).toBeUndefined()
    expect(outcome.status).toBe('success')
    expect([...transports.keys()]).toEqual(['web1', 'web2', 'web3'])
    for (const [alias, transport] of transports) {
      const all = transport.scripts.join('\n')
      expect(all, alias).toContain("mkdir -- /srv/app/releases/3\nln -sfn -- releases/3 /srv/app/release")
      expect(all, alias).toContain('tar -x -f - -C /srv/app/releases/3')
      expect(all, alias).toContain('"release":"3","status":"prepared"')
      expect(all, alias).not.toContain('releases/4')
      const switchScript = transport.scripts.find((s) => s.includes('"status":"live"'))
      expect(switchScript, alias).toBeDefined()
      expect(switchScript).toContain('ln -sfn -- releases/3 /srv/app/current.deployfile-tmp && mv -fT -- /srv/app/current.deployfile-tmp /srv/app/current')
      // The round-trip budget of a plain upload deploy.
      expect(transport.operations.length, alias).toBeLessThanOrEqual(6)
    }
    const success = ofType(events, 'log').filter((e) => e.task === 'deploy:success').map((e) => e.message)
    expect(success.sort()).toEqual(['release 3 would go live on web1', 'release 3 would go live on web2', 'release 3 would go live on web3'])
    expect(ofType(events, 'lock:taken')).toHaveLength(3)
    expect(ofType(events, 'lock:released')).toHaveLength(3)
  })

  it('the release name is one more than the highest release on any host', async () => {
    const { transports } = await runPlan(await fleet(), 'deploy', {
      dryRun: true,
      responders: (h) => [
        probeAnswer({
          releases: h.alias === 'web2' ? '1 2 7' : '1 2',
          ledger: h.alias === 'web3' ? ['{"release":"9","status":"failed","at":"2024-01-01T00:00:00Z"}'] : [],
        }),
      ],
    })
    for (const transport of transports.values()) expect(transport.scripts.join('\n')).toContain('mkdir -- /srv/app/releases/10\n')
  })

  it('a dry run takes no lock: a held one is named as what would stop a real run, and the plan still prints', async () => {
    const { outcome, transports, events } = await runPlan(await fleet(), 'deploy', { dryRun: true, responders: [probeAnswer({ lock: 'held' })] })
    expect(outcome.exitCode).toBe(0)
    expect(ofType(events, 'log').filter((e) => e.level === 'warning' && /a real run would stop here \(exit 4\)/.test(e.message)).map((e) => e.host)).toEqual(['web1', 'web2', 'web3'])
    for (const transport of transports.values()) expect(transport.scripts.join('\n')).not.toContain('mv -T -- /srv/app/.dep/deploy.lock.')
  })

  it('the lock is taken on the leader first; the lock held there stops everyone with exit 4', async () => {
    // A real run (the remote side is the recording transport): a dry run never takes the lock.
    const { outcome, transports, events } = await runPlan(await fleet(), 'deploy', {
      responders: [probeAnswer({ lock: 'held' })],
    })
    expect(outcome.exitCode).toBe(4)
    expect(outcome.failure).toMatchObject({ task: 'deploy:lock', host: 'web1', phase: 'prepare' })
    expect(ofType(events, 'lock:held').map((e) => e.host)).toEqual(['web1'])
    // Only the leader probed with the lock; the others never tried.
    const lockProbes = (alias: string) => transports.get(alias)?.scripts.filter((s) => s.includes('mv -T -- /srv/app/.dep/deploy.lock.')).length ?? 0
    expect([lockProbes('web1'), lockProbes('web2'), lockProbes('web3')]).toEqual([1, 0, 0])
    // Nothing was created anywhere.
    for (const transport of transports.values()) expect(transport.scripts.join('\n')).not.toContain('mkdir -- /srv/app/releases/3')
  })

  it('a failure before the switch discards the release everywhere and unlocks', async () => {
    const registry = await fleet(() => set('healthcheck_command', 'php artisan about'))
    const { outcome, transports, events } = await runPlan(registry, 'deploy', {
      dryRun: true,
      responders: (h) => [probeAnswer(), ...(h.alias === 'web2' ? [{ match: /artisan about/, result: { code: 1, stderr: 'broken' } }] : [])],
    })
    expect(outcome.exitCode).toBe(1)
    expect(outcome.failure).toMatchObject({ task: 'deploy:verify', host: 'web2', phase: 'prepare' })
    expect(ofType(events, 'recovery:end')[0].ok).toBe(true)
    for (const [alias, transport] of transports) {
      const all = transport.scripts.join('\n')
      expect(all, alias).not.toContain('"status":"live"')
      expect(all, alias).toContain('rm -rf -- /srv/app/releases/3')
      expect(all, alias).toContain('"release":"3","status":"failed"')
      expect(all, alias).toContain('rm -rf -- /srv/app/.dep/deploy.lock')
    }
  })
})

describe('an overridden release_path and current_path (one layout for every builder)', () => {
  const moved = () => {
    set('release_path', '/srv/builds/{{release_name}}')
    set('current_path', '/var/www/html')
  }

  it('makes the release in release_path and links current_path to it with one rename', async () => {
    const answer = probeAnswer({ current: '/srv/builds/2', releases: '1 2' })
    const { outcome, transports } = await runPlan(await fleet(moved), 'deploy', { responders: [answer], dryRun: true })
    expect(outcome.error).toBeUndefined()
    for (const [alias, transport] of transports) {
      const all = transport.scripts.join('\n')
      expect(all, alias).toContain("mkdir -- /srv/builds/3\nln -sfn -- /srv/builds/3 /srv/app/release")
      expect(all, alias).toContain('tar -x -f - -C /srv/builds/3')
      expect(all, alias).toContain('ln -sfn -- /srv/builds/3 /var/www/html.deployfile-tmp && mv -fT -- /var/www/html.deployfile-tmp /var/www/html')
      expect(all, alias).not.toMatch(/\/srv\/app\/(releases|current)/)
    }
  })

  it('cleanup removes old releases from release_path, keeping the live one (read from current_path) and the one before', async () => {
    const answer = probeAnswer({ current: '/srv/builds/4', releases: '1 2 3 4' })
    const { transports } = await runPlan(await fleet(() => {
      moved()
      set('keep_releases', 1)
    }), 'deploy', { responders: [answer], dryRun: true })
    for (const transport of transports.values()) expect(transport.scripts.join('\n')).toContain('rm -rf -- /srv/builds/1 /srv/builds/2')
  })

  it.each([
    ['{{deploy_path}}/{{release_name}}', '{{deploy_path}}/current', /release_path puts releases in \/srv\/app, which holds deploy_path/],
    ['/srv/{{release_name}}', '{{deploy_path}}/current', /which holds deploy_path \/srv\/app/],
    ['{{deploy_path}}/releases/{{release_name}}', '{{deploy_path}}/releases/current', /current_path \/srv\/app\/releases\/current overlaps the releases directory/],
    ['{{deploy_path}}/releases/{{release_name}}', '/srv', /current_path \/srv overlaps/],
  ])('refuses release_path %s with current_path %s before touching a host', async (releasePath, currentPath, message) => {
    const registry = await fleet(() => {
      set('release_path', releasePath)
      set('current_path', currentPath)
    })
    const { outcome, transports } = await runPlan(registry, 'deploy', { responders: [probeAnswer()], dryRun: true })
    expect(outcome.exitCode).toBe(2)
    expect((outcome.error as Error).message).toMatch(message)
    for (const transport of transports.values()) expect(transport.scripts.join('\n')).not.toContain('@ledger_begin')
  })
})
