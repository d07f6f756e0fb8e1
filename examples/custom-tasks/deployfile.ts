/**
 * Custom tasks: a local build uploaded to each host, typed settings of your
 * own, a once-only step, a limit, lazy values, and hooks on the recipe.
 *
 *   npx dep tree deploy      # see where the hooks land
 *   npx dep deploy --dry-run # the commands, without running them
 */
import { after, before, declareSetting, host, localhost, run, runLocally, set, task, test, use, within } from 'deployfile'
import { common } from 'deployfile/recipes/common'

// Your own settings: typed for the editor by declaration merging, and declared
// for the run, which checks every key and value (a typo is an error, not ignored).
declare module 'deployfile' {
  interface DeployConfig {
    slack_webhook: string
    build_dir: string
    node_version: string
  }
}
declareSetting('slack_webhook', { type: 'string', description: 'Where deploys are announced' })
declareSetting('build_dir', { type: 'string', description: 'Local build output, uploaded to each host' })
declareSetting('node_version', { type: 'string', description: 'node --version on the host' })

use(common)
set('build_dir', 'dist')
set('update_code_strategy', 'upload')
set('upload_path', '{{build_dir}}')
set('slack_webhook', process.env.SLACK_WEBHOOK ?? 'https://hooks.example.test/none')
// Computed once per host, when a task first reads it (with that task's context).
set('node_version', async (ctx) => ctx.run('node --version'))

host('app[1:2].example.test', { remoteUser: 'deploy', deployPath: '/srv/app', labels: { stage: 'prod' } })
localhost('local', { deployPath: '/tmp/custom-tasks-demo', labels: { stage: 'local' } })

task('build', async () => {
  // Runs on this machine, once, before anything is uploaded.
  await runLocally('npm run build')
}, { once: true, description: 'Builds the site locally' })
before('deploy:update_code', 'build')

task('app:check-node', async (ctx) => {
  ctx.info(`node ${await ctx.get('node_version')} on ${ctx.host.alias}`)
  if (!(await test`command -v node`)) throw new Error('node is not installed on this host')
}, { description: 'Checks the runtime on each host' })
before('deploy:symlink', 'app:check-node')

task('app:migrate', async (ctx) => {
  await within(await ctx.get('release_path'), async () => {
    await run`node scripts/migrate.js --env ${'production'}`
  })
}, { once: true, description: 'Migrates the database (one host)' })
before('deploy:symlink', 'app:migrate')

task('app:reload', async () => {
  await run('sudo systemctl reload app')
}, { limit: 1, description: 'Reloads the app, one host at a time' })
after('deploy:symlink', 'app:reload')

task('notify', async (ctx) => {
  await runLocally`curl -fsS -X POST -d ${`deployed ${await ctx.get('release_name')}`} ${await ctx.get('slack_webhook')}`
}, { once: true, description: 'Tells the team' })
after('deploy:success', 'notify')
