/**
 * A Laravel application on three web servers and a queue worker, with the
 * Laravel recipe: code from git, composer on each host, caches built in the
 * new release, migrations once before the switch, an HTTP health check after
 * it, and a Slack message when a deploy went live.
 *
 * The .env is built from environment variables (in CI: repository secrets,
 * see ../github-actions/deploy.yml) and written to shared/.env on each host,
 * mode 0600; its values are masked in every output.
 *
 *   APP_KEY=… DB_PASSWORD=… npx dep deploy stage=prod
 *   npx dep deploy 'stage=prod&role=web'    # only the web servers
 *   npx dep artisan:migrate:status web1     # in the live release
 *   npx dep releases stage=prod             # the ledger of each host
 *   npx dep rollback stage=prod             # everyone back to the previous good release
 *
 * See docs/laravel.md for every setting and the order of the tasks.
 */
import { after, declareSetting, host, set, task, use } from 'deployfile'
import { laravel } from 'deployfile/recipes/laravel'

// A setting of our own: typed for the editor by declaration merging, and
// declared for the run, which refuses keys nobody declared (typos included).
declare module 'deployfile' {
  interface DeployConfig {
    /** Incoming webhook that hears about every deploy that went live. */
    slack_webhook: string
  }
}
declareSetting('slack_webhook', { type: 'string', description: 'Incoming webhook that hears about every deploy that went live.' })

use(laravel)

set('repository', 'git@github.com:acme/shop.git')
set('branch', 'main')
set('keep_releases', 5)

// shared/storage and the caches must be writable by PHP-FPM's user (acl mode, the default).
set('http_user', 'www-data')

// nginx serves current/public with $realpath_root, so no reload is needed for new code.
// With a plain $document_root, or OPcache's validate_timestamps off, reload PHP-FPM:
//   set('php_fpm_reload_command', 'sudo systemctl reload php8.2-fpm')

// After every host switched: each host's own /up must answer 2xx, or the whole fleet goes back.
set('healthcheck_url', 'https://{{hostname}}/up')
set('healthcheck_retries', 5)

/** A required environment variable; read only when a deploy needs the .env. */
function env(name: string): string {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set: export it, or add it to the repository secrets`)
  return value
}

// A function: computed once per host when a deploy reads it, so `dep list` and
// `dep config` work without the secrets (dep config shows "<computed at run time>").
set('dotenv', () => ({
  APP_NAME: 'Acme Shop',
  APP_ENV: 'production',
  APP_KEY: env('APP_KEY'),
  APP_DEBUG: 'false',
  APP_URL: 'https://shop.acme.test',
  LOG_CHANNEL: 'daily',
  LOG_LEVEL: 'warning',
  DB_CONNECTION: 'mysql',
  DB_HOST: 'db.acme.internal',
  DB_PORT: '3306',
  DB_DATABASE: 'shop',
  DB_USERNAME: 'shop_app',
  DB_PASSWORD: env('DB_PASSWORD'),
  CACHE_DRIVER: 'redis',
  SESSION_DRIVER: 'redis',
  QUEUE_CONNECTION: 'redis',
  REDIS_HOST: 'redis.acme.internal',
  REDIS_PASSWORD: process.env.REDIS_PASSWORD ?? 'null',
  MAIL_MAILER: 'smtp',
  MAIL_HOST: 'smtp.acme.test',
  MAIL_PASSWORD: process.env.MAIL_PASSWORD ?? '',
}))
set('slack_webhook', process.env.SLACK_WEBHOOK ?? '')

const defaults = {
  remoteUser: 'deploy',
  deployPath: '/var/www/shop',
  identityFile: '~/.ssh/deploy_ed25519',
}
host('web[1:3].acme.test', { ...defaults, labels: { stage: 'prod', role: 'web' } })
// The worker runs `php artisan queue:work` under systemd: `queue:restart` after the switch
// makes it pick up the new code. It serves no HTTP, so it has no health URL.
host('worker1.acme.test', {
  ...defaults,
  labels: { stage: 'prod', role: 'worker' },
  config: { queue_restart: true, healthcheck_url: '' },
})
host('staging.acme.test', { ...defaults, labels: { stage: 'staging', role: 'web' } })

// Front-end assets are built once, on the deploying machine (hosts need no Node),
// then copied into each new release right after its code.
task('assets:build', async (ctx) => {
  await ctx.runLocally('npm ci && npm run build', { timeout: 600 })
}, { once: true, phase: 'prepare', description: 'Builds public/build with Vite, locally' })
task('assets:upload', async (ctx) => {
  await ctx.upload('public/build', '{{release_path}}/public/build')
}, { phase: 'prepare', description: 'Copies public/build into the new release' })
after('deploy:update_code', 'assets:build')
after('assets:build', 'assets:upload')

// A message once the deploy is live (deploy:success runs on every host; `once` sends one).
task('notify:slack', async (ctx) => {
  const webhook = await ctx.get('slack_webhook')
  if (!webhook) return
  const release = await ctx.get('release_name')
  const who = await ctx.get('user')
  const response = await fetch(webhook, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text: `:rocket: shop release ${release} is live on ${ctx.hosts.length} hosts (by ${who})` }),
    signal: AbortSignal.timeout(10_000),
  })
  if (!response.ok) ctx.warning(`Slack answered ${response.status}`)
}, { once: true, description: 'Tells Slack the deploy is live' })
after('deploy:success', 'notify:slack')

// And when a deploy failed: nothing switched, or every switched host went back by itself.
task('notify:rollback', async (ctx) => {
  const webhook = await ctx.get('slack_webhook')
  if (!webhook) return
  await fetch(webhook, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text: `:warning: shop deploy failed on ${ctx.failure?.host ?? '?'} (${ctx.failure?.task ?? '?'}); every host is on its previous release` }),
    signal: AbortSignal.timeout(10_000),
  }).catch(() => undefined)
}, { once: true, hidden: true })
after('deploy:failed', 'notify:rollback')
