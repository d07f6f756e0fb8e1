/**
 * deployfile/testing: a plugin's tasks run through the memory transport, as a plugin author's own
 * unit test would (through the published entry name, like a user's project).
 */
import { describe, expect, it } from 'vitest'
import { host, secret, set, sh, task, use } from 'deployfile'
import { common } from 'deployfile/recipes/common'
import { phpFpm } from 'deployfile/plugins/php-fpm'
import { rehearse } from 'deployfile/testing'

const fleet = () => {
  use(common)
  use(phpFpm)
  host('web1', { deployPath: '/srv/app', labels: { stage: 'prod' } })
  host('web2', { deployPath: '/srv/app', labels: { stage: 'staging' } })
}

describe('rehearse', () => {
  it('records what each host is sent, exactly as rendered, and nothing when the plugin is not configured', async () => {
    const quiet = await rehearse(fleet, 'php-fpm:reload')
    expect(quiet).toMatchObject({ status: 'success', exitCode: 0, scripts: { web1: [], web2: [] } })
    const { scripts, steps } = await rehearse(fleet, 'php-fpm:reload', { settings: { php_fpm_reload_command: "cachetool opcache:reset --fcgi='/run/php fpm.sock'" } })
    expect(steps).toEqual(['php-fpm:reload:post-switch'])
    expect(scripts.web1).toEqual(["cachetool opcache:reset --fcgi='/run/php fpm.sock'"])
    expect(scripts.web2).toEqual(scripts.web1)
  })

  it('selects hosts, answers commands, and reports a failure with the exit code dep would give', async () => {
    const { status, exitCode, scripts, events } = await rehearse(() => {
      fleet()
      set('php_fpm_service', 'php8.2-fpm')
    }, 'php-fpm:reload', { select: ['stage=prod'], answers: [{ match: /systemctl reload/, exitCode: 1, stderr: 'Unit php8.2-fpm.service not loaded.' }] })
    expect(Object.keys(scripts)).toEqual(['web1'])
    expect(status).toBe('failed')
    expect(exitCode).toBe(1)
    const end = events.find((e) => e.type === 'run:end')
    expect(end).toMatchObject({ status: 'failed', exitCode: 1 })
  })

  it('checks settings as a load would: an unknown key is the ConfigError a user sees', async () => {
    await expect(rehearse(() => {
      fleet()
      set('php_fpm_servise' as 'php_fpm_service', 'x')
    }, 'php-fpm:reload')).rejects.toThrow(/php_fpm_servise/)
  })

  it('masks secrets in the events it returns; the host is still sent the value', async () => {
    const { events, scripts } = await rehearse(() => {
      fleet()
      secret('api_token', 'tok-123456')
      task('say', async (ctx) => {
        await ctx.run(sh`echo ${await ctx.get('api_token')}`)
      })
    }, 'say', { select: ['web1'], answers: [{ match: /echo/, stdout: 'tok-123456\n' }] })
    expect(scripts.web1).toEqual(['echo tok-123456'])
    expect(JSON.stringify(events)).not.toContain('tok-123456')
    expect(JSON.stringify(events)).toContain('***')
  })
})
