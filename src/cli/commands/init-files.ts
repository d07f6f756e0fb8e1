/**
 * The files `dep init` writes, as text for a set of answers: the deployfile, the GitHub Actions
 * workflow and the tsconfig that type-checks the deployfile. Pure: init.ts asks and writes.
 */
import { isAbsolute } from 'node:path'
import { pluginLines, type PluginSetup } from './init-plugins.js'

/** What `dep init` needs to know. */
export interface InitAnswers {
  recipe: 'common' | 'laravel'
  /** A git URL; empty: upload a local directory instead. */
  repository: string
  branch: string
  /** Local directory uploaded when there is no repository. */
  upload_path: string
  /** Host names; `localhost` deploys to this machine without SSH. */
  hosts: string[]
  /** Absolute; empty: `.deploy/<name>` next to the deployfile (localhost) or `/var/www/<name>` (SSH hosts). */
  deploy_path: string
  remote_user: string
  /** SSH port of the hosts; empty: from ~/.ssh/config, else 22. */
  port: string
  /** Private key for the hosts; empty: ~/.ssh/config, the agent, ~/.ssh/id_*. */
  identity_file: string
  /** known_hosts file checking the hosts' keys; empty: ~/.ssh/known_hosts. */
  known_hosts_file: string
  /** The user PHP-FPM runs as (Laravel: it gets write access to storage/ and bootstrap/cache). */
  http_user: string
  github: boolean
}

/** A TypeScript string literal in single quotes. */
function ts(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`
}

/** The deployfile for these answers. */
export function renderDeployfile(answers: InitAnswers, plugins: readonly PluginSetup[] = []): string {
  const recipe = answers.recipe
  const extra = pluginLines(plugins)
  const local = answers.hosts.filter((h) => h === 'localhost')
  const remote = answers.hosts.filter((h) => h !== 'localhost')
  const imports = ['set', ...(extra.needsSecret ? ['secret'] : []), 'use', ...(remote.length ? ['host'] : []), ...(local.length ? ['localhost'] : [])]
  const uploadPath = answers.upload_path || '.'
  const deployPath = answers.deploy_path || `.deploy/app`
  // Relative paths are relative to this file, whatever directory dep runs in. fileURLToPath(import.meta.url)
  // rather than import.meta.dirname, which needs Node 20.11 (engines says 20).
  const needsHere = (!answers.repository && !isAbsolute(uploadPath)) || !isAbsolute(deployPath)
  const path = (value: string) => (isAbsolute(value) ? ts(value) : `here(${ts(value)})`)
  const lines: string[] = [
    `// deployfile.ts, written by \`dep init\`. See what a deploy does with \`npx dep tree deploy\`,`,
    `// check it with \`npx dep deploy --plan\`, then run \`npx dep deploy\`.`,
    ...(needsHere ? [`import { fileURLToPath } from 'node:url'`] : []),
    `import { ${imports.join(', ')} } from 'deployfile'`,
    `import { ${recipe} } from 'deployfile/recipes/${recipe}'`,
    ...extra.imports,
    '',
    ...(needsHere ? ['/** A path relative to this file. */', `const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))`, ''] : []),
    `use(${recipe})`,
    ...extra.uses,
    '',
  ]
  if (answers.repository) {
    lines.push('// The hosts fetch the code from this repository (they need read access to it).')
    lines.push(`set('repository', ${ts(answers.repository)})`)
    if (answers.branch) lines.push(`set('branch', ${ts(answers.branch)})`)
  } else {
    lines.push('// No repository: this directory is uploaded to every host (one tar stream per host).')
    lines.push(`set('upload_path', ${path(uploadPath)})`)
    lines.push(`set('upload_exclude', ['.git', '.github', 'node_modules', '.deploy', 'deployfile.ts'])`)
  }
  lines.push(`set('keep_releases', 5)`)
  if (recipe === 'common') {
    lines.push('// Kept across releases, linked into each one.')
    lines.push(`set('shared_dirs', [])`)
    lines.push(`set('shared_files', [])`)
  } else {
    lines.push("// PHP-FPM's user: storage/ and bootstrap/cache are made writable for it (docs/laravel.md).")
    lines.push(`set('http_user', ${ts(answers.http_user || 'www-data')})`)
    lines.push('// The production .env: a local file, or values built here from the environment (masked in all output).')
    lines.push(`// set('dotenv', { APP_KEY: process.env.APP_KEY!, DB_PASSWORD: process.env.DB_PASSWORD! })`)
  }
  lines.push(...extra.settings, '')
  for (const name of remote) {
    const options = [
      answers.remote_user ? `remoteUser: ${ts(answers.remote_user)}` : '',
      answers.port ? `port: ${Number(answers.port)}` : '',
      answers.identity_file ? `identityFile: ${ts(answers.identity_file)}` : '',
      answers.known_hosts_file ? `knownHostsFile: ${ts(answers.known_hosts_file)}` : '',
      `deployPath: ${path(deployPath)}`,
      `labels: { stage: 'production' }`,
    ]
    lines.push(`host(${ts(name)}, { ${options.filter(Boolean).join(', ')} })`)
  }
  for (const name of local) lines.push(`localhost(${ts(name)}, { deployPath: ${path(deployPath)}, labels: { stage: 'production' } })`)
  lines.push(
    '',
    '// Your own steps (import task, before, after, run from deployfile). A task hooked before',
    '// deploy:symlink runs while the release is prepared, on every host: a failure there changes',
    '// nothing live. After deploy:symlink, it runs once every host has switched.',
    '//',
    "// task('app:check', async () => { await run('cd {{release_path}} && ./bin/check') })",
    "// before('deploy:symlink', 'app:check')",
    '',
  )
  return lines.join('\n')
}

/** The GitHub Actions workflow for these answers. */
export function renderWorkflow(answers: InitAnswers, deployfile: string): string {
  const branch = answers.branch || 'main'
  const file = deployfile === 'deployfile.ts' ? '' : ` -f ${deployfile}`
  return `# Deploys with deployfile (written by \`dep init\`).
# Secrets: DEPLOY_SSH_KEY (private key of the deploy user on the hosts) and
# DEPLOY_KNOWN_HOSTS (the hosts' public keys, e.g. from \`ssh-keyscan host\`, checked by you once).
name: deploy

on:
  push:
    branches: [${branch}]
  workflow_dispatch:

# One deploy at a time: a second push waits instead of failing on the deploy lock (exit 4).
concurrency:
  group: deploy-production
  cancel-in-progress: false

permissions:
  contents: read

jobs:
  deploy:
    runs-on: ubuntu-latest
    environment: production
    timeout-minutes: 20
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 20
          cache: npm
      - run: npm ci
      - name: Install the SSH key and known_hosts
        env:
          DEPLOY_SSH_KEY: \${{ secrets.DEPLOY_SSH_KEY }}
          DEPLOY_KNOWN_HOSTS: \${{ secrets.DEPLOY_KNOWN_HOSTS }}
        run: |
          install -d -m 700 ~/.ssh
          printf '%s\\n' "$DEPLOY_SSH_KEY" > ~/.ssh/id_ed25519
          chmod 600 ~/.ssh/id_ed25519
          printf '%s\\n' "$DEPLOY_KNOWN_HOSTS" > ~/.ssh/known_hosts
      # Plain lines, one collapsible group per step, failures as annotations; the full
      # transcript (every command and its output, secrets masked) is kept as an artifact.
      - name: Deploy
        run: npx dep deploy${file} --revision "$GITHUB_SHA" --log deploy.log
      - name: Keep the transcript
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: deploy-log
          path: deploy.log
          if-no-files-found: ignore
`
}

/**
 * A tsconfig that type-checks the deployfile under TypeScript 5.9 and 7 with nothing else installed:
 * "preserve" modules (the deployfile is loaded by jiti, a bundler-like loader: ESM syntax and
 * import.meta in any project, package exports honoured), the Node types named (TypeScript 7 includes
 * none by default; they come with deployfile).
 */
export function renderTsconfig(deployfile: string): string {
  const config = {
    compilerOptions: {
      target: 'ES2022',
      module: 'preserve',
      moduleResolution: 'bundler',
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ['node'],
    },
    files: [deployfile],
  }
  return `${JSON.stringify(config, null, 2)}\n`
}
