/** The Laravel recipe hooks into the common deploy: the plan keeps the whole order and the phases. */
import { describe, expect, it } from 'vitest'
import { laravel } from '../../recipes/laravel.js'
import { seedEnvScript, storageSkeletonScript, vendorsScript } from '../../recipes/laravel/scripts.js'
import type { Layout } from '../../recipes/common/layout.js'
import { use } from '../../src/dsl/tasks.js'
import { host } from '../../src/dsl/hosts.js'
import { buildPlan } from '../../src/plan/plan.js'
import { declare } from './helpers.js'

describe('the Laravel deploy plan', () => {
  it('is the common deploy with the Laravel steps hooked in, in order, with their phases', async () => {
    const registry = await declare(() => {
      use(laravel)
      host('web1', { deployPath: '/srv/app' })
    })
    const plan = buildPlan(registry, 'deploy', [...registry.hosts.values()])
    expect(plan.steps.map((s) => `${s.task.name}:${s.phase}`)).toEqual([
      'deploy:info:prepare',
      'deploy:setup:prepare',
      'deploy:lock:prepare',
      'deploy:release:prepare',
      'deploy:update_code:prepare',
      'deploy:env:prepare',
      'deploy:shared:prepare',
      'deploy:writable:prepare',
      'deploy:vendors:prepare',
      'artisan:storage:link:prepare',
      'artisan:config:cache:prepare',
      'artisan:route:cache:prepare',
      'artisan:view:cache:prepare',
      'artisan:event:cache:prepare',
      'laravel:caches:prepare',
      'artisan:migrate:prepare',
      'deploy:clear_paths:prepare',
      'deploy:verify:prepare',
      'deploy:prepared:prepare',
      'deploy:symlink:switch',
      'php-fpm:reload:post-switch',
      'laravel:queue_restart:post-switch',
      'deploy:healthcheck:post-switch',
      'deploy:unlock:finish',
      'deploy:cleanup:finish',
      'deploy:success:finish',
    ])
  })
})

describe('the Laravel scripts read the common layout', () => {
  const layout: Layout = {
    deployPath: '/srv/app',
    depDir: '/srv/app/.dep',
    lockDir: '/srv/app/.dep/deploy.lock',
    ledgerFile: '/srv/app/.dep/releases_log',
    repoDir: '/srv/app/.dep/repo',
    sharedDir: '/srv/app/shared',
    releasesDir: '/srv/builds',
    currentPath: '/var/www/html',
    releaseLink: '/srv/app/release',
    capistranoLog: '/srv/app/revisions.log',
  }

  it('copies vendor/ from current_path (not deploy_path/current), and finds composer.phar in .dep', () => {
    const text = vendorsScript({ layout, releasePath: '/srv/builds/3', php: 'php', composerOptions: '--no-dev', copyVendors: true }).toString()
    expect(text).toContain('if [ -d /var/www/html/vendor ] && [ ! -d vendor ]; then cp -a /var/www/html/vendor vendor; fi')
    expect(text).toContain('elif [ -f /srv/app/.dep/composer.phar ]; then')
    expect(text).toContain('cd /srv/builds/3\n')
  })

  it('seeds and skeletons shared/ from the layout', () => {
    expect(seedEnvScript(layout, '/srv/builds/3').toString()).toContain('if [ ! -f /srv/app/shared/.env ] && [ -f /srv/builds/3/.env.example ]')
    expect(storageSkeletonScript(layout).toString()).toMatch(/^mkdir -p \/srv\/app\/shared\/storage\/app\/public /)
  })
})
