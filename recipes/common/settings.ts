/**
 * The common recipe's settings: their defaults, and what each step reads of
 * them as one typed value, so a task body asks for what it needs at once.
 */
import { existsSync } from 'node:fs'
import { userInfo } from 'node:os'
import { resolve } from 'node:path'
import { ConfigError, setDefault, type TaskContext } from 'deployfile'
import { nextReleaseName } from './fleet.js'
import { fleetViews } from './run.js'
import { localHeadScript, type WritableOptions } from './scripts.js'

/** The defaults of the common recipe (any set(), host config or -o wins). */
export function commonDefaults(): void {
  setDefault('keep_releases', 5)
  setDefault('shared_dirs', [])
  setDefault('shared_files', [])
  setDefault('writable_dirs', [])
  setDefault('writable_mode', 'acl')
  setDefault('writable_recursive', true)
  setDefault('writable_chmod_mode', '0775')
  setDefault('clear_paths', [])
  setDefault('copy_dirs', [])
  setDefault('upload_exclude', ['.git'])
  setDefault('healthcheck_retries', 5)
  setDefault('healthcheck_timeout', 5)
  setDefault('bin/git', 'git')
  setDefault('user', () => process.env.GITHUB_ACTOR ?? userInfo().username)
  setDefault('update_code_strategy', (ctx) => (ctx.has('repository') ? 'git' : 'upload'))
  setDefault('release_path', '{{deploy_path}}/releases/{{release_name}}')
  setDefault('current_path', '{{deploy_path}}/current')
  // One name for the whole fleet, from every selected host's view: never reused.
  setDefault('release_name', (ctx) => ctx.shared('common:release_name', async () => nextReleaseName(await fleetViews(ctx))))
}

/** The git ref a deploy exports: `revision`, else `tag`, else `branch`, else HEAD. */
async function gitRef(ctx: TaskContext): Promise<string> {
  return (await ctx.get('revision', '')) || (await ctx.get('tag', '')) || (await ctx.get('branch', '')) || 'HEAD'
}

/** What deploy:info says is deployed: `repository at ref`, or the upload directory. */
export async function deployedSource(ctx: TaskContext): Promise<string> {
  if ((await ctx.get('update_code_strategy')) === 'git') return `${await ctx.get('repository')} at ${await gitRef(ctx)}`
  return ctx.get('upload_path', '(upload_path not set)')
}

/** Where deploy:update_code takes the code from. */
export type CodeSource =
  | { strategy: 'git'; repository: string; ref: string; git: string }
  | { strategy: 'upload'; directory: string; exclude: string[] }

/** The code source of this host, checked: a wrong strategy or a missing upload directory names the fix. */
export async function codeSource(ctx: TaskContext): Promise<CodeSource> {
  const strategy = await ctx.get('update_code_strategy')
  if (strategy === 'git') return { strategy, repository: await ctx.get('repository'), ref: await gitRef(ctx), git: await ctx.get('bin/git') }
  if (strategy !== 'upload') throw new ConfigError(`update_code_strategy must be "git" or "upload", got "${strategy}".`)
  if (!ctx.has('upload_path')) {
    throw new ConfigError(
      `Nothing to deploy to ${ctx.host.alias}: neither "repository" nor "upload_path" is set.`,
      "Set repository (a git URL: set('repository', 'git@github.com:acme/app.git')) or upload_path (a local directory to upload).",
    )
  }
  const directory = resolve(await ctx.parse(await ctx.get('upload_path')))
  if (!existsSync(directory)) throw new ConfigError(`upload_path ${directory} does not exist.`, 'Build it first, or fix upload_path.')
  return { strategy, directory, exclude: await ctx.get('upload_exclude') }
}

/** The revision of an uploaded directory: the `revision` setting, its git HEAD, or the time; asked once per run. */
export async function uploadRevision(ctx: TaskContext, directory: string): Promise<string> {
  if (ctx.has('revision')) return String(await ctx.get('revision'))
  return ctx.shared(`common:revision:${directory}`, async () => {
    const head = await ctx.runLocally(localHeadScript(directory), { quiet: true })
    return head.trim() || `upload ${new Date().toISOString()}`
  })
}

/** What deploy:writable does (writable_dirs by writable_mode, for http_user or http_group). */
export async function writableSettings(ctx: TaskContext): Promise<WritableOptions> {
  return {
    dirs: await ctx.get('writable_dirs'),
    mode: await ctx.get('writable_mode'),
    recursive: await ctx.get('writable_recursive'),
    chmodMode: await ctx.get('writable_chmod_mode'),
    httpUser: (await ctx.get('http_user', '')) || undefined,
    httpGroup: (await ctx.get('http_group', '')) || undefined,
  }
}

/** deploy:verify's command and its time limit (seconds), when healthcheck_command is set. */
export async function verifyCommand(ctx: TaskContext): Promise<{ command: string; timeout: number } | undefined> {
  const command = await ctx.get('healthcheck_command', '')
  return command ? { command, timeout: (await ctx.get('healthcheck_timeout')) * 6 } : undefined
}

/** The HTTP health check after the switch, when healthcheck_url is set. */
export interface HealthCheck {
  url: string
  tries: number
  /** One try's limit, in milliseconds. */
  timeoutMs: number
}

/** deploy:healthcheck's URL, tries and time limit, when healthcheck_url is set. */
export async function healthCheck(ctx: TaskContext): Promise<HealthCheck | undefined> {
  const url = await ctx.get('healthcheck_url', '')
  return url ? { url, tries: await ctx.get('healthcheck_retries'), timeoutMs: (await ctx.get('healthcheck_timeout')) * 1000 } : undefined
}
