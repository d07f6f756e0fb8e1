/**
 * The settings deployfile and its recipes know. Every key is optional to set;
 * `get()` of a key nobody set is an error that names it.
 *
 * Add your own keys by declaration merging, then `set`/`get` them with types:
 *
 * ```ts
 * declare module 'deployfile' {
 *   interface DeployConfig {
 *     slack_webhook: string
 *   }
 * }
 * set('slack_webhook', 'https://hooks.example.test/…')
 * ```
 */
export interface DeployConfig {
  /** The host's alias (set for every host). */
  alias: string
  /** The host's address (set for every host). */
  hostname: string
  /** The host's SSH user, when given in its options. */
  remote_user: string
  /** The host's SSH port, when given in its options. */
  port: number
  /** Where releases live on the host, e.g. `/var/www/site`. */
  deploy_path: string
  /** Git URL the code comes from (code strategy `git`). */
  repository: string
  /** Branch to deploy (default: the repository's HEAD). */
  branch: string
  /** Tag to deploy instead of a branch. */
  tag: string
  /** Exact revision (commit) to deploy. */
  revision: string
  /** How many good releases to keep on each host. Default 5. */
  keep_releases: number
  /** Name of the release being deployed (same on every host). */
  release_name: string
  /** Absolute path of the release being prepared. */
  release_path: string
  /** Absolute path of the `current` link. */
  current_path: string
  /** Directories kept across releases in `shared/` and linked into each release. */
  shared_dirs: string[]
  /** Files kept across releases in `shared/` and linked into each release. */
  shared_files: string[]
  /** Directories the web server user must be able to write. */
  writable_dirs: string[]
  /** How to make `writable_dirs` writable. Default `acl`. */
  writable_mode: 'acl' | 'chmod' | 'chown' | 'chgrp' | 'skip'
  /** Apply writable modes recursively. Default true. */
  writable_recursive: boolean
  /** Mode used by `writable_mode: 'chmod'`. Default `0775`. */
  writable_chmod_mode: string
  /** The web server user (for acl/chown modes). */
  http_user: string
  /** The web server group (for chgrp mode). */
  http_group: string
  /** Paths removed from a release after the code is in place. */
  clear_paths: string[]
  /** Directories copied from the previous release before install steps (e.g. vendor). */
  copy_dirs: string[]
  /** Where the code comes from: a git repository, or a local directory uploaded to each host. */
  update_code_strategy: 'git' | 'upload'
  /** Local directory uploaded by the `upload` strategy. */
  upload_path: string
  /** Command run inside the new release before the switch; a failure aborts the deploy everywhere. */
  healthcheck_command: string
  /** URL fetched after the switch; a non-2xx answer rolls the whole fleet back. */
  healthcheck_url: string
  /** Tries for `healthcheck_url`. Default 5. */
  healthcheck_retries: number
  /** Timeout of one `healthcheck_url` try, in seconds. Default 5. */
  healthcheck_timeout: number
  /** Release to switch to with `dep rollback`, instead of the previous good one. */
  rollback_to: string
  /** Write a transcript of the run to this file. */
  log_file: string
  /** Who is deploying (recorded in the lock and the ledger). */
  user: string
  /** The git binary on the host. */
  'bin/git': string
  /** The php binary on the host. */
  'bin/php': string
  /** The composer command on the host. */
  'bin/composer': string
  /**
   * The shared `.env` (Laravel recipe), uploaded over SFTP with mode 0600: a
   * local file path, the content itself, or an object of values (e.g. built in
   * CI from secrets). Its values are masked in all output.
   */
  dotenv: string | Record<string, string>
  /** tar patterns left out by the `upload` strategy. Default `['.git']`. */
  upload_exclude: string[]
  /** Set by `--force`: e.g. `deploy:unlock --force` removes another run's lock. */
  force: boolean
}

/** Any key of {@link DeployConfig}. */
export type ConfigKey = keyof DeployConfig & string
