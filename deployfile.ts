// The demo deploy: `npx dep deploy` publishes examples/hello into .deploy/hello
// on this machine with the common recipe: releases/, an atomic `current` link,
// a lock, a release ledger and automatic rollback.
import { localhost, set, use } from 'deployfile'
import { common } from 'deployfile/recipes/common'

use(common)

set('deploy_path', `${import.meta.dirname ?? process.cwd()}/.deploy/hello`)
set('update_code_strategy', 'upload')
set('upload_path', `${import.meta.dirname ?? process.cwd()}/examples/hello`)
set('keep_releases', 3)
set('shared_dirs', ['logs'])

localhost('localhost', { labels: { stage: 'demo' } })
