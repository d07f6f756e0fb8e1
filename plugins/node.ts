/**
 * The Node.js service plugin, on top of the common recipe: dependencies
 * installed on the host (`npm ci --omit=dev`, or node_modules reused from the
 * live release when the lockfile is unchanged) or built here and uploaded,
 * then pm2 or systemd reloaded after the switch and a health check asked from
 * the host; a failed health check reverts the whole fleet. Use it with
 * `use(node)` from `deployfile/plugins/node`. See docs/node.md.
 */
import { chmod, cp, mkdtemp, rm } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { after, before, ConfigError, declareSetting, DeployError, parseMarkers, sh, task, use, type Recipe, type TaskContext } from 'deployfile'
import { common, hostLayout } from 'deployfile/recipes/common'
import { healthCheckScript, localBuildScript, pm2RestartScript, remoteInstallScript, systemdRestartScript, type NodeEnvironment } from './node/scripts.js'

declare module 'deployfile' {
  interface DeployConfig {
    /** Where the release is built: `remote` (npm ci in the new release on each host, the default) or `local` (here, then uploaded). */
    node_build: 'remote' | 'local'
    /** Command that builds the app (e.g. `npm run build`), run after a full install; dev dependencies are pruned after it. */
    node_build_command: string
    /** Extra options of `npm ci` and `npm prune`. Default `--no-audit --no-fund`. */
    node_npm_options: string
    /** Copy the live release's node_modules (hard links) when package-lock.json is unchanged, instead of npm ci. Default true. */
    node_modules_reuse: boolean
    /** How the app is restarted after the switch (and after a revert): `pm2` (default), `systemd` or `none`. */
    node_restart: 'pm2' | 'systemd' | 'none'
    /** The pm2 ecosystem file, relative to the release. Default `ecosystem.config.cjs`. */
    pm2_ecosystem: string
    /** Only this app (or comma-separated apps) of the ecosystem file (`pm2 … --only`). */
    pm2_app: string
    /** PM2_HOME of the pm2 daemon on the host (pm2's default, ~/.pm2, when unset). */
    pm2_home: string
    /** The systemd unit that runs the app (node_restart `systemd`). */
    systemd_unit: string
    /** The systemctl command, e.g. `sudo systemctl` or `systemctl --user`. Default `systemctl`. */
    'bin/systemctl': string
    /** URL asked from the host after the restart, e.g. `http://127.0.0.1:3000/health`; not 2xx reverts the fleet. */
    node_health_url: string
    /** Directory (or `a:b` directories) put in front of PATH for node, npm and pm2 on the host, e.g. `/opt/node/bin`. */
    node_bin: string
  }
}

async function environment(ctx: TaskContext): Promise<NodeEnvironment> {
  return {
    nodeBin: (await ctx.get('node_bin', '')) || undefined,
    pm2Home: (await ctx.get('pm2_home', '')) || undefined,
  }
}

async function buildCommand(ctx: TaskContext): Promise<string | undefined> {
  return (await ctx.get('node_build_command', '')) || undefined
}

/**
 * node_build "local": builds a staging copy of upload_path once for the
 * whole run (never the user's own node_modules: it is left out of the copy
 * and the build prunes dev dependencies), and returns the staging directory.
 * It is removed when this process exits.
 */
async function buildLocally(ctx: TaskContext): Promise<string> {
  const source = resolve(await ctx.parse(await ctx.get('upload_path')))
  const exclude = new Set([...(await ctx.get('upload_exclude')), 'node_modules'])
  const stagingDir = await mkdtemp(join(tmpdir(), 'deployfile-node-build-'))
  // The upload gives the release directory this mode: 0755 like every release, not mkdtemp's 0700.
  await chmod(stagingDir, 0o755)
  process.once('exit', () => rmSync(stagingDir, { recursive: true, force: true }))
  try {
    await cp(source, stagingDir, {
      recursive: true,
      verbatimSymlinks: true,
      filter: (path) => !relative(source, path).split('/').some((part) => exclude.has(part)),
    })
    await ctx.runLocally(localBuildScript({ stagingDir, npmOptions: await ctx.get('node_npm_options'), buildCommand: await buildCommand(ctx) }))
  } catch (error) {
    await rm(stagingDir, { recursive: true, force: true })
    throw error
  }
  return stagingDir
}

/** The systemd unit to restart; a ConfigError naming the setting when it is missing. */
async function systemdUnit(ctx: TaskContext): Promise<string> {
  const unit = await ctx.get('systemd_unit', '')
  if (!unit) throw new ConfigError('node_restart is "systemd" but systemd_unit is not set.', "Set systemd_unit, e.g. set('systemd_unit', 'api.service'), or node_restart to 'pm2' or 'none'.")
  return unit
}

/** The Node.js service recipe. */
export const node: Recipe = () => {
  use(common)
  declareSetting('node_build', { type: { oneOf: ['remote', 'local'] }, default: 'remote', description: 'Where the release is built: remote (npm ci on each host) or local (here, then uploaded).' })
  declareSetting('node_build_command', { type: 'string', description: 'Command that builds the app (e.g. npm run build), after a full install; dev dependencies are pruned after it.' })
  declareSetting('node_npm_options', { type: 'string', default: '--no-audit --no-fund', description: 'Extra options of npm ci and npm prune.' })
  declareSetting('node_modules_reuse', { type: 'boolean', default: true, description: "Copy the live release's node_modules (hard links) when package-lock.json is unchanged." })
  declareSetting('node_restart', { type: { oneOf: ['pm2', 'systemd', 'none'] }, default: 'pm2', description: 'How the app is restarted after the switch and after a revert.' })
  declareSetting('pm2_ecosystem', { type: 'string', default: 'ecosystem.config.cjs', description: 'The pm2 ecosystem file, relative to the release.' })
  declareSetting('pm2_app', { type: 'string', description: 'Only this app (or a,b) of the ecosystem file (pm2 --only).' })
  declareSetting('pm2_home', { type: 'string', description: 'PM2_HOME of the pm2 daemon on the host (default ~/.pm2).' })
  declareSetting('systemd_unit', { type: 'string', description: 'The systemd unit that runs the app (node_restart systemd).' })
  declareSetting('bin/systemctl', { type: 'string', default: 'systemctl', description: 'The systemctl command, e.g. sudo systemctl.' })
  declareSetting('node_health_url', { type: 'string', description: 'URL asked from the host after the restart; not 2xx reverts the fleet.' })
  declareSetting('node_bin', { type: 'string', description: 'Directory put in front of PATH for node, npm and pm2 on the host.' })

  task('node:check', async (ctx) => {
    // Before the lock: a setting that would only fail after the switch (and again in the revert) fails here.
    if ((await ctx.get('node_restart')) === 'systemd') await systemdUnit(ctx)
    if ((await ctx.get('node_build')) === 'local') {
      if (!ctx.has('upload_path')) {
        throw new ConfigError('node_build "local" builds upload_path on this machine and uploads the result, but upload_path is not set.', "Set upload_path to the app's directory, e.g. set('upload_path', '.').")
      }
      // The release is what is built here, from upload_path (its git HEAD is the revision), not a checkout on the host.
      ctx.set('update_code_strategy', 'upload')
    }
  }, { phase: 'prepare', hidden: true, description: 'Checks the Node settings before anything changes on a host' })

  task('node:build_local', async (ctx) => {
    if ((await ctx.get('node_build')) !== 'local') return
    if (ctx.dryRun) return ctx.info(`would build ${await ctx.get('upload_path', '(upload_path not set)')} here and upload it`)
    const stagingDir = await ctx.shared('node:staging', () => buildLocally(ctx))
    const releasePath = await ctx.get('release_path')
    // The build goes over what deploy:update_code uploaded; node_modules is only ever the build's.
    await ctx.queue(sh`rm -rf -- ${`${releasePath}/node_modules`}`)
    await ctx.upload(stagingDir, releasePath, { exclude: (await ctx.get('upload_exclude')).filter((pattern) => pattern !== 'node_modules') })
  }, { phase: 'prepare', description: 'node_build local: npm ci, node_build_command and npm prune --omit=dev here, once, in a copy of upload_path, uploaded over the release' })

  task('node:install', async (ctx) => {
    if ((await ctx.get('node_build')) !== 'remote') return
    const output = await ctx.run(
      remoteInstallScript({
        env: await environment(ctx),
        releasePath: await ctx.get('release_path'),
        currentPath: await ctx.get('current_path'),
        npmOptions: await ctx.get('node_npm_options'),
        buildCommand: await buildCommand(ctx),
        reuse: await ctx.get('node_modules_reuse'),
      }),
    )
    if (parseMarkers(output).get('node_modules') === 'reused') ctx.info('package-lock.json unchanged: node_modules copied from the live release (hard links)')
  }, { phase: 'prepare', description: 'node_build remote: npm ci --omit=dev in the new release (node_modules hard-linked from the live release when the lockfile is unchanged), or a full install, node_build_command and npm prune' })

  task('node:restart', async (ctx) => {
    // A failure before the switch left every host on the release it was running: nothing to restart.
    if (ctx.failure && ctx.failure.phase === 'prepare') return
    const mode = await ctx.get('node_restart')
    if (mode === 'none') return
    if (mode === 'systemd') {
      await ctx.run(systemdRestartScript({ systemctl: await ctx.get('bin/systemctl'), unit: await systemdUnit(ctx) }))
      return
    }
    const app = (await ctx.get('pm2_app', '')) || undefined
    const output = await ctx.run(
      pm2RestartScript({
        env: await environment(ctx),
        currentPath: await ctx.get('current_path'),
        // Where releases live, also when release_path is overridden (the common recipe's layout).
        releasesDir: (await hostLayout(ctx)).releasesDir,
        ecosystem: await ctx.get('pm2_ecosystem'),
        app,
      }),
    )
    const markers = parseMarkers(output)
    if (markers.has('no_current')) return ctx.info('no live release: nothing for pm2 to run')
    // `@pinned <app> <path>`: the app's name, then the release path it runs from.
    const pinned = markers.all('pinned').map((value) => /^(\S+) (.*)$/.exec(value) ?? ['', value, ''])
    if (pinned.length > 0) {
      throw new DeployError(`pm2 runs ${pinned.map((m) => `${m[1]} from ${m[2]}`).join(', ')}: a release directory, not ${await ctx.get('current_path')}, so it never picks up a new release.`, {
        hint: `Give the app a relative script and no cwd (or cwd ${await ctx.get('current_path')}) in ${await ctx.get('pm2_ecosystem')}, then remove the old process once: pm2 delete ${pinned.map((m) => m[1]).join(' ')}`,
      })
    }
    const forked = markers.all('fork')
    if (forked.length > 0) ctx.warning(`pm2 runs ${forked.join(', ')} in fork mode: a reload restarts it with a gap; exec_mode 'cluster' reloads without one`)
  }, { phase: 'post-switch', description: 'Reloads the app: pm2 startOrReload of the ecosystem file through current, or systemctl reload-or-restart' })

  task('node:healthcheck', async (ctx) => {
    const url = await ctx.get('node_health_url', '')
    if (!url) return
    const tries = await ctx.get('healthcheck_retries')
    const output = await ctx.run(healthCheckScript({ env: await environment(ctx), url, tries, timeoutMs: (await ctx.get('healthcheck_timeout')) * 1000 }))
    const markers = parseMarkers(output)
    if (ctx.dryRun || markers.has('healthy')) return
    const reason = markers.get('unhealthy') ?? (output.trim() || 'no answer')
    throw new DeployError(`${url} did not answer 2xx on ${ctx.host.alias} after ${tries} tries (${reason}).`, {
      hint: 'The fleet goes back to the release it served. Look at the new release\'s logs (pm2 logs, journalctl -u UNIT).',
    })
  }, { phase: 'post-switch', description: 'Asks node_health_url from each host (healthcheck_retries tries); not 2xx reverts the whole fleet' })

  before('deploy:lock', 'node:check')
  after('deploy:update_code', 'node:build_local')
  after('deploy:writable', 'node:install')
  after('deploy:symlink', 'node:restart')
  after('deploy:symlink', 'node:healthcheck')
  // Hosts that went back (automatic revert, dep rollback) run the release they serve again.
  after('deploy:reverted', 'node:restart')
}
