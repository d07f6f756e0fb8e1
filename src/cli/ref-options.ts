import { execFileSync } from 'node:child_process'
import { resolve } from 'node:path'
import { ConfigError } from '../model/errors.js'
import type { Host } from '../model/host.js'
import type { Registry } from '../model/registry.js'
import type { Plan } from '../plan/plan.js'
import type { CliOptions } from './options.js'

/**
 * `--branch`, `--tag` and `--revision` choose what the hosts fetch with the git strategy. The upload
 * strategy sends the local directory as it is: a branch or tag cannot be honoured there, and a revision
 * only when the directory is a git checkout at that very commit (CI's checkout of $GITHUB_SHA). Anything
 * else used to be ignored silently (`--revision abc1234` was even written into REVISION): it is refused
 * here, before anything runs, with what to do instead.
 */
export async function checkRefOptions(registry: Registry, plan: Plan, hosts: Host[], overrides: Map<string, unknown>, options: CliOptions): Promise<void> {
  if (!options.branch && !options.tag && !options.revision) return
  // Only a task that fetches code reads them.
  if (!plan.steps.some((step) => step.task.name === 'deploy:update_code')) return
  for (const host of hosts) {
    const config = registry.hostConfig(host, overrides, undefined, { noLazy: true })
    // The recipe's default strategy is a function of `repository`: decided the same way here.
    const explicit = config.has('update_code_strategy') && !config.isLazy('update_code_strategy')
    const strategy = explicit ? String(await config.get('update_code_strategy')) : config.has('repository') ? 'git' : 'upload'
    if (strategy !== 'upload') continue
    for (const flag of ['branch', 'tag'] as const) {
      if (!options[flag]) continue
      throw new ConfigError(
        `--${flag} ${options[flag]}: ${host.alias} deploys with the upload strategy, which sends the local directory as it is; there is no ${flag} to fetch.`,
        `Check out ${options[flag]} locally and deploy without --${flag}, or set repository so the hosts fetch it with git.`,
      )
    }
    const wanted = options.revision!
    // A path computed at run time cannot be checked now: the error then says so.
    const directory = config.has('upload_path') ? await config.get('upload_path').then((p) => resolve(String(p)), () => undefined) : undefined
    const head = directory ? gitHead(directory) : undefined
    if (head && (head === wanted || head.startsWith(wanted.toLowerCase()))) continue
    throw new ConfigError(
      head
        ? `--revision ${wanted}: ${host.alias} uploads ${directory}, which is at ${head.slice(0, 12)}, not ${wanted}.`
        : `--revision ${wanted}: ${host.alias} uploads ${directory ?? 'upload_path'}, which is not a git checkout: the revision cannot be checked.`,
      head
        ? `The upload sends the directory as it is: check out ${wanted} first (git checkout ${wanted}), or leave out --revision.`
        : `Leave out --revision; to label the upload, set it: -o revision=${wanted}.`,
    )
  }
}

function gitHead(directory: string): string | undefined {
  try {
    return execFileSync('git', ['-C', directory, 'rev-parse', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).toString().trim() || undefined
  } catch {
    return undefined
  }
}
