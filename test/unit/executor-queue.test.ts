/** queue(): queued commands travel with the next round trip, and failures name the task that queued them. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { task } from '../../src/dsl/tasks.js'
import { host, localhost } from '../../src/dsl/hosts.js'
import { queue, run } from '../../src/dsl/runtime.js'
import { CommandError } from '../../src/model/errors.js'
import { declare, ofType, runPlan } from './helpers.js'

const sandbox = mkdtempSync(join(tmpdir(), 'df-queue-'))
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

describe('queue() on the MemoryTransport', () => {
  it('sends queued commands with the next run() in one exec', async () => {
    const registry = await declare(() => {
      host('h')
      task('t', async (ctx) => {
        await queue`mkdir -p ${'/srv/a b'}`
        await ctx.queue('touch /srv/marker', { cwd: '/srv', env: { X: '1' } })
        await run`ls /srv`
      })
    })
    const { transports, events } = await runPlan(registry, 't')
    const ops = transports.get('h')!.operations
    expect(ops).toHaveLength(1)
    const op = ops[0]
    if (op.kind !== 'exec') throw new Error('expected an exec')
    const script = op.script
    expect(script.indexOf("mkdir -p '/srv/a b'")).toBeGreaterThanOrEqual(0)
    expect(script.indexOf("mkdir -p '/srv/a b'")).toBeLessThan(script.indexOf('touch /srv/marker'))
    expect(script.indexOf('touch /srv/marker')).toBeLessThan(script.indexOf('ls /srv'))
    // The queued command keeps its own cwd and env.
    expect(script).toContain("export X=1\ncd /srv || exit 1\ntouch /srv/marker")
    expect(ofType(events, 'command:start').map((e) => e.command)).toEqual(["mkdir -p '/srv/a b'", 'touch /srv/marker', 'ls /srv'])
  })

  it('renders a command\'s cwd and env the same way whether queued commands go with it or not', async () => {
    const registry = await declare(() => {
      host('h')
      task('t', async (ctx) => {
        await ctx.run('ls', { cwd: '/srv/my app', env: { A: 'b c' } })
        await queue`touch x`
        await ctx.run('ls', { cwd: '/srv/my app', env: { A: 'b c' } })
      })
    })
    const { transports } = await runPlan(registry, 't')
    const own = "export A='b c'\ncd '/srv/my app' || exit 1\nls"
    const [alone, withQueued] = transports.get('h')!.scripts
    expect(alone).toBe(own)
    expect(withQueued.endsWith(`fi\n${own}`)).toBe(true)
    expect(withQueued.startsWith('(\ntouch x\n) </dev/null\n')).toBe(true)
  })

  it('flushes what is left at the end of a phase (one exec), not at each step', async () => {
    const registry = await declare(() => {
      host('h')
      task('p1', async () => void (await queue`step one`), { phase: 'prepare' })
      task('p2', async () => void (await queue`step two`), { phase: 'prepare' })
      task('sw', async () => void (await run`switch`), { phase: 'switch' })
      task('deploy', ['p1', 'p2', 'sw'])
    })
    const { transports, events } = await runPlan(registry, 'deploy')
    const scripts = transports.get('h')!.scripts
    expect(scripts).toHaveLength(2)
    expect(scripts[0]).toContain('step one')
    expect(scripts[0]).toContain('step two')
    expect(scripts[0]).not.toContain('switch')
    expect(scripts[1]).toBe('switch')
    // Round trips per step: the queued work is paid for after p2, not inside p1 or p2.
    expect(ofType(events, 'step:end').map((e) => [e.task, e.roundTrips])).toEqual([
      ['p1', 0],
      ['p2', 0],
      ['sw', 1],
    ])
    expect(ofType(events, 'run:end')[0].roundTrips).toEqual({ h: 2 })
  })

  it('a step whose commands another step sent says so in step:end (queued, sentBy); the sender carries the round trip', async () => {
    const registry = await declare(() => {
      host('h')
      task('caches', async () => {
        await queue`cache one`
        await queue`cache two`
      }, { phase: 'prepare' })
      task('own', async (ctx) => {
        await queue`kept here`
        await ctx.flush()
      }, { phase: 'prepare' })
      task('sender', async (ctx) => void (await ctx.flush()), { phase: 'prepare' })
      task('sw', async () => void (await run`switch`), { phase: 'switch' })
      task('deploy', ['caches', 'sender', 'own', 'sw'])
    })
    const { events } = await runPlan(registry, 'deploy')
    const ends = ofType(events, 'step:end').map((e) => [e.task, e.roundTrips, e.queued, e.sentBy])
    expect(ends).toEqual([
      ['caches', 0, 2, 'sender'],
      ['sender', 1, undefined, undefined],
      ['own', 1, undefined, undefined],
      ['sw', 1, undefined, undefined],
    ])
  })

  it('flushes at the end of the run', async () => {
    const registry = await declare(() => {
      host('web[1:2]')
      task('t', async () => void (await queue`last words`))
    })
    const { transports } = await runPlan(registry, 't')
    for (const t of transports.values()) {
      expect(t.operations).toHaveLength(1)
      expect(t.scripts[0]).toContain('last words')
    }
  })

  it('counts round trips per step in step:end', async () => {
    const registry = await declare(() => {
      host('h')
      task('three', async () => {
        await run`a`
        await run`b`
        await run`c`
      })
      task('none', async () => {})
      task('one', async () => void (await run`d`))
      task('all', ['three', 'none', 'one'])
    })
    const { events } = await runPlan(registry, 'all')
    expect(ofType(events, 'step:end').map((e) => e.roundTrips)).toEqual([3, 0, 1])
  })

  it('a queued failure reported by the shell marker names the task that queued it', async () => {
    const registry = await declare(() => {
      host('h')
      task('queuer', async () => void (await queue`false-queued`))
      task('runner', async () => void (await run`echo next`))
      task('all', ['queuer', 'runner'])
    })
    const { outcome } = await runPlan(registry, 'all', {
      responders: [{ match: /false-queued/, result: { code: 7, stderr: 'it broke\n\n@@deployfile-queued-failed 0\n' } }],
    })
    expect(outcome.status).toBe('failed')
    expect(outcome.failure!.error.message).toBe('Command on h (queued by queuer) exited with code 7: false-queued')
    expect(outcome.failure!.error.command).toBe('false-queued')
    expect(outcome.failure!.error.exitCode).toBe(7)
    // The marker line is not shown to the user.
    expect(outcome.failure!.error.stderr).toBe('it broke')
  })
})

describe('queue() through real sh (local transport)', () => {
  it('runs queued commands in order before the command, in one round trip', async () => {
    const dir = join(sandbox, 'ordered')
    const registry = await declare(() => {
      localhost('local')
      task('t', async (ctx) => {
        await queue`mkdir -p ${dir}`
        await queue`printf '%s\n' one >> ${join(dir, 'log')}`
        await ctx.queue(`printf '%s\\n' "two $PWD $V" >> log`, { cwd: dir, env: { V: 'v' } })
        const out = await run`cat ${join(dir, 'log')}`
        ctx.info(out)
      })
    })
    const { outcome, events } = await runPlan(registry, 't', { local: true })
    expect(outcome.status).toBe('success')
    expect(ofType(events, 'log')[0].message).toBe(`one\ntwo ${dir} v`)
    expect(ofType(events, 'step:end')[0].roundTrips).toBe(1)
    expect(ofType(events, 'run:end')[0].roundTrips).toEqual({ local: 1 })
  })

  it('a failing queued command stops the batch and is reported for the task that queued it', async () => {
    const dir = join(sandbox, 'failing')
    let caught: unknown
    const registry = await declare(() => {
      localhost('local')
      task('setup', async () => {
        await queue`mkdir -p ${dir}`
        await queue`echo 'queued stderr' >&2; exit 3`
        await queue`touch ${join(dir, 'after-failure')}`
      })
      task('use', async () => {
        try {
          await run`touch ${join(dir, 'main-command')}`
        } catch (error) {
          caught = error
          throw error
        }
      })
      task('all', ['setup', 'use'])
    })
    const { outcome } = await runPlan(registry, 'all', { local: true })
    expect(caught).toBeInstanceOf(CommandError)
    const error = caught as CommandError
    expect(error.message).toBe(`Command on local (queued by setup) exited with code 3: echo 'queued stderr' >&2; exit 3`)
    expect(error.details.exitCode).toBe(3)
    expect(error.details.stderr.trim()).toBe('queued stderr')
    expect(error.details.stderr).not.toContain('@@deployfile')
    expect(existsSync(dir)).toBe(true)
    expect(existsSync(join(dir, 'after-failure'))).toBe(false)
    expect(existsSync(join(dir, 'main-command'))).toBe(false)
    expect(outcome.exitCode).toBe(1)
  })

  it('a queued command that fails at the end of the phase fails the run', async () => {
    const registry = await declare(() => {
      localhost('local')
      task('only', async () => void (await queue`exit 9`), { phase: 'prepare' })
    })
    const { outcome, events } = await runPlan(registry, 'only', { local: true })
    expect(outcome.status).toBe('failed')
    expect(outcome.failure!.error.message).toContain('(queued by only) exited with code 9')
    expect(ofType(events, 'log').some((e) => e.level === 'error' && e.message.includes('queued by only'))).toBe(true)
  })

  it('set -e inside a queued script is honoured (subshell, not `||`)', async () => {
    const file = join(sandbox, 'set-e')
    const registry = await declare(() => {
      localhost('local')
      task('t', async () => {
        await queue(`set -e\nfalse\ntouch ${file}`)
        await run`true`
      })
    })
    const { outcome } = await runPlan(registry, 't', { local: true })
    expect(outcome.status).toBe('failed')
    expect(existsSync(file)).toBe(false)
  })

  it('queued commands do not read the stdin meant for the command', async () => {
    let out = ''
    const registry = await declare(() => {
      localhost('local')
      task('t', async (ctx) => {
        await queue`cat > /dev/null`
        out = await ctx.run('cat', { stdin: 'for the command' })
      })
    })
    await runPlan(registry, 't', { local: true })
    expect(out).toBe('for the command')
  })

  it('runLocally does not take the host’s queue with it', async () => {
    const file = join(sandbox, 'queued-for-host')
    const registry = await declare(() => {
      localhost('local')
      task('t', async (ctx) => {
        await queue`touch ${file}`
        await ctx.runLocally`true`
        ctx.info(String(existsSync(file)))
      })
    })
    const { events } = await runPlan(registry, 't', { local: true })
    expect(ofType(events, 'log')[0].message).toBe('false')
    expect(readFileSync(file, 'utf8')).toBe('')
  })
})
