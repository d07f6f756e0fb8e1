/**
 * The notify plugin end to end: the built `dep` deploys to two real sshd hosts and posts to a
 * local HTTP receiver on 127.0.0.1 (closed after the tests). Checks the exact JSON payloads for a
 * deploy, a failure after the switch (failed step named, automatic revert, a secret in the error
 * masked), a failure before it, `dep rollback`, and that a receiver that never answers or fails
 * costs one warning per message and never the deploy.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startSshServers, type SshServers } from '../support/sshd.js'
import { commonDeployfile, currentOf, dep, waitFor, writeDeployfile } from '../support/dep.js'

/** The token in every webhook path: it must never show up in dep's output. */
const TOKEN = 'T0KEN-notify-9f8e7d6c5b4a'
const API_SECRET = 'api-secret-5551234567'

interface Received {
  channel: string
  body: Record<string, unknown>
}

let servers: SshServers
let base: string
let dir: string
let receiver: Server
let url: string
let received: Received[] = []
/** Requests of the hanging channel, and those of them the client gave up (closed). */
let hanging = 0
let abandoned = 0
const sockets = new Set<Socket>()

function receive(request: IncomingMessage, response: ServerResponse): void {
  const channel = request.url?.split('/')[1] ?? ''
  let text = ''
  request.on('data', (chunk: Buffer) => (text += chunk.toString()))
  request.on('end', () => {
    if (channel === 'hang') {
      hanging += 1
      // Never answers; the client must give up on its own.
      response.on('close', () => (abandoned += 1))
      return
    }
    received.push({ channel, body: JSON.parse(text) as Record<string, unknown> })
    response.statusCode = channel === 'fail' ? 500 : 200
    response.end(channel === 'fail' ? 'no' : 'ok')
  })
}

const ALIASES = ['web1', 'web2']
const deployPathOf = (alias: string) => path.join(servers.workDir, 'notify', alias)

beforeAll(async () => {
  servers = await startSshServers(2)
  base = await mkdtemp(path.join(tmpdir(), 'deployfile-notify-'))
  const appDir = path.join(base, 'app')
  await mkdir(appDir, { recursive: true })
  await writeFile(path.join(appDir, 'index.html'), '<h1>hello</h1>\n')
  receiver = createServer(receive)
  receiver.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`
  dir = path.join(base, 'project')
  const hosts = ALIASES.map((alias, index) => ({ alias, options: servers.hostOptions(index), deployPath: deployPathOf(alias) }))
  await writeDeployfile(
    dir,
    commonDeployfile(
      appDir,
      hosts,
      `
import { notify } from 'deployfile/plugins/notify'
import { secret, sh } from 'deployfile'
use(notify)
set('notify_app', 'site')
set('notify_user', 'octo')
set('notify_slack_webhook', process.env.SLACK_URL ?? '')
set('notify_discord_webhook', process.env.DISCORD_URL ?? '')
set('notify_teams_webhook', process.env.TEAMS_URL ?? '')
set('notify_webhook_url', process.env.HOOK_URL ?? '')
set('notify_timeout', Number(process.env.NOTIFY_TIMEOUT ?? '20'))
secret('api_secret', ${JSON.stringify(API_SECRET)})

task('smoke', async (ctx) => {
  if (process.env.FAIL_SMOKE !== ctx.host.alias) return
  await ctx.run(sh\`echo \${'the API refused ' + (await ctx.get('api_secret'))} >&2; exit 42\`)
}, { phase: 'post-switch' })
after('deploy:symlink', 'smoke')
before('deploy:shared', async (ctx) => {
  if (process.env.FAIL_PREPARE === ctx.host.alias) await ctx.run('echo no room left >&2; exit 3')
})
`,
    ),
  )
}, 60_000)

afterAll(async () => {
  for (const socket of sockets) socket.destroy()
  await new Promise<void>((resolve) => receiver?.close(() => resolve()))
  await servers?.stopAll()
  if (base) await rm(base, { recursive: true, force: true })
})

beforeEach(() => {
  received = []
})

const channels = (only?: Record<string, string>) =>
  only ?? { SLACK_URL: `${url}/slack/${TOKEN}`, DISCORD_URL: `${url}/discord/${TOKEN}`, TEAMS_URL: `${url}/teams/${TOKEN}`, HOOK_URL: `${url}/hook/${TOKEN}` }

async function run(args: string[], env: Record<string, string> = {}) {
  const result = await dep(args, { cwd: dir, env: { ...channels(), ...env } })
  expect(result.output).not.toContain(TOKEN)
  expect(result.output).not.toContain(API_SECRET)
  return result
}

const generic = () => received.filter((r) => r.channel === 'hook').map((r) => r.body)
/** A notification without the fields that change from run to run. */
const stable = (body: Record<string, unknown>) => {
  const { run_id, time, duration_ms, ...rest } = body
  expect(typeof run_id).toBe('string')
  expect(Number.isNaN(Date.parse(String(time)))).toBe(false)
  return { ...rest, duration_ms: duration_ms === null ? null : typeof duration_ms }
}

describe('notifications', () => {
  it('a deploy: started and succeeded, once per run on every channel, with who, what, where and how long', async () => {
    const result = await run(['deploy', '-o', 'revision=abc123'])
    expect(result.code, result.output).toBe(0)
    expect(received.map((r) => r.channel).sort()).toEqual(['discord', 'discord', 'hook', 'hook', 'slack', 'slack', 'teams', 'teams'])
    const common = { schema: 'deployfile.notification/1', task: 'deploy', app: 'site', who: 'octo', hosts: ALIASES, failed_step: null, failed_host: null, error: null }
    expect(generic().map(stable)).toEqual([
      { ...common, event: 'deploy.started', status: 'started', release: null, revision: null, previous_release: null, duration_ms: null },
      { ...common, event: 'deploy.succeeded', status: 'success', release: '1', revision: 'abc123', previous_release: null, duration_ms: 'number' },
    ])
    const slack = received.filter((r) => r.channel === 'slack').map((r) => r.body.text)
    expect(slack[0]).toBe('🚀 octo is deploying site to 2 hosts (web1, web2)')
    expect(slack[1]).toMatch(/^✅ octo deployed site release 1 \(abc123\) to 2 hosts \(web1, web2\) in /)
    const discord = received.find((r) => r.channel === 'discord')!.body
    expect(discord).toMatchObject({ allowed_mentions: { parse: [] }, embeds: [{ title: '🚀 Deploy started: site' }] })
    const teams = received.find((r) => r.channel === 'teams')!.body as { attachments: Array<{ contentType: string }> }
    expect(teams.attachments[0].contentType).toBe('application/vnd.microsoft.card.adaptive')
  }, 120_000)

  it('a failure after the switch: the failed step and host, the automatic revert, the secret in the error masked', async () => {
    const result = await run(['deploy', '-o', 'revision=def456'], { FAIL_SMOKE: 'web2' })
    expect(result.code, result.output).toBe(1)
    for (const alias of ALIASES) expect(await currentOf(deployPathOf(alias))).toBe('releases/1')
    const [started, ended] = generic()
    expect(started.event).toBe('deploy.started')
    expect(stable(ended)).toMatchObject({
      event: 'deploy.reverted',
      status: 'failed',
      release: '2',
      revision: 'def456',
      previous_release: '1',
      failed_step: 'smoke',
      failed_host: 'web2',
      duration_ms: 'number',
    })
    expect(String(ended.error)).toContain('***')
    expect(JSON.stringify(received)).not.toContain(API_SECRET)
    const slack = received.filter((r) => r.channel === 'slack').map((r) => String(r.body.text))
    expect(slack[1]).toMatch(/^↩️ octo's deploy of site release 2 \(def456\) failed \(smoke failed on web2\); every host went back to release 1 in /)
  }, 120_000)

  it('a failure before the switch: deploy.failed names the step; nothing went live', async () => {
    const result = await run(['deploy', '-o', 'revision=ghi789'], { FAIL_PREPARE: 'web1' })
    expect(result.code, result.output).toBe(1)
    const ended = generic()[1]
    expect(ended).toMatchObject({ event: 'deploy.failed', status: 'failed', failed_host: 'web1' })
    expect(String(ended.failed_step)).toMatch(/^before:deploy:shared/)
    expect(String(ended.error)).toMatch(/exit/)
  }, 120_000)

  it('dep rollback: one rollback.succeeded naming the release gone back to', async () => {
    // Two good releases first, so there is one to go back to.
    expect((await run(['deploy', '-o', 'revision=r2'])).code).toBe(0)
    received = []
    const result = await run(['rollback'])
    expect(result.code, result.output).toBe(0)
    const live = (await currentOf(deployPathOf('web1')))!.replace('releases/', '')
    expect(generic().map(stable)).toEqual([
      {
        schema: 'deployfile.notification/1',
        event: 'rollback.succeeded',
        task: 'rollback',
        status: 'success',
        app: 'site',
        who: 'octo',
        release: live,
        revision: 'abc123',
        previous_release: expect.stringMatching(/^\d+$/),
        hosts: ALIASES,
        duration_ms: 'number',
        failed_step: null,
        failed_host: null,
        error: null,
      },
    ])
  }, 120_000)

  it('a receiver that never answers and one that fails: one warning per message, the deploy exits 0 and does not wait for them', async () => {
    hanging = 0
    abandoned = 0
    const result = await run(['deploy'], {
      ...channels({ SLACK_URL: `${url}/hang/${TOKEN}`, DISCORD_URL: `${url}/fail/${TOKEN}`, HOOK_URL: `${url}/hook/${TOKEN}`, TEAMS_URL: '' }),
      NOTIFY_TIMEOUT: '2',
    })
    expect(result.code, result.output).toBe(0)
    const warnings = result.output.split('\n').filter((line) => /notification \(deploy\.\w+\) not delivered/.test(line))
    expect(warnings.filter((l) => l.includes('Slack') && l.includes('no answer within 2 s'))).toHaveLength(2)
    expect(warnings.filter((l) => l.includes('Discord') && l.includes('HTTP 500'))).toHaveLength(2)
    expect(warnings).toHaveLength(4)
    // The working channel still got both messages; the hanging one got both requests and was given up.
    expect(generic().map((n) => n.event)).toEqual(['deploy.started', 'deploy.succeeded'])
    expect(hanging).toBe(2)
    await waitFor(() => abandoned === 2, 10_000, 'the client to give up both hanging requests')
    // The warnings come before the closing line.
    const lines = result.output.split('\n')
    const closing = lines.findIndex((l) => l.includes('deploy finished'))
    expect(closing).toBeGreaterThan(lines.indexOf(warnings[3]))
  }, 120_000)
})
