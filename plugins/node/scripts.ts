/**
 * The shell side of the Node.js service plugin: every builder returns a
 * `Command` built with `sh` (each value POSIX single-quoted, fine on dash),
 * so a unit test can compare its text without a host.
 */
import { raw, sh, type Command } from 'deployfile'

/** Where the host finds node, npm and pm2, and which pm2 daemon it talks to. */
export interface NodeEnvironment {
  /** Directories put in front of PATH (`node_bin`), e.g. `/opt/node/bin`. */
  nodeBin?: string
  /** PM2_HOME of the pm2 daemon that runs the app (`pm2_home`); pm2's own default (~/.pm2) when unset. */
  pm2Home?: string
}

/** The lines that set PATH and PM2_HOME for the rest of a script (nothing when both are unset). */
export function environmentLines(env: NodeEnvironment): Command {
  const lines: Command[] = []
  if (env.nodeBin) lines.push(sh`PATH=${env.nodeBin}:"$PATH"; export PATH`)
  if (env.pm2Home) lines.push(sh`PM2_HOME=${env.pm2Home}; export PM2_HOME`)
  return lines.length === 0 ? sh`:` : lines.slice(1).reduce((all, line) => sh`${all}
${line}`, lines[0])
}

/** Fails with a message naming the setting to fix when `bin` is not on the host's PATH. */
export function requireBinary(bin: string): Command {
  return sh`command -v ${bin} >/dev/null 2>&1 || { echo ${`deployfile: ${bin} is not on the PATH of this host; install it, or set node_bin to the directory that holds it`} >&2; exit 5; }`
}

/**
 * What an installed node_modules was made for: the Node ABI, the platform and
 * the npm options. A copy is only reused when this matches too: a new Node
 * major needs its native addons rebuilt even with the same lockfile.
 */
const STAMP = 'node_modules/.deployfile-install'

/**
 * deploy's `node:install` on the host (node_build "remote"), in the new release:
 *
 * - no build command: when the live release's package-lock.json is
 *   byte-identical (and its install stamp matches), its node_modules is copied
 *   with hard links (`cp -al`: only directory entries are written, no file
 *   data; each release keeps its own tree, so cleanup of the old release never
 *   breaks the new one), else `npm ci --omit=dev`;
 * - a build command: `npm ci --include=dev`, the build, `npm prune --omit=dev`
 *   (a pruned copy lacks the dev dependencies the build needs: no reuse).
 *
 * Prints `@node_modules reused` or `@node_modules installed`.
 */
export function remoteInstallScript(options: {
  env: NodeEnvironment
  releasePath: string
  currentPath: string
  npmOptions: string
  buildCommand?: string
  reuse: boolean
}): Command {
  const npmOptions = raw(options.npmOptions)
  const live = options.currentPath
  const checks = sh`if [ ! -f package.json ]; then echo ${`deployfile: ${options.releasePath} has no package.json; deploy the directory that holds it`} >&2; exit 5; fi
if [ ! -f package-lock.json ] && [ ! -f npm-shrinkwrap.json ]; then echo 'deployfile: npm ci needs package-lock.json in the release; commit it (npm install writes it)' >&2; exit 5; fi
stamp="$(node -p 'process.versions.modules + " " + process.platform + "-" + process.arch') "${options.npmOptions}`
  const install = options.buildCommand
    ? sh`npm ci --include=dev ${npmOptions}
${raw(options.buildCommand)}
npm prune --omit=dev ${npmOptions}
mkdir -p node_modules && printf '%s\\n' "$stamp" > ${STAMP}
echo '@node_modules installed'`
    : sh`if ${raw(options.reuse ? 'true' : 'false')} && [ -d ${`${live}/node_modules`} ] && [ ! -e node_modules ] && cmp -s ${`${live}/package-lock.json`} package-lock.json && [ "$(cat ${`${live}/${STAMP}`} 2>/dev/null)" = "$stamp" ]; then
  cp -al ${`${live}/node_modules`} node_modules
  rm -rf node_modules/.cache
  echo '@node_modules reused'
else
  npm ci --omit=dev ${npmOptions}
  mkdir -p node_modules && printf '%s\\n' "$stamp" > ${STAMP}
  echo '@node_modules installed'
fi`
  return sh`set -e
${environmentLines(options.env)}
${requireBinary('node')}
${requireBinary('npm')}
cd ${options.releasePath}
${checks}
${install}`
}

/**
 * The local build (node_build "local"), run in a staging copy of upload_path:
 * the install, the build command, and the pruning that leaves only what runs
 * in production, so the upload is the whole release.
 */
export function localBuildScript(options: { stagingDir: string; npmOptions: string; buildCommand?: string }): Command {
  const npmOptions = raw(options.npmOptions)
  return options.buildCommand
    ? sh`set -e
cd ${options.stagingDir}
npm ci --include=dev ${npmOptions}
${raw(options.buildCommand)}
npm prune --omit=dev ${npmOptions}`
    : sh`set -e
cd ${options.stagingDir}
npm ci --omit=dev ${npmOptions}`
}

/**
 * A node program checking the pm2 processes after a reload, reading `pm2
 * jlist` on stdin. A process whose script lies under releases/ was started
 * from a release directory, not through `current`: pm2 keeps pm_exec_path and
 * pm_cwd across reloads, so it would serve that release forever (`@pinned`).
 * A fork-mode process restarts with a gap (`@fork`): cluster mode reloads
 * without one.
 */
const PM2_CHECK = `let text = ''
process.stdin.on('data', (chunk) => (text += chunk))
process.stdin.on('end', () => {
  const [releases, only] = process.argv.slice(1)
  const list = JSON.parse(text.slice(Math.max(0, text.search(/^\\[[{\\]]/m))))
  for (const proc of list) {
    const env = proc.pm2_env || {}
    if (only && !only.split(',').includes(proc.name)) continue
    if (String(env.pm_exec_path).startsWith(releases + '/') || String(env.pm_cwd).startsWith(releases + '/')) console.log('@pinned ' + proc.name + ' ' + env.pm_exec_path)
    if (env.exec_mode === 'fork_mode') console.log('@fork ' + proc.name)
  }
})`

/**
 * `node:restart` with pm2: `pm2 startOrReload` of the ecosystem file of the
 * live release, through `current` (`--cwd` it too: an app pm2 starts for the
 * first time keeps that cwd for good, and `current` resolves anew at each
 * reload), then a check that no process is pinned to a release directory.
 * Prints `@no_current` when there is no live release to run.
 */
export function pm2RestartScript(options: {
  env: NodeEnvironment
  currentPath: string
  releasesDir: string
  ecosystem: string
  app?: string
}): Command {
  const ecosystem = `${options.currentPath}/${options.ecosystem}`
  const only = options.app ? sh` --only ${options.app}` : sh``
  return sh`set -e
${environmentLines(options.env)}
if [ ! -L ${options.currentPath} ]; then echo '@no_current'; exit 0; fi
${requireBinary('pm2')}
if [ ! -f ${ecosystem} ]; then echo ${`deployfile: pm2_ecosystem ${options.ecosystem} is not in the live release (${ecosystem}); add it, or set pm2_ecosystem`} >&2; exit 5; fi
cd ${options.currentPath}
pm2 startOrReload ${ecosystem} --cwd ${options.currentPath} --update-env${only}
pm2 jlist | node -e ${PM2_CHECK} ${options.releasesDir} ${options.app ?? ''}`
}

/** `node:restart` with systemd: `systemctl reload-or-restart`, then the unit must be active. */
export function systemdRestartScript(options: { systemctl: string; unit: string }): Command {
  const systemctl = raw(options.systemctl)
  return sh`${systemctl} reload-or-restart -- ${options.unit}
${systemctl} is-active --quiet -- ${options.unit} || { echo ${`deployfile: systemd unit ${options.unit} is not active after reload-or-restart; see: journalctl -u ${options.unit}`} >&2; exit 1; }`
}

/**
 * A node program asking `url` for a 2xx answer, `tries` times at most (a
 * growing pause between tries, each try bounded by `timeout` ms). It never
 * fails the command: it prints `@healthy STATUS` or `@unhealthy REASON`, so
 * the task can say what happened in its own words.
 */
const HEALTH_CHECK = `const [url, tries, timeout] = process.argv.slice(1)
let last = ''
for (let attempt = 1; attempt <= Number(tries); attempt++) {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(Number(timeout)), redirect: 'manual' })
    if (response.status >= 200 && response.status < 300) {
      console.log('@healthy ' + response.status)
      process.exit(0)
    }
    last = 'HTTP ' + response.status
  } catch (error) {
    last = error.cause ? String(error.cause.code || error.cause.message) : error.message
  }
  if (attempt < Number(tries)) await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 250 * attempt)))
}
console.log('@unhealthy ' + last)`

/** `node:healthcheck`: asks `url` from the host itself (the app may listen on loopback only). */
export function healthCheckScript(options: { env: NodeEnvironment; url: string; tries: number; timeoutMs: number }): Command {
  return sh`${environmentLines(options.env)}
node --input-type=module -e ${HEALTH_CHECK} ${options.url} ${options.tries} ${options.timeoutMs}`
}
