/**
 * The Laravel recipe, on top of the common one: shared storage/ and .env,
 * writable dirs, composer vendors, storage:link, caches baked in the release
 * directory, migrations once before the switch, reloads after it.
 */
import { ConfigError, after, declareSetting, secretsFrom, setDefault, task, use, type Recipe, type TaskContext } from 'deployfile'
import { common, hostLayout, isPreparingRelease } from './common.js'
import { phpFpm } from '../plugins/php-fpm.js'
import { dotenvContent, secretValuesOf } from './laravel/dotenv.js'
import {
  artisanScript,
  envUploadPath,
  migrateScript,
  migrationsSkipped,
  releaseEnvScript,
  reportedLaravelVersion,
  seedEnvScript,
  sharedEnvPath,
  sqliteFileScript,
  storageSkeletonScript,
  vendorsScript,
} from './laravel/scripts.js'

declare module 'deployfile' {
  interface DeployConfig {
    /** Copy vendor/ from the live release before `composer install` (faster installs). Default true. */
    copy_vendors: boolean
    /** Options of `composer install`. Default: Deployer's (no dev, optimized autoloader, no interaction). */
    composer_options: string
    /** Laravel version, as `artisan --version` reports it (found during deploy:vendors). */
    laravel_version: string
    /** Command run after the switch to reload PHP-FPM or reset OPcache, e.g. `sudo systemctl reload php8.2-fpm`. Off by default. */
    php_fpm_reload_command: string
    /** PHP-FPM systemd unit reloaded after the switch, e.g. `php8.2-fpm` (the PHP-FPM plugin, applied by this recipe). */
    php_fpm_service: string
    /** Run `artisan queue:restart` after the switch (when the app uses queue workers). Default false. */
    queue_restart: boolean
  }
}


/** Compares dotted versions: -1, 0 or 1. */
function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (diff !== 0) return Math.sign(diff)
  }
  return 0
}

/** The Laravel version of the release on this host (reported by deploy:vendors), if known. */
async function laravelVersion(ctx: TaskContext): Promise<string | undefined> {
  const version = await ctx.get('laravel_version', '')
  return version || undefined
}

/**
 * Where artisan runs: the release this run is preparing (caches bake its
 * paths), or, outside a deploy (`dep artisan:migrate:status`, `dep
 * artisan:down`), the live release.
 */
async function appPath(ctx: TaskContext): Promise<string> {
  return (await isPreparingRelease(ctx)) ? ctx.get('release_path') : ctx.get('current_path')
}

/**
 * The release's own .env from the dotenv setting: uploaded as content (the
 * stdin of `cat`, created 0600, never on a command line, in the same round
 * trip as the queued commands) so a deploy that fails before the switch
 * changes nothing the live release reads; shared_files then leaves .env out.
 */
async function releaseOwnEnv(ctx: TaskContext, releasePath: string): Promise<void> {
  const content = await dotenvContent(await ctx.get('dotenv'))
  if (!content.trim()) throw new ConfigError('The dotenv setting gave an empty .env.', 'Check the file or the values it is built from.')
  ctx.addSecrets(...secretValuesOf(content))
  await ctx.upload(Buffer.from(content), envUploadPath(releasePath), { mode: 0o600 })
  await ctx.queue(releaseEnvScript(releasePath))
  ctx.set('shared_files', (await ctx.get('shared_files')).filter((file) => file.replace(/^\.\//, '') !== '.env'))
  await ctx.queue(sqliteFileScript(`${releasePath}/.env`))
}

/** What deploy:vendors runs: composer in the new release, vendors copied from the live one when copy_vendors is on. */
async function composerSettings(ctx: TaskContext): Promise<Parameters<typeof vendorsScript>[0]> {
  return {
    layout: await hostLayout(ctx),
    releasePath: await ctx.get('release_path'),
    php: await ctx.get('bin/php'),
    composer: (await ctx.get('bin/composer', '')) || undefined,
    composerOptions: await ctx.get('composer_options'),
    copyVendors: await ctx.get('copy_vendors'),
  }
}

/**
 * Defines `artisan:<command>`: runs `php artisan <command>` in the release
 * directory (the live release outside a deploy). With a version range, a
 * release outside it skips the task and says so.
 */
function artisanTask(
  command: string,
  options: {
    description: string
    min?: string
    max?: string
    once?: boolean
    queue?: boolean
    /** Print what the command prints (status and listing commands), not only with -v. */
    showOutput?: boolean
    phase?: 'prepare' | 'post-switch'
  } = { description: '' },
): void {
  task(`artisan:${command.split(' ')[0]}`, async (ctx) => {
    const version = await laravelVersion(ctx)
    if (version && ((options.min && compareVersions(version, options.min) < 0) || (options.max && compareVersions(version, options.max) > 0))) {
      ctx.info(`skipped: artisan ${command} needs Laravel ${options.min ?? '*'}–${options.max ?? '*'}, this is ${version}`)
      return
    }
    const script = artisanScript(await ctx.get('bin/php'), await appPath(ctx), command)
    if (options.queue) await ctx.queue(script)
    else if (options.showOutput) ctx.info(await ctx.run(script, { quiet: true }))
    else await ctx.run(script)
  }, { description: options.description, once: options.once, phase: options.phase })
}

/** The Laravel recipe. */
export const laravel: Recipe = () => {
  use(common)
  setDefault('shared_dirs', ['storage'])
  setDefault('shared_files', ['.env'])
  // Each directory by name, not recursively: files the web server wrote in
  // shared storage/ (sessions, logs, cache) belong to its user, and a
  // recursive chmod/setfacl by the deploy user fails on them at every later
  // deploy. ACL mode sets default ACLs, so what is created later inherits them.
  setDefault('writable_dirs', [
    'bootstrap/cache',
    'storage',
    'storage/app',
    'storage/app/public',
    'storage/framework',
    'storage/framework/cache',
    'storage/framework/cache/data',
    'storage/framework/sessions',
    'storage/framework/views',
    'storage/logs',
  ])
  setDefault('writable_recursive', false)
  setDefault('bin/php', 'php')
  setDefault('copy_vendors', true)
  setDefault('queue_restart', false)
  setDefault('composer_options', '--prefer-dist --no-progress --no-interaction --no-dev --optimize-autoloader')
  // Keys with no default are declared so that set()/-o accept them (deploy:vendors sets laravel_version).
  declareSetting('laravel_version', { type: 'string', description: 'Laravel version, as artisan --version reports it (found during deploy:vendors).' })
  // Every .env value is a secret for the whole run, not only once deploy:env read it: `dep run
  // 'cat .env'` and any task printing a value must show ***.
  secretsFrom(async (config) => (config.has('dotenv') ? secretValuesOf(await dotenvContent(await config.get('dotenv'))) : []))

  task('deploy:env', async (ctx) => {
    const layout = await hostLayout(ctx)
    const releasePath = await ctx.get('release_path')
    if (ctx.has('dotenv')) {
      await releaseOwnEnv(ctx, releasePath)
    } else {
      await ctx.queue(seedEnvScript(layout, releasePath))
      await ctx.queue(sqliteFileScript(sharedEnvPath(layout)))
    }
    await ctx.queue(storageSkeletonScript(layout))
  }, { phase: 'prepare', description: "The .env: the release's own 0600 file from the dotenv setting, else shared/.env (seeded from .env.example)" })

  task('deploy:vendors', async (ctx) => {
    const version = reportedLaravelVersion(await ctx.run(vendorsScript(await composerSettings(ctx))))
    if (version) ctx.set('laravel_version', version)
  }, { phase: 'prepare', description: 'composer install (vendors copied from the live release first when copy_vendors is on)' })

  // Queued: sent together by laravel:caches, on every host at once (one round trip each).
  artisanTask('storage:link', { description: 'Links public/storage to storage/app/public', min: '5.3', queue: true, phase: 'prepare' })
  artisanTask('config:cache', { description: 'Caches the configuration', min: '5.0', queue: true, phase: 'prepare' })
  artisanTask('route:cache', { description: 'Caches the routes', min: '5.0', queue: true, phase: 'prepare' })
  artisanTask('view:cache', { description: 'Compiles the Blade views', min: '5.6', queue: true, phase: 'prepare' })
  artisanTask('event:cache', { description: 'Caches the events and listeners', min: '5.8.9', queue: true, phase: 'prepare' })
  artisanTask('optimize', { description: 'artisan optimize (config, routes; more on newer Laravel)' })
  artisanTask('optimize:clear', { description: 'Clears the cached bootstrap files' })

  // Shown, not hidden: the artisan commands' time is spent here (their own lines say "queued").
  task('laravel:caches', async (ctx) => {
    await ctx.flush()
  }, {
    phase: 'prepare',
    description: 'Runs the queued artisan commands (storage:link and the caches) on every host at once, before the migrations',
  })

  task('artisan:migrate', async (ctx) => {
    const skipped = migrationsSkipped(await ctx.run(migrateScript(await ctx.get('bin/php'), await appPath(ctx), 'migrate --force')))
    if (skipped) ctx.warning(`artisan:migrate skipped: ${skipped}`)
  }, { phase: 'prepare', once: true, description: 'Runs the migrations once (one host), before the switch' })

  // Ready to hook in with before()/after(): each runs in the release directory.
  artisanTask('down', { description: 'Puts the application into maintenance mode' })
  artisanTask('up', { description: 'Brings the application out of maintenance mode' })
  artisanTask('db:seed --force', { description: 'Seeds the database', once: true })
  artisanTask('migrate:rollback --force', { description: 'Rolls the last migration batch back', once: true })
  artisanTask('migrate:status', { description: 'Shows the status of each migration', once: true, showOutput: true })
  artisanTask('migrate:fresh --force', { description: 'Drops all tables and migrates again (careful)', once: true })
  artisanTask('queue:restart', { description: 'Restarts queue workers after their current job', phase: 'post-switch' })
  artisanTask('horizon:terminate', { description: 'Terminates Horizon (its supervisor restarts it)', min: '5.5', phase: 'post-switch' })
  artisanTask('octane:reload', { description: 'Reloads Octane workers', min: '8.0', phase: 'post-switch' })
  artisanTask('schedule:interrupt', { description: 'Interrupts running schedule:work', min: '10.0', phase: 'post-switch' })
  artisanTask('key:generate', { description: 'Sets APP_KEY in .env' })
  artisanTask('cache:clear', { description: 'Flushes the application cache' })
  artisanTask('config:clear', { description: 'Removes the configuration cache' })
  artisanTask('route:clear', { description: 'Removes the route cache' })
  artisanTask('view:clear', { description: 'Removes compiled views' })
  artisanTask('event:clear', { description: 'Removes the event cache', min: '5.8.9' })
  artisanTask('queue:failed', { description: 'Lists failed queue jobs', once: true, showOutput: true })
  artisanTask('about', { description: 'Shows application information', min: '9.21', showOutput: true })

  task('laravel:queue_restart', async (ctx) => {
    if (await ctx.get('queue_restart')) await ctx.invoke('artisan:queue:restart')
  }, { phase: 'post-switch', hidden: true, description: 'artisan queue:restart when queue_restart is on' })

  // Hooked into the common deploy rather than restating it: `dep tree deploy` shows the whole order.
  after('deploy:update_code', 'deploy:env')
  for (const step of [
    'deploy:vendors',
    'artisan:storage:link',
    'artisan:config:cache',
    'artisan:route:cache',
    'artisan:view:cache',
    'artisan:event:cache',
    // Every host has built its caches before the database changes: a cache that
    // fails to build stops the deploy while the schema is still the old one.
    'laravel:caches',
    'artisan:migrate',
  ]) {
    after('deploy:writable', step)
  }
  // php-fpm:reload (the PHP-FPM plugin) after the switch and after a revert, before the queue restart.
  use(phpFpm)
  after('deploy:symlink', 'laravel:queue_restart')
}
