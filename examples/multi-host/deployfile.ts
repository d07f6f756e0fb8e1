/**
 * A multi-host deploy with the common recipe: three web servers and a worker,
 * code from git, shared uploads, a health check before and after the switch.
 *
 *   npx dep deploy stage=prod            # every prod host
 *   npx dep deploy 'stage=prod&role=web' # only the web servers
 *   npx dep releases stage=prod          # the ledger of each host
 *   npx dep rollback stage=prod          # everyone back to the previous good release
 */
import { after, host, set, task, use } from 'deployfile'
import { common } from 'deployfile/recipes/common'

use(common)

set('repository', 'git@github.com:acme/site.git')
set('branch', 'main')
set('keep_releases', 5)
set('shared_dirs', ['public/uploads'])
set('shared_files', ['config/production.env'])
set('writable_dirs', ['public/uploads', 'tmp'])
set('writable_mode', 'acl')
set('http_user', 'www-data')

// Before anyone switches: the new release must answer its own smoke test.
set('healthcheck_command', './bin/smoke-test')
// After the switch: every host's site must answer, or the whole fleet goes back.
set('healthcheck_url', 'https://{{hostname}}/up')

const defaults = { remoteUser: 'deploy', deployPath: '/var/www/site', identityFile: '~/.ssh/deploy_ed25519' }
host('web[1:3].acme.test', { ...defaults, labels: { stage: 'prod', role: 'web' } })
host('worker1.acme.test', { ...defaults, labels: { stage: 'prod', role: 'worker' } })
host('staging.acme.test', { ...defaults, labels: { stage: 'staging', role: 'web' } })

// Only the workers restart their queue consumers, after the switch.
task('workers:restart', async (ctx) => {
  await ctx.run('sudo systemctl restart site-worker')
}, { select: 'role=worker', description: 'Restarts the queue workers' })
after('deploy:symlink', 'workers:restart')
