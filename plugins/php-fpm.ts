/**
 * PHP-FPM after the switch: a graceful reload, for web servers that hand PHP the path through
 * the `current` link (`$document_root`). PHP caches resolved paths (realpath cache, per worker)
 * and compiled scripts (OPcache) by that path, so such a setup keeps serving the previous
 * release until the workers are replaced. A setup that passes `$realpath_root` needs none of
 * this (docs/plugins.md#php-fpm).
 *
 * Off until configured: `php_fpm_service` (a systemd unit, reloaded with `systemctl reload`,
 * through `sudo -n` unless the deploy user is root) or `php_fpm_reload_command` (any command,
 * e.g. `cachetool opcache:reset --fcgi=/run/php/php8.2-fpm.sock`). Runs after the switch, and
 * after hosts went back to an earlier release (automatic revert, `dep rollback`).
 *
 * @example
 * import { use, set } from 'deployfile'
 * import { laravel } from 'deployfile/recipes/laravel'
 * import { phpFpm } from 'deployfile/plugins/php-fpm'
 * use(laravel)
 * use(phpFpm)
 * set('php_fpm_service', 'php8.2-fpm')
 */
import { after, declareSetting, sh, task, type Command, type Recipe } from 'deployfile'

declare module 'deployfile' {
  interface DeployConfig {
    /** The PHP-FPM systemd unit reloaded after the switch, e.g. `php8.2-fpm`. Not set: no reload. */
    php_fpm_service: string
    /** Command run after the switch to reload PHP-FPM or reset OPcache, e.g. `sudo systemctl reload php8.2-fpm`. Off by default. */
    php_fpm_reload_command: string
  }
}

/** What PHP-FPM is told after a switch. */
export interface PhpFpmReload {
  /** `php_fpm_service`: a systemd unit. */
  service?: string
  /** `php_fpm_reload_command`: a command of your own (beats `service`). */
  command?: string
}

/**
 * The command that reloads PHP-FPM, or undefined when nothing is configured. A unit is reloaded
 * with `systemctl reload` (SIGUSR2 to the master: new workers, queued requests wait instead of
 * failing); `sudo -n` fails at once instead of waiting for a password nobody types.
 */
export function phpFpmReloadCommand(reload: PhpFpmReload): Command | string | undefined {
  if (reload.command) return reload.command
  if (!reload.service) return undefined
  return sh`if [ "$(id -u)" -eq 0 ]; then systemctl reload ${reload.service}; else sudo -n systemctl reload ${reload.service}; fi`
}

/** The PHP-FPM plugin: declares its settings and hooks `php-fpm:reload` after the switch and after a revert. */
export const phpFpm: Recipe = () => {
  declareSetting('php_fpm_service', {
    type: 'string',
    description: 'PHP-FPM systemd unit reloaded after the switch, e.g. php8.2-fpm (only for $document_root setups).',
    ask: 'PHP-FPM service reloaded after the switch (empty: none, for $realpath_root setups)',
  })
  declareSetting('php_fpm_reload_command', {
    type: 'string',
    description: 'Command run after the switch to reload PHP-FPM or reset OPcache (beats php_fpm_service).',
  })

  task('php-fpm:reload', async (ctx) => {
    const command = phpFpmReloadCommand({ service: await ctx.get('php_fpm_service', ''), command: await ctx.get('php_fpm_reload_command', '') })
    if (command) await ctx.run(command)
  }, {
    phase: 'post-switch',
    description: 'Reloads PHP-FPM (php_fpm_service or php_fpm_reload_command; off by default: with $realpath_root no reload is needed)',
  })

  after('deploy:symlink', 'php-fpm:reload')
  // Hosts that went back serve the old release again: their workers must let go of the new one.
  after('deploy:reverted', 'php-fpm:reload')
}
