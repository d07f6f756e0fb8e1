/**
 * The PHP-FPM plugin's commands, through the memory transport: nothing when not configured, a
 * systemd reload (sudo unless root) for `php_fpm_service`, the user's own command when given,
 * hooked after the switch and after a revert, with its settings declared for `dep config`.
 */
import { describe, expect, it } from 'vitest'
import { phpFpm, phpFpmReloadCommand } from '../../plugins/php-fpm.js'
import { common } from '../../recipes/common.js'
import { laravel } from '../../recipes/laravel.js'
import { use } from '../../src/dsl/tasks.js'
import { set } from '../../src/dsl/settings.js'
import { host } from '../../src/dsl/hosts.js'
import { buildPlan } from '../../src/plan/plan.js'
import { declare, runPlan } from './helpers.js'

async function reloadScripts(settings: () => void): Promise<string[]> {
  const registry = await declare(() => {
    use(common)
    use(phpFpm)
    host('web1', { deployPath: '/srv/app' })
    settings()
  })
  const { outcome, transports } = await runPlan(registry, 'php-fpm:reload')
  expect(outcome.status).toBe('success')
  return transports.get('web1')!.scripts
}

describe('the PHP-FPM plugin', () => {
  it('does nothing until configured ($realpath_root setups need no reload)', async () => {
    expect(await reloadScripts(() => {})).toEqual([])
    expect(phpFpmReloadCommand({})).toBeUndefined()
  })

  it('reloads the php_fpm_service unit with systemctl, through sudo -n unless root, the name quoted when it must be', async () => {
    const scripts = await reloadScripts(() => set('php_fpm_service', 'php8.2-fpm'))
    expect(scripts).toHaveLength(1)
    expect(scripts[0]).toContain(`if [ "$(id -u)" -eq 0 ]; then systemctl reload php8.2-fpm; else sudo -n systemctl reload php8.2-fpm; fi`)
    expect(String(phpFpmReloadCommand({ service: "x'; rm -rf /" }))).toContain(`systemctl reload 'x'\\''; rm -rf /'`)
  })

  it('runs php_fpm_reload_command instead when given (e.g. cachetool), even with a service set', async () => {
    const scripts = await reloadScripts(() => {
      set('php_fpm_service', 'php8.2-fpm')
      set('php_fpm_reload_command', 'cachetool opcache:reset --fcgi=/run/php/php8.2-fpm.sock')
    })
    expect(scripts).toHaveLength(1)
    expect(scripts[0]).toContain('cachetool opcache:reset --fcgi=/run/php/php8.2-fpm.sock')
    expect(scripts[0]).not.toContain('systemctl')
  })

  it('runs after the switch and after hosts went back, with its settings declared (typed, described)', async () => {
    const registry = await declare(() => {
      use(common)
      use(phpFpm)
      host('web1', { deployPath: '/srv/app' })
    })
    const deploy = buildPlan(registry, 'deploy', [...registry.hosts.values()]).steps.map((s) => `${s.task.name}:${s.phase}`)
    expect(deploy.indexOf('php-fpm:reload:post-switch')).toBe(deploy.indexOf('deploy:symlink:switch') + 1)
    const rollback = buildPlan(registry, 'rollback', [...registry.hosts.values()]).steps.map((s) => s.task.name)
    expect(rollback.indexOf('php-fpm:reload')).toBe(rollback.indexOf('deploy:reverted') + 1)
    expect(registry.settings.get('php_fpm_service')).toMatchObject({ type: 'string', origin: 'declared', ask: expect.stringContaining('PHP-FPM service') })
    expect(registry.settings.get('php_fpm_service')?.description).toContain('$document_root')
    await expect(declare(() => {
      use(phpFpm)
      set('php_fpm_service', 8 as unknown as string)
    }).then((r) => r.checkSettings())).rejects.toThrow('php_fpm_service must be a string, got 8')
  })

  it('is what the Laravel recipe reloads with: one php-fpm:reload, php_fpm_service works there too', async () => {
    const registry = await declare(() => {
      use(laravel)
      use(phpFpm)
      host('web1', { deployPath: '/srv/app' })
      set('php_fpm_service', 'php8.3-fpm')
    })
    const deploy = buildPlan(registry, 'deploy', [...registry.hosts.values()]).steps.map((s) => s.task.name)
    expect(deploy.filter((name) => name === 'php-fpm:reload')).toHaveLength(1)
    const { transports } = await runPlan(registry, 'php-fpm:reload')
    expect(transports.get('web1')!.scripts.join('\n')).toContain('sudo -n systemctl reload php8.3-fpm')
  })
})
