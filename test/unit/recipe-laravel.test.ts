/** The Laravel recipe hooks into the common deploy: the plan keeps the whole order and the phases. */
import { describe, expect, it } from 'vitest'
import { laravel } from '../../recipes/laravel.js'
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
