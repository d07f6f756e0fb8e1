/** upload() and download() from tasks. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { task } from '../../src/dsl/tasks.js'
import { set } from '../../src/dsl/settings.js'
import { host, localhost } from '../../src/dsl/hosts.js'
import { download, queue, upload } from '../../src/dsl/runtime.js'
import { declare, ofType, runPlan } from './helpers.js'

const sandbox = mkdtempSync(join(tmpdir(), 'df-transfer-'))
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

describe('upload() on the MemoryTransport', () => {
  it('sends content as the stdin of cat, with its mode, at a templated path, in one round trip after the queued commands', async () => {
    const registry = await declare(() => {
      host('h', { deployPath: '/srv/app' })
      task('t', async () => {
        await queue`mkdir -p /srv/app/shared`
        await upload(Buffer.from('APP_KEY=x\n'), '{{deploy_path}}/shared/.env', { mode: 0o640 })
      })
    })
    const { transports, events } = await runPlan(registry, 't')
    const ops = transports.get('h')!.operations
    expect(ops).toHaveLength(1)
    expect(ops[0]).toMatchObject({ kind: 'exec' })
    const op = ops[0] as { script: string; command: { stdin?: unknown } }
    const script = op.script
    expect(op.command.stdin).toEqual(Buffer.from('APP_KEY=x\n'))
    expect(script.indexOf('mkdir -p /srv/app/shared')).toBeGreaterThanOrEqual(0)
    expect(script.indexOf('mkdir -p /srv/app/shared')).toBeLessThan(script.indexOf('cat >'))
    expect(script).toContain('(umask 077 && cat > /srv/app/shared/.env.deployfile-upload) && chmod 640 ')
    expect(script).toContain('mv -f /srv/app/shared/.env.deployfile-upload /srv/app/shared/.env')
    expect(script).not.toContain('APP_KEY')
    expect(ofType(events, 'command:start').map((e) => e.command)).toContain('upload (content) → /srv/app/shared/.env')
    expect(ofType(events, 'transfer').at(-1)).toMatchObject({ direction: 'upload', bytes: 10, totalBytes: 10, done: true })
  })

  it('download() gets a templated remote path', async () => {
    const registry = await declare(() => {
      host('h', { deployPath: '/srv/app' })
      task('t', async () => download('{{deploy_path}}/.dep/releases_log', '/tmp/local-copy'))
    })
    const { transports } = await runPlan(registry, 't')
    expect(transports.get('h')!.operations).toEqual([{ kind: 'get', remotePath: '/srv/app/.dep/releases_log', localPath: '/tmp/local-copy' }])
  })
})

describe('upload() of a directory through real sh (local transport)', () => {
  it('sends one tar stream (one round trip) and extracts it, excluded patterns left out', async () => {
    const source = join(sandbox, 'source')
    mkdirSync(join(source, 'sub'), { recursive: true })
    mkdirSync(join(source, '.git'), { recursive: true })
    writeFileSync(join(source, 'a.txt'), 'A')
    writeFileSync(join(source, 'sub', "it's.txt"), 'B')
    writeFileSync(join(source, '.git', 'HEAD'), 'ref')
    const target = join(sandbox, 'target dir', 'releases', '1')
    const registry = await declare(() => {
      localhost('local')
      set('upload_path', source)
      task('t', async (ctx) => ctx.upload('{{upload_path}}', target, { exclude: ['.git'] }))
    })
    const { outcome, events } = await runPlan(registry, 't', { local: true })
    expect(outcome.error).toBeUndefined()
    expect(readFileSync(join(target, 'a.txt'), 'utf8')).toBe('A')
    expect(readFileSync(join(target, 'sub', "it's.txt"), 'utf8')).toBe('B')
    expect(() => statSync(join(target, '.git'))).toThrow()
    expect(ofType(events, 'step:end')[0].roundTrips).toBe(1)
    expect(ofType(events, 'transfer').at(-1)).toMatchObject({ direction: 'upload', path: target, done: true })
  })

  it('prepareUpload() makes the archive then, once: a later upload() sends that one; a missing path is no error', async () => {
    const source = join(sandbox, 'prepared')
    mkdirSync(source, { recursive: true })
    writeFileSync(join(source, 'a.txt'), 'at prepare time')
    const target = join(sandbox, 'prepared-target')
    const registry = await declare(() => {
      localhost('local')
      task('t', async (ctx) => {
        await ctx.prepareUpload(join(sandbox, 'no such dir'))
        await ctx.prepareUpload(source) // a recipe does not wait: the hosts connect and lock meanwhile
        writeFileSync(join(source, 'a.txt'), 'changed after')
        await ctx.upload(source, target)
      })
    })
    const { outcome } = await runPlan(registry, 't', { local: true })
    expect(outcome.error).toBeUndefined()
    expect(readFileSync(join(target, 'a.txt'), 'utf8')).toBe('at prepare time')
  })
})
