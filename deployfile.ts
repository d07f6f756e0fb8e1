// The demo deploy: `npx dep deploy` publishes examples/hello into .deploy/hello
// on this machine, with a releases/ + current layout.
import { localhost, set, task, run, upload, get, info } from 'deployfile'

set('deploy_path', `${process.cwd()}/.deploy/hello`)
set('keep_releases', 3)

localhost('localhost', { labels: { stage: 'demo' } })

task('deploy:release', async (ctx) => {
  const name = String(Date.now())
  ctx.set('release_name', name)
  await run`mkdir -p ${await get('deploy_path')}/releases`
}).desc('Creates the release directory name')

task('deploy:update_code', async () => {
  await upload(`${process.cwd()}/examples/hello`, '{{deploy_path}}/releases/{{release_name}}')
}).desc('Copies examples/hello into the release')

task('deploy:symlink', async () => {
  await run('cd {{deploy_path}} && ln -sfn releases/{{release_name}} current.tmp && mv -T current.tmp current')
  info(`current → releases/${await get('release_name')}`)
}).desc('Switches current to the new release')

task('deploy', ['deploy:release', 'deploy:update_code', 'deploy:symlink']).desc('Publishes examples/hello')
