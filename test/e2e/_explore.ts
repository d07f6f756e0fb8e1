import { mkdtemp, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startSshServers } from '../support/sshd.js'
import { dep, writeDeployfile } from '../support/dep.js'
import { copyLaravelApp } from '../support/web.js'
const servers = await startSshServers(3)
try {
  const base = await mkdtemp(path.join(tmpdir(), 'lv-'))
  const app = path.join(base, 'v1'); await copyLaravelApp(app)
  const dp = (a: string) => path.join(servers.workDir, 'site', a)
  const db = path.join(dp('web1'), 'shared/database/database.sqlite')
  const hosts = ['web1','web2','web3'].map((a, i) => `host(${JSON.stringify(a)}, { ...${JSON.stringify(servers.hostOptions(i))}, deployPath: ${JSON.stringify(dp(a))}, labels: { stage: 'test' } })`).join('\n')
  const dir = path.join(base, 'proj')
  await writeDeployfile(dir, `
import { host, set, use } from 'deployfile'
import { laravel } from 'deployfile/recipes/laravel'
use(laravel)
set('update_code_strategy', 'upload')
set('upload_path', ${JSON.stringify(app)})
set('writable_mode', 'acl')
set('http_user', 'www-data')
set('dotenv', { APP_NAME: 'x', APP_ENV: 'production', APP_KEY: 'base64:Rh+mv/xKQxTp430BLz5IByGFTaamI6U/Ng4KJebCQGw=', APP_DEBUG: 'false', LOG_CHANNEL: 'single', DB_CONNECTION: 'sqlite', DB_DATABASE: ${JSON.stringify(db)}, DB_PASSWORD: 's3cr3t-value-123', CACHE_DRIVER: 'file', SESSION_DRIVER: 'file', QUEUE_CONNECTION: 'sync' })
${hosts}
`)
  for (const args of [['deploy'], ['deploy'], ['deploy', '--json'], ['artisan:migrate:status']]) {
    if (args.length && (await import('node:fs')).existsSync(dp('web1')+'/shared/storage/framework/sessions')) (await import('node:fs')).writeFileSync(dp('web1')+'/shared/storage/framework/sessions/rootfile', 'x')
    const t = Date.now()
    const r = await dep(args, { cwd: dir })
    console.log(args.join(' '), r.code, Date.now() - t, 'ms')
    console.log(args.includes('--json') ? r.stdout.split('\n').filter(l => l.includes('run:end') || l.includes('step:end')).join('\n') : r.output)
  }
} finally { await servers.stopAll() }
