/**
 * The Laravel recipe end to end: three real OpenSSH daemons on loopback, the
 * built `dep` binary, examples/laravel-app deployed from git and by upload,
 * composer and artisan on the hosts, and real nginx + php-fpm serving
 * `<deploy_path of web1>/current/public` while it happens.
 *
 * The three hosts are three deploy paths on this machine. Their .env points at
 * ONE SQLite file (in web1's shared/database/): that stands for the database
 * server a real fleet shares, which is why migrations run once, on one host.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chown, cp, mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { currentOf, dep, isLocked, ledgerOf, releasesOf, statusOf, writeDeployfile, type DepResult } from '../support/dep.js'
import { startSshServers, type SshServers } from '../support/sshd.js'
import { copyLaravelApp, LARAVEL_EXTRA_DIR, parseRelease, probeSite, startWebServer, type WebServer } from '../support/web.js'

const execFileAsync = promisify(execFile)

const ALIASES = ['web1', 'web2', 'web3']
/** A dotenv value that must never be shown anywhere. */
const SECRET = `s3cr3t-value-${randomBytes(8).toString('hex')}`
/** A fixed test-only key (the one of examples/laravel-app/.env.example). */
const APP_KEY = 'base64:Rh+mv/xKQxTp430BLz5IByGFTaamI6U/Ng4KJebCQGw='
const MIGRATIONS = ['2024_01_01_000000_create_deploys_table', '2024_01_02_000000_add_note_to_deploys_table']

let servers: SshServers
let web: WebServer
let base: string
let project: string
let repo: string
let v1Revision: string
let v2Revision: string
let appV2: string
let appBroken: string
/** Answers 500 to everything and remembers where web1's current pointed at each request. */
let unhealthy: Server
let unhealthyUrl: string
const unhealthySawCurrent: string[] = []
/** Every CLI output of this file, searched for the secret at the end. */
const outputs: Array<{ what: string; text: string }> = []

const deployPathOf = (alias: string) => path.join(servers.workDir, 'site', alias)
const deployPaths = () => ALIASES.map(deployPathOf)
const databaseFile = () => path.join(deployPathOf('web1'), 'shared/database/database.sqlite')

/** `dep …` in the project, with the secret in the environment (the deployfile builds the .env from it). */
async function depRun(args: string[], what = args.join(' '), env: Record<string, string> = {}): Promise<DepResult> {
  const result = await dep(args, { cwd: project, env: { DB_PASSWORD: SECRET, APP_KEY, ...env } })
  outputs.push({ what, text: result.output })
  return result
}

function deployfileText(): string {
  const hosts = ALIASES.map(
    (alias, index) =>
      `host(${JSON.stringify(alias)}, { ...${JSON.stringify(servers.hostOptions(index))}, deployPath: ${JSON.stringify(deployPathOf(alias))}, labels: { stage: 'test', role: 'web' } })`,
  )
  return `
import { host, set, use } from 'deployfile'
import { laravel } from 'deployfile/recipes/laravel'

use(laravel)

// upload by default; -o update_code_strategy=git deploys from the repository
set('update_code_strategy', 'upload')
set('upload_path', ${JSON.stringify(appV2)})
set('repository', ${JSON.stringify(repo)})
set('branch', 'main')
set('keep_releases', 3)
// acl, the default mode, with the web server's user named
set('http_user', 'www-data')
set('healthcheck_url', ${JSON.stringify(`${web.url}/up`)})
set('healthcheck_retries', 2)
set('healthcheck_timeout', 3)

// Built from the environment (as in CI, from repository secrets), lazily: only a
// deploy reads it, and \`dep config\` shows it as computed at run time.
function env(name: string): string {
  const value = process.env[name]
  if (!value) throw new Error(name + ' is not set')
  return value
}
set('dotenv', () => ({
  APP_NAME: process.env.APP_NAME_E2E ?? 'deployfile-e2e',
  APP_ENV: 'production',
  APP_KEY: env('APP_KEY'),
  APP_DEBUG: 'false',
  LOG_CHANNEL: 'single',
  DB_CONNECTION: 'sqlite',
  DB_DATABASE: ${JSON.stringify(databaseFile())},
  DB_PASSWORD: env('DB_PASSWORD'),
  CACHE_DRIVER: 'file',
  SESSION_DRIVER: 'file',
  QUEUE_CONNECTION: 'sync',
}))

${hosts.join('\n')}
`
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('git', ['-c', 'user.name=deployfile', '-c', 'user.email=e2e@deployfile.test', ...args], { cwd })
  return stdout.trim()
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await execFileAsync('chown', ['-R', `${uid}:${gid}`, dir])
  await chown(dir, uid, gid)
}

async function get(urlPath: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`${web.url}${urlPath}`, { signal: AbortSignal.timeout(10_000) })
  return { status: response.status, body: await response.text() }
}

/** The rows of Laravel's migrations table in the shared SQLite database. */
async function migrationsTable(): Promise<Array<{ migration: string; batch: number }>> {
  const code = `$db = new PDO('sqlite:' . $argv[1]); echo json_encode($db->query('select migration, batch from migrations order by id')->fetchAll(PDO::FETCH_ASSOC));`
  const { stdout } = await execFileAsync('php', ['-r', code, databaseFile()])
  return (JSON.parse(stdout) as Array<{ migration: string; batch: number | string }>).map((row) => ({ migration: row.migration, batch: Number(row.batch) }))
}

/** Every host on `release`, complete, unlocked, no `release` link left behind. */
async function expectFleetOn(release: string, context = ''): Promise<void> {
  for (const deployPath of deployPaths()) {
    const where = `${deployPath} ${context}`
    expect(await currentOf(deployPath), where).toBe(`releases/${release}`)
    expect(existsSync(path.join(deployPath, 'releases', release, 'vendor/autoload.php')), where).toBe(true)
    expect(existsSync(path.join(deployPath, 'release')), `${where}: no release link`).toBe(false)
    expect(isLocked(deployPath), `${where}: unlocked`).toBe(false)
  }
}

function events(result: DepResult): Array<Record<string, unknown>> {
  return result.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}

beforeAll(async () => {
  servers = await startSshServers(3)
  base = await mkdtemp(path.join(tmpdir(), 'deployfile-laravel-e2e-'))
  project = path.join(base, 'project')
  appV2 = path.join(base, 'app-v2')
  appBroken = path.join(base, 'app-broken')
  await copyLaravelApp(appV2, { overlays: ['v2'] })
  await copyLaravelApp(appBroken, { overlays: ['v2', 'broken'] })

  // A git repository the deploy user can read: v1 (tagged), then v2 on main.
  repo = path.join(servers.workDir, 'app-repo')
  await copyLaravelApp(repo)
  await git(repo, 'init', '--quiet', '-b', 'main')
  await git(repo, 'add', '-A')
  await git(repo, 'commit', '--quiet', '-m', 'v1')
  await git(repo, 'tag', 'v1')
  v1Revision = await git(repo, 'rev-parse', 'HEAD')
  await cp(path.join(LARAVEL_EXTRA_DIR, 'v2'), repo, { recursive: true })
  await git(repo, 'add', '-A')
  await git(repo, 'commit', '--quiet', '-m', 'v2: a new migration')
  v2Revision = await git(repo, 'rev-parse', 'HEAD')
  const owner = await stat(servers.workDir)
  await chownTree(repo, owner.uid, owner.gid)

  web = await startWebServer({ root: path.join(deployPathOf('web1'), 'current', 'public') })
  unhealthy = createServer((_request, response) => {
    void readlink(path.join(deployPathOf('web1'), 'current'))
      .catch(() => '(none)')
      .then((current) => {
        unhealthySawCurrent.push(current)
        response.statusCode = 500
        response.end('unhealthy on purpose')
      })
  })
  await new Promise<void>((resolve) => unhealthy.listen(0, '127.0.0.1', resolve))
  unhealthyUrl = `http://127.0.0.1:${(unhealthy.address() as AddressInfo).port}/up`

  await writeDeployfile(project, deployfileText())
}, 60_000)

afterAll(async () => {
  const pids = web ? [web.pids.nginx, web.pids.fpm] : []
  await web?.stop()
  await servers?.stopAll()
  await new Promise((resolve) => (unhealthy ? unhealthy.close(resolve) : resolve(undefined)))
  if (base) await rm(base, { recursive: true, force: true })
  for (const pid of pids) {
    let alive = true
    try {
      process.kill(pid, 0)
    } catch {
      alive = false
    }
    expect(alive, `web server process ${pid} still running`).toBe(false)
  }
})

describe('the Laravel recipe on three hosts behind nginx + php-fpm', () => {
  it('deploys v1 from git, then v2 with a new migration: the site answers release 2 and each migration ran once', async () => {
    const first = await depRun(['deploy', '-o', 'update_code_strategy=git', '--tag', 'v1'], 'deploy v1 (git, tag v1)')
    expect(first.code, first.output).toBe(0)
    await expectFleetOn('1')
    for (const deployPath of deployPaths()) {
      expect((await readFile(path.join(deployPath, 'releases/1/REVISION'), 'utf8')).trim()).toBe(v1Revision)
    }
    expect(await get('/')).toMatchObject({ status: 200 })
    expect(parseRelease((await get('/')).body)).toBe('1')
    expect(await migrationsTable()).toEqual([{ migration: MIGRATIONS[0], batch: 1 }])

    const second = await depRun(['deploy', '-o', 'update_code_strategy=git', '--json'], 'deploy v2 (git, main, --json)')
    expect(second.code, second.output).toBe(0)
    await expectFleetOn('2')
    for (const deployPath of deployPaths()) {
      const release = path.join(deployPath, 'releases/2')
      expect((await readFile(path.join(release, 'REVISION'), 'utf8')).trim()).toBe(v2Revision)
      // shared storage/ and .env linked in, caches baked for this release's own path
      expect(await readlink(path.join(release, 'storage'))).toBe('../../shared/storage')
      // the release's own .env from the dotenv setting (a 0600 file: it changes only with the switch)
      expect((await stat(path.join(release, '.env'))).mode & 0o777).toBe(0o600)
      expect(await readFile(path.join(release, '.env'), 'utf8')).toContain('APP_NAME=deployfile-e2e')
      const config = await readFile(path.join(release, 'bootstrap/cache/config.php'), 'utf8')
      expect(config).toContain(release)
      expect(existsSync(path.join(release, 'bootstrap/cache/routes-v7.php'))).toBe(true)
      expect(await readlink(path.join(release, 'public/storage'))).toContain('storage/app/public')
    }
    const home = await get('/')
    expect(home.status).toBe(200)
    expect(parseRelease(home.body)).toBe('2')
    expect(await get('/up')).toEqual({ status: 200, body: 'ok\n' })

    // Both migrations, each once, in its own batch; and the migration step ran on one host only.
    expect(await migrationsTable()).toEqual([
      { migration: MIGRATIONS[0], batch: 1 },
      { migration: MIGRATIONS[1], batch: 2 },
    ])
    const migrateHosts = events(second)
      .filter((e) => e.type === 'step:end' && e.task === 'artisan:migrate')
      .map((e) => e.host)
    expect(migrateHosts).toEqual(['web1'])

    // Outside a deploy, artisan tasks run in the live release.
    const status = await depRun(['artisan:migrate:status', 'web2'], 'artisan:migrate:status')
    expect(status.code, status.output).toBe(0)
    for (const migration of MIGRATIONS) expect(status.output).toMatch(new RegExp(`Yes\\s*\\|\\s*${migration}\\s*\\|\\s*\\d`))
  }, 90_000)

  it('a migration that fails switches nothing anywhere: still release 2, unlocked, release marked failed, exit 1', async () => {
    const before = await migrationsTable()
    const result = await depRun(['deploy', '-o', `upload_path=${appBroken}`], 'deploy with a failing migration', { APP_NAME_E2E: 'changed-by-a-failed-deploy' })
    expect(result.code, result.output).toBe(1)
    expect(result.output).toMatch(/artisan:migrate/)
    expect(result.output).toMatch(/fails on purpose/)
    await expectFleetOn('2')
    for (const deployPath of deployPaths()) {
      expect(await statusOf(deployPath, '3'), deployPath).toBe('failed')
      expect(existsSync(path.join(deployPath, 'releases/3')), `${deployPath}: release 3 removed`).toBe(false)
      // never switched: the ledger has no live line for it
      expect((await ledgerOf(deployPath)).filter((e) => e.release === '3').map((e) => e.status)).not.toContain('live')
    }
    expect(parseRelease((await get('/')).body)).toBe('2')
    expect(await migrationsTable()).toEqual(before)
    // The failed deploy changed nothing the live release reads, its .env included.
    for (const deployPath of deployPaths()) {
      expect(await readFile(path.join(deployPath, 'current/.env'), 'utf8')).toContain('APP_NAME=deployfile-e2e')
    }
  }, 60_000)

  it('a health check that fails after the switch puts every host back on release 2, exit 1', async () => {
    unhealthySawCurrent.length = 0
    const result = await depRun(['deploy', '-o', `healthcheck_url=${unhealthyUrl}`, '-o', 'healthcheck_retries=1'], 'deploy with a failing health check')
    expect(result.code, result.output).toBe(1)
    expect(result.output).toMatch(/Health check .* failed/)
    // The check ran after the switch: release 4 was live when it was asked.
    expect(unhealthySawCurrent.length).toBeGreaterThan(0)
    expect(unhealthySawCurrent[0]).toBe('releases/4')
    await expectFleetOn('2')
    for (const deployPath of deployPaths()) {
      expect(await statusOf(deployPath, '4'), deployPath).toBe('failed')
      expect(existsSync(path.join(deployPath, 'releases/4'))).toBe(false)
    }
    expect(parseRelease((await get('/')).body)).toBe('2')
    expect(await get('/up')).toMatchObject({ status: 200 })
  }, 60_000)

  it('serves every request with a 200 from a live release while 5 deploys run back to back', async () => {
    // Bounded in count and time; the time bound is generous so 5 deploys fit on a loaded 2-core machine.
    const probe = probeSite({ url: `${web.url}/`, durationMs: 280_000, maxRequests: 40_000, intervalMs: 5 })
    await probe.waitForRelease('2')
    const deployed: Array<{ release: string; start: number; end: number }> = []
    try {
      for (let i = 0; i < 5; i++) {
        const start = Date.now()
        // alternate the code strategies: upload (v2 directory) and git (main)
        const args = i % 2 === 0 ? ['deploy'] : ['deploy', '-o', 'update_code_strategy=git']
        const result = await depRun(args, `back-to-back deploy ${i + 1}`)
        const end = Date.now()
        expect(result.code, result.output).toBe(0)
        const current = (await currentOf(deployPathOf('web1')))!.replace('releases/', '')
        deployed.push({ release: current, start, end })
        await probe.waitForRelease(current)
      }
    } finally {
      await probe.stop()
    }
    const result = await probe.result
    console.info(
      `zero-downtime probe: ${result.total} requests in ${result.elapsedMs} ms, ${result.failures.length} failures, releases seen ${result.releasesSeen.map((s) => s.release).join(' → ')}`,
    )
    expect(result.failures, JSON.stringify(result.failures.slice(0, 5)) + (await web.logs())).toEqual([])
    expect(result.total).toBeGreaterThan(100)
    expect(deployed.map((d) => d.release)).toEqual(['5', '6', '7', '8', '9'])

    // Every response named a release that was live then: 2, then each deployed release in order.
    const seen = result.releasesSeen.map((s) => s.release)
    expect(seen).toEqual(['2', ...deployed.map((d) => d.release)])
    for (const sighting of result.releasesSeen.slice(1)) {
      const deploy = deployed.find((d) => d.release === sighting.release)!
      const at = result.startedAt + sighting.at
      // first seen while its own deploy ran (after it started, by the time it ended)
      expect(at).toBeGreaterThanOrEqual(deploy.start)
      expect(at).toBeLessThanOrEqual(deploy.end + 200)
    }
    await expectFleetOn('9')
    // keep_releases 3: the cleanup ran under load too
    for (const deployPath of deployPaths()) expect(await releasesOf(deployPath)).toEqual(['7', '8', '9'])
  }, 300_000)

  it('makes at most 9 round trips per host in a steady-state deploy (--json run:end)', async () => {
    const result = await depRun(['deploy', '--json'], 'deploy --json')
    expect(result.code, result.output).toBe(0)
    const end = events(result).find((e) => e.type === 'run:end') as { roundTrips: Record<string, number> } | undefined
    expect(end, result.output).toBeDefined()
    console.info(`round trips per host, one Laravel deploy: ${JSON.stringify(end!.roundTrips)}`)
    expect(Object.keys(end!.roundTrips).sort()).toEqual(ALIASES)
    // 9 on the host that migrates, 8 on the others (the .env goes with the queued commands, no SFTP).
    for (const alias of ALIASES) expect(end!.roundTrips[alias], alias).toBeLessThanOrEqual(9)
  }, 60_000)

  it('never shows a dotenv secret: plain, -v, -vv, --json, --log, dep config; the release .env is 0600', async () => {
    const logFile = path.join(base, 'deploy.log')
    const verbose = await depRun(['deploy', '-v'], 'deploy -v')
    expect(verbose.code, verbose.output).toBe(0)
    expect(verbose.output).toMatch(/composer/) // -v shows the commands
    const veryVerbose = await depRun(['deploy', '-vv', '--log', logFile], 'deploy -vv --log')
    expect(veryVerbose.code, veryVerbose.output).toBe(0)
    const log = await readFile(logFile, 'utf8')
    outputs.push({ what: 'log file', text: log })
    expect(log).toMatch(/deploy:vendors/)

    const config = await depRun(['config', 'web1'], 'dep config')
    expect(config.code, config.output).toBe(0)
    // The whole .env setting is masked in dep config, whatever its form.
    expect(config.output).toMatch(/dotenv: \*\*\*/)

    // The secret did reach the hosts, in a 0600 file of the deploy user.
    for (const deployPath of deployPaths()) {
      const env = path.join(deployPath, 'current/.env')
      const info = await stat(env)
      expect((info.mode & 0o777).toString(8), env).toBe('600')
      expect(info.uid).toBe((await stat(servers.workDir)).uid)
      expect(await readFile(env, 'utf8')).toContain(`DB_PASSWORD=${SECRET}`)
      expect(existsSync(`${env}.deployfile-tmp`)).toBe(false)
    }

    expect(outputs.map((o) => o.what)).toEqual(
      expect.arrayContaining(['deploy -v', 'deploy -vv --log', 'log file', 'deploy --json', 'deploy with a failing migration']),
    )
    for (const { what, text } of outputs) {
      expect(text.length, what).toBeGreaterThan(0)
      expect(text.includes(SECRET), `the secret appears in the output of: ${what}`).toBe(false)
      expect(text.includes(SECRET.slice(0, 20)), `part of the secret appears in: ${what}`).toBe(false)
    }
  }, 60_000)
})
