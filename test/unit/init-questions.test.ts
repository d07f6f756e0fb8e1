/**
 * `dep init`'s questions, answered through streams as a user at a terminal would: SSH hosts get
 * asked for the port, the key and the known_hosts file; the deploy path's default follows the hosts.
 */
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { ask, defaultAnswers } from '../../src/cli/commands/init.js'
import { renderDeployfile } from '../../src/cli/commands/init-files.js'

async function answer(replies: string[]): Promise<{ answers: ReturnType<typeof defaultAnswers>; prompts: string }> {
  const answers = { ...defaultAnswers('/tmp/shop'), repository: '', github: false }
  const input = new PassThrough()
  const output = new PassThrough()
  let prompts = ''
  const queue = [...replies]
  // Like a person: each reply typed after its question shows (readline drops lines typed ahead).
  output.on('data', (chunk: Buffer) => {
    prompts += chunk.toString()
    if (prompts.endsWith(': ')) setImmediate(() => (queue.length ? input.write(`${queue.shift()}\n`) : input.end()))
  })
  await ask(answers, new Set(['repository', 'github']), input, output, '/tmp/shop')
  return { answers, prompts }
}

describe('dep init questions', () => {
  it('asks SSH hosts for port, key and known_hosts, and writes them', async () => {
    const { answers, prompts } = await answer(['common', '', 'web1.example.com', '', 'deploy', '2222', '~/.ssh/deploy', '~/.ssh/known_hosts_deploy'])
    expect(prompts).toContain('SSH port')
    expect(prompts).toContain('SSH private key')
    expect(prompts).toContain('known_hosts file')
    // The default deploy path shown once the hosts are known: a server path for SSH hosts.
    expect(prompts).toContain('Deploy path on the hosts [/var/www/shop]')
    expect(answers).toMatchObject({ port: '2222', identity_file: '~/.ssh/deploy', known_hosts_file: '~/.ssh/known_hosts_deploy', deploy_path: '/var/www/shop' })
    expect(renderDeployfile(answers)).toContain(
      `host('web1.example.com', { remoteUser: 'deploy', port: 2222, identityFile: '~/.ssh/deploy', knownHostsFile: '~/.ssh/known_hosts_deploy', deployPath: '/var/www/shop'`,
    )
  })

  it('does not ask localhost for SSH settings, and keeps its deploy inside the project', async () => {
    const { answers, prompts } = await answer(['common', '', 'localhost', ''])
    expect(prompts).not.toContain('SSH port')
    expect(prompts).toContain('Deploy path on the hosts [.deploy/shop]')
    expect(answers.deploy_path).toBe('.deploy/shop')
  })

  it('asks a Laravel project for the PHP-FPM user', async () => {
    const { answers, prompts } = await answer(['laravel', '', 'localhost', '', 'nginx'])
    expect(prompts).toContain('User PHP-FPM runs as')
    expect(renderDeployfile(answers)).toContain(`set('http_user', 'nginx')`)
  })
})
