/**
 * The PHP-FPM plugin against real nginx + php-fpm serving through the `current` link with
 * `$document_root`: after a switch, every worker that resolved `current/public/index.php` before
 * keeps running the previous release (PHP's realpath cache and OPcache key on that path); after a
 * deploy whose `php-fpm:reload` reloads php-fpm (SIGUSR2, what `systemctl reload` sends), every
 * answer is the new release. Deploys go to this machine through the built `dep`.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { currentOf, dep, writeDeployfile } from '../support/dep.js'
import { parseRelease, startWebServer, type WebServer } from '../support/web.js'

let root: string
let server: WebServer | undefined
const site = () => path.join(root, 'site')
const deployPath = () => path.join(root, 'srv')

/** Writes release `n` of the site: one PHP page naming it, slow on demand so requests can fill every worker. */
async function writeSite(n: number): Promise<void> {
  await mkdir(path.join(site(), 'public'), { recursive: true })
  await writeFile(path.join(site(), 'public/index.php'), `<?php\nif (isset($_GET['hold'])) usleep(400000);\necho "release: ${n}\\n";\n`)
}

async function deployRelease(n: number, reloadCommand?: string): Promise<string> {
  await writeSite(n)
  await writeDeployfile(
    root,
    `import { localhost, set, use } from 'deployfile'
import { common } from 'deployfile/recipes/common'
import { phpFpm } from 'deployfile/plugins/php-fpm'
use(common)
use(phpFpm)
localhost('web', { deployPath: ${JSON.stringify(deployPath())} })
set('upload_path', ${JSON.stringify(site())})
${reloadCommand ? `set('php_fpm_reload_command', ${JSON.stringify(reloadCommand)})` : ''}
`,
  )
  const r = await dep(['deploy'], { cwd: root })
  expect(r.code, r.output).toBe(0)
  expect(await currentOf(deployPath())).toBe(`releases/${n}`)
  return r.output
}

async function releaseServed(query = ''): Promise<string | undefined> {
  const response = await fetch(`${server!.url}/${query}`, { signal: AbortSignal.timeout(15_000) })
  return parseRelease(await response.text())
}

/** Requests that each hold a worker for a while, more than the pool has: every worker serves one. */
async function everyWorker(): Promise<Array<string | undefined>> {
  return Promise.all(Array.from({ length: 10 }, () => releaseServed('?hold=1')))
}

async function sequential(count: number): Promise<Array<string | undefined>> {
  const seen: Array<string | undefined> = []
  for (let i = 0; i < count; i++) seen.push(await releaseServed())
  return seen
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'df-php-fpm-'))
  await deployRelease(1)
  server = await startWebServer({ root: path.join(deployPath(), 'current/public'), fastcgiRoot: '$document_root' })
}, 120_000)

afterAll(async () => {
  await server?.stop()
  if (root) await rm(root, { recursive: true, force: true })
})

describe('php-fpm:reload with a $document_root setup', () => {
  it('without a reload, workers keep serving the previous release after the switch (the problem)', async () => {
    expect(await everyWorker()).toEqual(Array(10).fill('1'))
    const output = await deployRelease(2)
    expect(output).toContain('php-fpm:reload')
    // Every worker resolved current/ to releases/1 within realpath_cache_ttl (120 s): all stale.
    expect(await sequential(10)).toEqual(Array(10).fill('1'))
  }, 90_000)

  it('with php_fpm_reload_command, the deploy reloads php-fpm and every answer is the new release', async () => {
    await deployRelease(3, `kill -USR2 ${server!.pids.fpm}`)
    // The reload is graceful and asynchronous (as systemctl reload is): wait, bounded, for the new workers.
    const deadline = Date.now() + 30_000
    while ((await releaseServed()) !== '3' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    expect(await sequential(10)).toEqual(Array(10).fill('3'))
    expect(await everyWorker()).toEqual(Array(10).fill('3'))
  }, 90_000)
})
