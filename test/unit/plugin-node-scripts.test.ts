/**
 * The Node.js plugin's shell builders, pinned as exact text: what a host runs
 * for the install (reuse or npm ci), the local build, pm2, systemd (which no
 * test here can run: there is no systemd in the sandbox) and the health check.
 */
import { describe, expect, it } from 'vitest'
import { environmentLines, healthCheckScript, localBuildScript, pm2RestartScript, remoteInstallScript, systemdRestartScript } from '../../plugins/node/scripts.js'

describe('node plugin scripts', () => {
  it('environment: node_bin in front of PATH, PM2_HOME, both quoted; nothing when unset', () => {
    expect(String(environmentLines({}))).toBe(':')
    expect(String(environmentLines({ nodeBin: '/opt/node 20/bin', pm2Home: "/srv/it's/.pm2" }))).toBe(
      `PATH='/opt/node 20/bin':"$PATH"; export PATH\nPM2_HOME='/srv/it'\\''s/.pm2'; export PM2_HOME`,
    )
  })

  it('remote install: hard-linked node_modules when the lockfile and the stamp match, else npm ci --omit=dev', () => {
    const script = remoteInstallScript({
      env: { nodeBin: '/opt/node/bin' },
      releasePath: '/srv/app/releases/3',
      currentPath: '/srv/app/current',
      npmOptions: '--no-audit --no-fund',
      reuse: true,
    })
    expect(String(script)).toMatchInlineSnapshot(`
      "set -e
      PATH=/opt/node/bin:"$PATH"; export PATH
      command -v node >/dev/null 2>&1 || { echo 'deployfile: node is not on the PATH of this host; install it, or set node_bin to the directory that holds it' >&2; exit 5; }
      command -v npm >/dev/null 2>&1 || { echo 'deployfile: npm is not on the PATH of this host; install it, or set node_bin to the directory that holds it' >&2; exit 5; }
      cd /srv/app/releases/3
      if [ ! -f package.json ]; then echo 'deployfile: /srv/app/releases/3 has no package.json; deploy the directory that holds it' >&2; exit 5; fi
      if [ ! -f package-lock.json ] && [ ! -f npm-shrinkwrap.json ]; then echo 'deployfile: npm ci needs package-lock.json in the release; commit it (npm install writes it)' >&2; exit 5; fi
      stamp="$(node -p 'process.versions.modules + " " + process.platform + "-" + process.arch') "'--no-audit --no-fund'
      if true && [ -d /srv/app/current/node_modules ] && [ ! -e node_modules ] && cmp -s /srv/app/current/package-lock.json package-lock.json && [ "$(cat /srv/app/current/node_modules/.deployfile-install 2>/dev/null)" = "$stamp" ]; then
        cp -al /srv/app/current/node_modules node_modules
        rm -rf node_modules/.cache
        echo '@node_modules reused'
      else
        npm ci --omit=dev --no-audit --no-fund
        mkdir -p node_modules && printf '%s\\n' "$stamp" > node_modules/.deployfile-install
        echo '@node_modules installed'
      fi"
    `)
  })

  it('remote install with node_modules_reuse off never copies', () => {
    const script = String(remoteInstallScript({ env: {}, releasePath: '/srv/app/releases/3', currentPath: '/srv/app/current', npmOptions: '', reuse: false }))
    expect(script).toContain('if false && [ -d /srv/app/current/node_modules ]')
  })

  it('remote install with a build command: full install, build, prune; no reuse', () => {
    const script = remoteInstallScript({
      env: {},
      releasePath: '/srv/app/releases/3',
      currentPath: '/srv/app/current',
      npmOptions: '--no-audit',
      buildCommand: 'npm run build',
      reuse: true,
    })
    expect(String(script)).toMatchInlineSnapshot(`
      "set -e
      :
      command -v node >/dev/null 2>&1 || { echo 'deployfile: node is not on the PATH of this host; install it, or set node_bin to the directory that holds it' >&2; exit 5; }
      command -v npm >/dev/null 2>&1 || { echo 'deployfile: npm is not on the PATH of this host; install it, or set node_bin to the directory that holds it' >&2; exit 5; }
      cd /srv/app/releases/3
      if [ ! -f package.json ]; then echo 'deployfile: /srv/app/releases/3 has no package.json; deploy the directory that holds it' >&2; exit 5; fi
      if [ ! -f package-lock.json ] && [ ! -f npm-shrinkwrap.json ]; then echo 'deployfile: npm ci needs package-lock.json in the release; commit it (npm install writes it)' >&2; exit 5; fi
      stamp="$(node -p 'process.versions.modules + " " + process.platform + "-" + process.arch') "--no-audit
      npm ci --include=dev --no-audit
      npm run build
      npm prune --omit=dev --no-audit
      mkdir -p node_modules && printf '%s\\n' "$stamp" > node_modules/.deployfile-install
      echo '@node_modules installed'"
    `)
  })

  it('local build: in the staging copy', () => {
    expect(String(localBuildScript({ stagingDir: '/tmp/stage 1', npmOptions: '--no-audit', buildCommand: 'npm run build' }))).toBe(
      "set -e\ncd '/tmp/stage 1'\nnpm ci --include=dev --no-audit\nnpm run build\nnpm prune --omit=dev --no-audit",
    )
    expect(String(localBuildScript({ stagingDir: '/tmp/stage', npmOptions: '--no-audit' }))).toBe('set -e\ncd /tmp/stage\nnpm ci --omit=dev --no-audit')
  })

  it('pm2: startOrReload of the ecosystem file through current, --cwd current, then the pinned/fork check', () => {
    const script = String(
      pm2RestartScript({
        env: { pm2Home: '/home/app/.pm2' },
        currentPath: '/srv/app/current',
        releasesDir: '/srv/app/releases',
        ecosystem: 'ecosystem.config.cjs',
        app: 'api',
      }),
    )
    const [head, check] = script.split('pm2 jlist | node -e ')
    expect(head).toMatchInlineSnapshot(`
      "set -e
      PM2_HOME=/home/app/.pm2; export PM2_HOME
      if [ ! -L /srv/app/current ]; then echo '@no_current'; exit 0; fi
      command -v pm2 >/dev/null 2>&1 || { echo 'deployfile: pm2 is not on the PATH of this host; install it, or set node_bin to the directory that holds it' >&2; exit 5; }
      if [ ! -f /srv/app/current/ecosystem.config.cjs ]; then echo 'deployfile: pm2_ecosystem ecosystem.config.cjs is not in the live release (/srv/app/current/ecosystem.config.cjs); add it, or set pm2_ecosystem' >&2; exit 5; fi
      cd /srv/app/current
      pm2 startOrReload /srv/app/current/ecosystem.config.cjs --cwd /srv/app/current --update-env --only api
      "
    `)
    expect(check.startsWith("'let text = '\\'''\\''\n")).toBe(true)
    expect(check).toMatch(/' \/srv\/app\/releases api$/)
  })

  it('pm2 without pm2_app reloads every app of the ecosystem file', () => {
    const script = String(pm2RestartScript({ env: {}, currentPath: '/srv/app/current', releasesDir: '/srv/app/releases', ecosystem: 'pm2.json' }))
    expect(script).toContain('pm2 startOrReload /srv/app/current/pm2.json --cwd /srv/app/current --update-env\n')
    expect(script).toMatch(/' \/srv\/app\/releases ''$/)
  })

  it('systemd: reload-or-restart, then the unit must be active (quoted unit, raw systemctl prefix)', () => {
    expect(String(systemdRestartScript({ systemctl: 'sudo systemctl', unit: 'api.service' }))).toBe(
      "sudo systemctl reload-or-restart -- api.service\n" +
        "sudo systemctl is-active --quiet -- api.service || { echo 'deployfile: systemd unit api.service is not active after reload-or-restart; see: journalctl -u api.service' >&2; exit 1; }",
    )
    expect(String(systemdRestartScript({ systemctl: 'systemctl --user', unit: 'my app;rm' }))).toContain("systemctl --user reload-or-restart -- 'my app;rm'\n")
  })

  it('health check: a node program on the host, url, tries and timeout as quoted arguments', () => {
    const script = String(healthCheckScript({ env: { nodeBin: '/opt/node/bin' }, url: 'http://127.0.0.1:3000/health?x=1&y=2', tries: 4, timeoutMs: 2500 }))
    expect(script.startsWith(`PATH=/opt/node/bin:"$PATH"; export PATH\nnode --input-type=module -e 'const [url, tries, timeout] = process.argv.slice(1)\n`)).toBe(true)
    expect(script.endsWith(`console.log('\\''@unhealthy '\\'' + last)' 'http://127.0.0.1:3000/health?x=1&y=2' 4 2500`)).toBe(true)
  })
})
