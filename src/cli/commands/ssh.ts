import { ConfigError, ExitCode } from '../../model/errors.js'
import type { Host } from '../../model/host.js'
import type { Registry } from '../../model/registry.js'
import { selectHosts } from '../../plan/selector.js'

/** `dep ssh [host]`: an interactive shell in the current release (else deploy_path). */
export async function runSsh(registry: Registry, hosts: Host[], args: string[], overrides: Map<string, unknown>): Promise<number> {
  const candidates = selectHosts(hosts, args.slice(0, 1))
  if (candidates.length > 1 && args.length === 0) {
    throw new ConfigError('dep ssh needs a host when the deployfile has several.', `Hosts: ${candidates.map((h) => h.alias).join(', ')}`)
  }
  const host = candidates[0]
  const config = registry.hostConfig(host, overrides)
  const deployPath = config.has('deploy_path') ? String(await config.get('deploy_path')) : undefined
  if (host.local) {
    const { spawnSync } = await import('node:child_process')
    const cwd = deployPath ? `${deployPath}/current` : process.cwd()
    const { existsSync } = await import('node:fs')
    const result = spawnSync(process.env.SHELL ?? '/bin/sh', [], { stdio: 'inherit', cwd: existsSync(cwd) ? cwd : deployPath ?? process.cwd() })
    return result.status ?? ExitCode.TaskFailed
  }
  const { openInteractiveShell } = await import('../../transport/ssh/index.js')
  return openInteractiveShell(host, { cwd: deployPath ? [`${deployPath}/current`, deployPath] : undefined })
}
