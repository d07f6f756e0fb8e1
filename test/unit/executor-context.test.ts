/** TaskContext and the top-level runtime functions, on the MemoryTransport. */
import { describe, expect, it } from 'vitest'
import { task } from '../../src/dsl/tasks.js'
import { secret, set } from '../../src/dsl/settings.js'
import { host } from '../../src/dsl/hosts.js'
import { cd, currentHost, get, has, info, invoke, on, parse, run, test, warning, within } from '../../src/dsl/runtime.js'
import type { TaskContext } from '../../src/dsl/context.js'
import { CommandError, DeployError } from '../../src/model/errors.js'
import { Command, raw } from '../../src/shell/command.js'
import { declare, ofType, runPlan, sleep } from './helpers.js'

describe('outside a task', () => {
  it('run() and friends throw a DeployError with a hint', () => {
    expect(() => run`ls`).toThrow(DeployError)
    expect(() => run`ls`).toThrow('run() can only be called inside a task.')
    expect(() => currentHost()).toThrow(/currentHost\(\) can only be called inside a task/)
    expect(() => info('x')).toThrow(/inside a task/)
  })
})

describe('run()', () => {
  it('as a tagged template quotes every value (top-level and ctx)', async () => {
    const registry = await declare(() => {
      host('h')
      task('t', async (ctx) => {
        await run`mkdir -p ${"/srv/my app's"} ${['a b', 'c']}`
        await ctx.run`rm -rf ${'$(reboot)'} ${raw('*.tmp')}`
      })
    })
    const { transports } = await runPlan(registry, 't')
    expect(transports.get('h')!.scripts).toEqual([`mkdir -p '/srv/my app'\\''s' 'a b' c`, `rm -rf '$(reboot)' *.tmp`])
  })

  it('as a string expands {{settings}} quoted', async () => {
    const registry = await declare(() => {
      host('h', { deployPath: "/srv/it's here" })
      set('release_name', '5')
      task('t', async (ctx) => {
        await run('cd {{deploy_path}}/releases && ls {{release_name}}')
        await ctx.run('echo \\{{literal}}')
      })
    })
    const { transports } = await runPlan(registry, 't')
    expect(transports.get('h')!.scripts).toEqual([`cd '/srv/it'\\''s here'/releases && ls 5`, 'echo {{literal}}'])
  })

  it('as a tagged template expands {{settings}} in the literal parts, quoted', async () => {
    const registry = await declare(() => {
      host('h', { deployPath: '/srv/a b' })
      task('t', async () => void (await run`ls {{deploy_path}} ${'{{deploy_path}}'}`))
    })
    const { transports } = await runPlan(registry, 't')
    // The interpolated value is data: its braces stay as they are.
    expect(transports.get('h')!.scripts).toEqual([`ls '/srv/a b' '{{deploy_path}}'`])
  })

  it('returns stdout without the trailing newline', async () => {
    let out = ''
    const registry = await declare(() => {
      host('h')
      task('t', async () => void (out = await run`hostname`))
    })
    await runPlan(registry, 't', { responders: [{ match: /hostname/, result: { stdout: 'box-1\n' } }] })
    expect(out).toBe('box-1')
  })

  it('a failure throws a CommandError with host, command, exit code and stderr', async () => {
    let caught: unknown
    const registry = await declare(() => {
      host('web1')
      task('t', async () => {
        try {
          await run`ls ${'/nope'}`
        } catch (error) {
          caught = error
          throw error
        }
      })
    })
    const { outcome } = await runPlan(registry, 't', {
      responders: [{ match: /ls/, result: { code: 2, stderr: "ls: cannot access '/nope'\n", stdout: 'partial\n' } }],
    })
    expect(caught).toBeInstanceOf(CommandError)
    const error = caught as CommandError
    expect(error.message).toBe('Command on web1 exited with code 2: ls /nope')
    expect(error.details).toMatchObject({ host: 'web1', command: 'ls /nope', exitCode: 2, stdout: 'partial\n', stderr: "ls: cannot access '/nope'\n" })
    expect(outcome.failure!.error).toMatchObject({ host: 'web1', task: 't', command: 'ls /nope', exitCode: 2, stderr: "ls: cannot access '/nope'" })
  })

  it('a timeout and a killed command get their own messages', async () => {
    const messages: string[] = []
    const registry = await declare(() => {
      host('h')
      task('t', async (ctx) => {
        for (const command of ['slow', 'killed']) {
          try {
            await ctx.run(command, { timeout: 2 })
          } catch (error) {
            messages.push((error as Error).message)
          }
        }
      })
    })
    await runPlan(registry, 't', {
      responders: [
        { match: /slow/, result: { code: null, signal: 'SIGTERM', timedOut: true } },
        { match: /killed/, result: { code: null, signal: 'SIGKILL' } },
      ],
    })
    expect(messages).toEqual(['Command on h timed out after 2s: slow', 'Command on h was killed by SIGKILL: killed'])
  })

  it('nothrow returns instead of throwing', async () => {
    let out = 'unset'
    const registry = await declare(() => {
      host('h')
      task('t', async (ctx) => void (out = await ctx.run('grep x file', { nothrow: true })))
    })
    const { outcome } = await runPlan(registry, 't', { responders: [{ match: /grep/, result: { code: 1, stdout: 'nothing\n' } }] })
    expect(outcome.status).toBe('success')
    expect(out).toBe('nothing')
  })

  it('passes cwd, env, stdin and timeout to the transport', async () => {
    const registry = await declare(() => {
      host('h', { deployPath: '/srv/app' })
      task('t', async (ctx) => void (await ctx.run('cat', { cwd: '{{deploy_path}}/current', env: { A: '1' }, stdin: 'data', timeout: 3 })))
    })
    const { transports } = await runPlan(registry, 't')
    const op = transports.get('h')!.operations[0]
    expect(op).toMatchObject({ kind: 'exec', script: "export A=1\ncd /srv/app/current || exit 1\ncat", options: { timeoutMs: 3000 } })
    expect(op.kind === 'exec' && [op.command.cwd, op.command.env, op.command.stdin]).toEqual(['/srv/app/current', { A: '1' }, 'data'])
  })
})

describe('test()', () => {
  it('is true for exit 0 and false otherwise, never throwing', async () => {
    const results: boolean[] = []
    const registry = await declare(() => {
      host('h')
      task('t', async (ctx) => {
        results.push(await test`[ -d ${'/yes'} ]`)
        results.push(await ctx.test('[ -d /no ]'))
      })
    })
    const { outcome } = await runPlan(registry, 't', { responders: [{ match: /\/no/, result: { code: 1 } }] })
    expect(outcome.status).toBe('success')
    expect(results).toEqual([true, false])
  })
})

describe('cd() and within()', () => {
  it('cd sets the directory of later commands of the task; within restores it', async () => {
    const registry = await declare(() => {
      host('h', { deployPath: '/srv/app' })
      task('t', async (ctx) => {
        await run`pwd`
        await cd('{{deploy_path}}')
        await run`pwd`
        await within('/tmp', async () => {
          await run`pwd`
          await ctx.within('/var', () => ctx.run`pwd`)
          await run`pwd`
        })
        await run`pwd`
        await ctx.run('pwd', { cwd: '/explicit' })
      })
      task('next', async () => void (await run`pwd`))
      task('both', ['t', 'next'])
    })
    const { transports } = await runPlan(registry, 'both')
    const cwds = transports.get('h')!.operations.map((op) => (op.kind === 'exec' ? op.command.cwd : 'n/a'))
    expect(cwds).toEqual([undefined, '/srv/app', '/tmp', '/var', '/tmp', '/srv/app', '/explicit', undefined])
  })

  it('within restores the directory when fn throws', async () => {
    const registry = await declare(() => {
      host('h')
      task('t', async () => {
        await within('/a', async () => {
          throw new Error('inside')
        }).catch(() => {})
        await run`pwd`
      })
    })
    const { transports } = await runPlan(registry, 't')
    expect(transports.get('h')!.operations[0]).toMatchObject({ script: 'pwd', command: { cwd: undefined } })
  })
})

describe('invoke()', () => {
  it('runs another task (and the members of a group) now, on the same host', async () => {
    const seen: string[] = []
    const registry = await declare(() => {
      host('web[1:2]')
      task('x', async () => void seen.push(`x:${currentHost().alias}`))
      task('y', async (ctx) => void seen.push(`y:${ctx.host.alias}:${ctx.taskName}`))
      task('xy', ['x', 'y'])
      task('t', async (ctx) => {
        await invoke('x')
        await ctx.invoke('xy')
      })
    })
    await runPlan(registry, 't', { selectors: ['web2'] })
    expect(seen).toEqual(['x:web2', 'x:web2', 'y:web2:y'])
  })

  it('an unknown task is an error', async () => {
    const registry = await declare(() => {
      host('h')
      task('t', async () => invoke('nope'))
    })
    const { outcome } = await runPlan(registry, 't')
    expect(outcome.exitCode).toBe(2)
    expect(outcome.failure!.error.message).toBe('Task "nope" is not defined.')
  })
})

describe('on()', () => {
  it('runs on other hosts in parallel, each with its own context, by host, list or selector', async () => {
    const registry = await declare(() => {
      host('web[1:2]', { labels: { role: 'web' } })
      host('db1', { labels: { role: 'db' } })
      task('t', async (ctx) => {
        const byHost = await on(ctx.hosts[2], async () => currentHost().alias)
        const bySelector = await on('role=web', async (c) => `${c.host.alias}:${currentHost().alias}`)
        const byList = await ctx.on(ctx.hosts.slice(0, 2), async () => {
          await run`uptime`
          return currentHost().alias
        })
        info(JSON.stringify({ byHost, bySelector, byList }))
      }, { once: true })
    })
    const { events, transports } = await runPlan(registry, 't')
    const message = JSON.parse(ofType(events, 'log')[0].message)
    expect(message).toEqual({ byHost: ['db1'], bySelector: ['web1:web1', 'web2:web2'], byList: ['web1', 'web2'] })
    expect(transports.get('web2')!.scripts).toEqual(['uptime'])
    // db1 is connected before the first step like every selected host, but nothing runs there.
    expect(transports.get('db1')!.operations).toEqual([])
  })
})

describe('AsyncLocalStorage', () => {
  it('each host sees its own currentHost() across awaits while hosts run in parallel', async () => {
    const mismatches: string[] = []
    const registry = await declare(() => {
      host('web[1:5]')
      task('t', async (ctx: TaskContext) => {
        for (let i = 0; i < 5; i++) {
          await sleep(Math.random() * 5)
          const here = currentHost().alias
          if (here !== ctx.host.alias) mismatches.push(`${ctx.host.alias} saw ${here}`)
          await run`echo ${here}`
        }
      })
    })
    const { transports } = await runPlan(registry, 't')
    expect(mismatches).toEqual([])
    for (const [alias, transport] of transports) expect(new Set(transport.scripts)).toEqual(new Set([`echo ${alias}`]))
  })
})

describe('info() and warning()', () => {
  it('emit log events for the host and task (top-level and ctx)', async () => {
    const registry = await declare(() => {
      host('h')
      task('t', async (ctx) => {
        info('top info')
        warning('top warning')
        ctx.info('ctx info')
        ctx.warning('ctx warning')
      })
    })
    const { events } = await runPlan(registry, 't')
    expect(ofType(events, 'log').map((e) => [e.level, e.host, e.task, e.message])).toEqual([
      ['info', 'h', 't', 'top info'],
      ['warning', 'h', 't', 'top warning'],
      ['info', 'h', 't', 'ctx info'],
      ['warning', 'h', 't', 'ctx warning'],
    ])
  })
})

describe('settings inside tasks', () => {
  it('get/set/has/parse act on the current host; -o overrides beat host and global values', async () => {
    const seen: Record<string, unknown> = {}
    const registry = await declare(() => {
      set('branch', 'global-branch')
      set('keep_releases', 5)
      host('web1', { config: { branch: 'host-branch' } })
      host('web2')
      task('t', async (ctx) => {
        const alias = ctx.host.alias
        seen[`${alias}:branch`] = await get('branch')
        seen[`${alias}:keep`] = await ctx.get('keep_releases')
        seen[`${alias}:parsed`] = await parse('{{branch}}@{{keep_releases}}')
        set('tag', `tag-${alias}`)
        seen[`${alias}:tag`] = await ctx.get('tag')
        seen[`${alias}:has`] = [has('tag'), has('revision')]
      })
    })
    await runPlan(registry, 't', { overrides: new Map<string, unknown>([['keep_releases', 9]]) })
    expect(seen).toEqual({
      'web1:branch': 'host-branch',
      'web1:keep': 9,
      'web1:parsed': 'host-branch@9',
      'web1:tag': 'tag-web1',
      'web1:has': [true, false],
      'web2:branch': 'global-branch',
      'web2:keep': 9,
      'web2:parsed': 'global-branch@9',
      'web2:tag': 'tag-web2',
      'web2:has': [true, false],
    })
  })

  it('a lazy setting is computed once per host during a run, with the context of the task that reads it first', async () => {
    let calls = 0
    const readers: string[] = []
    const registry = await declare(() => {
      host('web[1:2]')
      set('release_name', (ctx) => {
        calls += 1
        readers.push(`${ctx.host.alias}:${ctx.taskName}`)
        return `rel-${ctx.host.alias}`
      })
      task('a', async (ctx) => void (await ctx.get('release_name')))
      task('b', async () => void (await get('release_name')))
      task('both', ['a', 'b'])
    })
    await runPlan(registry, 'both')
    expect(calls).toBe(2)
    expect(readers.sort()).toEqual(['web1:a', 'web2:a'])
  })

  it('ctx.shared computes one value for every host', async () => {
    let calls = 0
    const values: string[] = []
    const registry = await declare(() => {
      host('web[1:3]')
      task('t', async (ctx) => {
        values.push(await ctx.shared('name', async () => {
          calls += 1
          await sleep(5)
          return 'shared-value'
        }))
      })
    })
    await runPlan(registry, 't')
    expect(calls).toBe(1)
    expect(values).toEqual(['shared-value', 'shared-value', 'shared-value'])
  })
})

describe('secrets', () => {
  it('are masked in command:start, command:output and errors', async () => {
    const registry = await declare(() => {
      host('h')
      secret('db_password' as never, 'hunter2-secret' as never)
      task('t', async (ctx) => {
        await ctx.run('mysql -p{{db_password}} -e status')
        await ctx.run`curl -u ${new Command('tag-secret-123', ['tag-secret-123'])} x`
        await ctx.run('deploy --token=opt-secret-456', { secrets: ['opt-secret-456'] })
        await ctx.run('fail hunter2-secret')
      })
    })
    const { events, transports, outcome } = await runPlan(registry, 't', {
      responders: [
        { match: /^mysql/, result: { stdout: 'connected with hunter2-secret\n' } },
        { match: /^curl/, result: { stderr: 'auth tag-secret-123 ok\n' } },
        { match: /^fail/, result: { code: 1, stderr: 'bad password hunter2-secret\n' } },
      ],
    })
    // The transport got the real values…
    expect(transports.get('h')!.scripts[0]).toBe('mysql -phunter2-secret -e status')
    // …but no event carries them.
    const text = JSON.stringify(events)
    for (const value of ['hunter2-secret', 'tag-secret-123', 'opt-secret-456']) expect(text).not.toContain(value)
    expect(ofType(events, 'command:start').map((e) => e.command)).toEqual([
      'mysql -p*** -e status',
      'curl -u *** x',
      'deploy --token=***',
      'fail ***',
    ])
    expect(ofType(events, 'command:output').map((e) => e.text)).toEqual(['connected with ***', 'auth *** ok', 'bad password ***'])
    expect(outcome.failure!.error.command).toBe('fail ***')
    expect(outcome.failure!.error.stderr).toBe('bad password ***')
    expect(outcome.failure!.error.message).not.toContain('hunter2-secret')
  })

  it('a lazy secret is masked once read', async () => {
    const registry = await declare(() => {
      host('h')
      secret('db_password' as never, (() => 'lazy-secret-789') as never)
      task('t', async (ctx) => {
        const pw = await ctx.get('db_password')
        ctx.info(`using ${pw}`)
      })
    })
    const { events } = await runPlan(registry, 't')
    expect(ofType(events, 'log')[0].message).toBe('using ***')
  })

  it('quiet commands emit no output events', async () => {
    const registry = await declare(() => {
      host('h')
      task('t', async (ctx) => void (await ctx.run('noisy', { quiet: true })))
    })
    const { events } = await runPlan(registry, 't', { responders: [{ match: /noisy/, result: { stdout: 'lots\n' } }] })
    expect(ofType(events, 'command:output')).toEqual([])
    expect(ofType(events, 'command:start')).toHaveLength(1)
  })
})

describe('runLocally()', () => {
  it('runs on this machine through the local transport', async () => {
    let out = ''
    const registry = await declare(() => {
      host('remote')
      task('t', async (ctx) => void (out = await ctx.runLocally`printf '%s' ${"local it's"}`))
    })
    const { transports, events } = await runPlan(registry, 't')
    expect(out).toBe("local it's")
    expect(transports.get('remote')?.operations ?? []).toEqual([])
    expect(ofType(events, 'command:start')[0].local).toBe(true)
  })
})
