/**
 * `dep init`: writes a typed deployfile.ts that runs as written (and, if asked,
 * a GitHub Actions workflow). On a terminal it asks; `--yes` takes the
 * answers from `-o key=value` and defaults, for scripts:
 *
 *   dep init --yes -o recipe=laravel -o repository=git@github.com:acme/app.git \
 *     -o hosts=web1.example.com,web2.example.com -o deploy_path=/var/www/app -o github=true
 *
 * Without `hosts`, `--yes` deploys to this machine, into `.deploy/<name>` next
 * to the deployfile: nothing outside the project is written by a first try.
 * It also writes a tsconfig.json (when there is none) so that `npx tsc
 * --noEmit` type-checks the deployfile with what `npm install deployfile`
 * brought (the Node types come with it).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, dirname, isAbsolute, relative, resolve } from 'node:path'
import { ConfigError, ExitCode } from '../../model/errors.js'
import { parseOverride } from '../../model/config.js'
import type { CliOptions } from '../options.js'
import { installedPlugins, pluginSetups } from './init-plugins.js'
import { renderDeployfile, renderTsconfig, renderWorkflow, type InitAnswers } from './init-files.js'

export type { InitAnswers } from './init-files.js'


const KEYS = [
  'recipe',
  'repository',
  'branch',
  'upload_path',
  'hosts',
  'deploy_path',
  'remote_user',
  'port',
  'identity_file',
  'known_hosts_file',
  'http_user',
  'github',
] as const
type Key = (typeof KEYS)[number]

interface Question {
  key: Key
  text: string
  /** Only asked when this is true of the answers so far. */
  when?: (answers: Partial<InitAnswers>) => boolean
}

const QUESTIONS: Question[] = [
  { key: 'recipe', text: 'Recipe (common or laravel)' },
  { key: 'repository', text: 'Git repository the hosts fetch (empty: upload a local directory instead)' },
  { key: 'branch', text: 'Branch to deploy', when: (a) => Boolean(a.repository) },
  { key: 'upload_path', text: 'Local directory to upload', when: (a) => !a.repository },
  { key: 'hosts', text: 'Hosts, comma-separated (localhost: this machine, no SSH)' },
  { key: 'deploy_path', text: 'Deploy path on the hosts' },
  { key: 'remote_user', text: 'SSH user (empty: from ~/.ssh/config or yours)', when: hasRemote },
  { key: 'port', text: 'SSH port (empty: from ~/.ssh/config, else 22)', when: hasRemote },
  { key: 'identity_file', text: 'SSH private key (empty: ~/.ssh/config, the agent, ~/.ssh/id_*)', when: hasRemote },
  { key: 'known_hosts_file', text: "known_hosts file with the hosts' keys (empty: ~/.ssh/known_hosts)", when: hasRemote },
  { key: 'http_user', text: 'User PHP-FPM runs as (gets write access to storage/)', when: (a) => a.recipe === 'laravel' },
  { key: 'github', text: 'Write a GitHub Actions workflow (yes/no)' },
]

function hasRemote(answers: Partial<InitAnswers>): boolean {
  return (answers.hosts ?? []).some((h) => h !== 'localhost')
}

/** The project's name as a path segment. */
function projectName(cwd: string): string {
  return basename(cwd).replace(/[^A-Za-z0-9._-]/g, '-') || 'app'
}

/** Defaults, guessed from the directory `dep init` runs in. */
export function defaultAnswers(cwd: string): InitAnswers {
  const laravel = existsSync(resolve(cwd, 'artisan')) && existsSync(resolve(cwd, 'composer.json'))
  return {
    recipe: laravel ? 'laravel' : 'common',
    repository: gitRemote(cwd),
    branch: gitBranch(cwd),
    upload_path: '.',
    hosts: ['localhost'],
    // Filled in once the hosts are known (see defaultDeployPath).
    deploy_path: '',
    remote_user: '',
    port: '',
    identity_file: '',
    known_hosts_file: '',
    http_user: 'www-data',
    github: existsSync(resolve(cwd, '.github')),
  }
}

function gitOutput(cwd: string, args: string[]): string {
  try {
    return execFileSync('git', args, { cwd, stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).toString().trim()
  } catch {
    return ''
  }
}
/**
 * Where a deploy goes when nobody said: on SSH hosts the usual /var/www/<name>; on this machine a
 * directory inside the project (excluded from the upload), never a system path: a first
 * `dep init --yes && dep deploy` run as root must not write to /var/www.
 */
function defaultDeployPath(answers: InitAnswers, cwd: string): string {
  return hasRemote(answers) ? `/var/www/${projectName(cwd)}` : `.deploy/${projectName(cwd)}`
}

const gitRemote = (cwd: string) => gitOutput(cwd, ['remote', 'get-url', 'origin'])
const gitBranch = (cwd: string) => gitOutput(cwd, ['symbolic-ref', '--short', 'HEAD']) || 'main'

/** Reads one answer from text, checked; a wrong one is a ConfigError that says what is expected. */
function applyAnswer(answers: InitAnswers, key: Key, text: string): void {
  const value = text.trim()
  switch (key) {
    case 'recipe':
      if (value !== 'common' && value !== 'laravel') throw new ConfigError(`dep init: recipe must be "common" or "laravel", got "${value}".`)
      answers.recipe = value
      break
    case 'hosts': {
      const hosts = value.split(/[\s,]+/).filter(Boolean)
      if (hosts.length === 0) throw new ConfigError('dep init: give at least one host.', 'For example: -o hosts=web1.example.com,web2.example.com (or localhost)')
      for (const name of hosts) {
        if (!/^[A-Za-z0-9_.\-[\]:@]+$/.test(name)) throw new ConfigError(`dep init: "${name}" is not a host name.`)
      }
      answers.hosts = hosts
      break
    }
    case 'port':
      if (value && !/^\d{1,5}$/.test(value)) throw new ConfigError(`dep init: port must be a number, got "${value}".`, 'For example: -o port=2222')
      answers.port = value
      break
    case 'deploy_path':
      if (!isAbsolute(value)) {
        throw new ConfigError(`dep init: deploy_path must be an absolute path, got "${value}".`, 'For example: -o deploy_path=/var/www/app')
      }
      answers.deploy_path = value.replace(/\/+$/, '') || '/'
      break
    case 'github':
      if (!/^(true|false|yes|no|y|n|1|0)$/i.test(value)) throw new ConfigError(`dep init: github must be yes or no, got "${value}".`)
      answers.github = /^(true|yes|y|1)$/i.test(value)
      break
    default:
      answers[key] = value
  }
}

/**
 * Asks the questions not answered by -o, in order (a question may depend on earlier answers: the SSH
 * ones only come for SSH hosts). Streams are parameters so a test can answer them.
 */
export async function ask(
  answers: InitAnswers,
  given: Set<string>,
  input: NodeJS.ReadableStream = process.stdin,
  output: NodeJS.WritableStream = process.stderr,
  cwd = process.cwd(),
): Promise<void> {
  const { createInterface } = await import('node:readline/promises')
  const rl = createInterface({ input, output, terminal: false })
  try {
    for (const question of QUESTIONS) {
      if (given.has(question.key) || (question.when && !question.when(answers))) continue
      // The default depends on the hosts just answered.
      if (question.key === 'deploy_path' && !answers.deploy_path) answers.deploy_path = defaultDeployPath(answers, cwd)
      const current = answers[question.key]
      const shown = Array.isArray(current) ? current.join(',') : typeof current === 'boolean' ? (current ? 'yes' : 'no') : current
      for (;;) {
        const reply = await rl.question(`${question.text}${shown ? ` [${shown}]` : ''}: `)
        try {
          // Enter keeps the default; a lone "-" clears an optional answer.
          if (reply.trim() === '-') applyAnswer(answers, question.key, '')
          else if (reply.trim() !== '') applyAnswer(answers, question.key, reply)
          else if (shown === '' && (question.key === 'hosts' || question.key === 'deploy_path')) applyAnswer(answers, question.key, '')
          break
        } catch (error) {
          output.write(`  ${(error as Error).message}\n`)
        }
      }
    }
  } finally {
    rl.close()
  }
}

/** `dep init [--yes] [-o key=value…] [-f deployfile.ts] [--force]` */
export async function runInit(args: string[], options: CliOptions): Promise<number> {
  if (args.length > 0) throw new ConfigError(`dep init takes no arguments (got "${args.join(' ')}").`, 'Give answers as -o key=value, e.g. -o hosts=web1.example.com')
  const cwd = process.cwd()
  const answers = defaultAnswers(cwd)
  const given = new Set<Key>()
  // Keys dep init does not know may be installed plugins' questions (init-plugins.ts).
  const pluginAnswers = new Map<string, string>()
  for (const option of options.option) {
    const [key, value] = parseOverride(option)
    if (!(KEYS as readonly string[]).includes(key)) {
      pluginAnswers.set(key, String(value ?? ''))
      continue
    }
    applyAnswer(answers, key as Key, String(value ?? ''))
    given.add(key as Key)
  }
  if (given.has('repository') && answers.repository && !given.has('branch') && !gitRemote(cwd)) answers.branch = 'main'

  const target = resolve(cwd, options.file ?? 'deployfile.ts')
  const workflow = resolve(dirname(target), '.github/workflows/deploy.yml')
  // Refuse before asking anything: nobody wants to answer questions for nothing.
  if (existsSync(target) && !options.force) {
    throw new ConfigError(`${relative(cwd, target) || target} already exists; dep init does not overwrite it.`, 'Move it away, or run dep init --force to replace it.')
  }

  if (!options.yes && !process.stdin.isTTY) {
    throw new ConfigError('dep init asks questions, and there is no terminal to ask on.', 'In scripts, run dep init --yes with the answers as -o key=value (recipe, repository, hosts, deploy_path, github, …).')
  }
  const plugins = await installedPlugins(cwd, pluginAnswers, KEYS)
  if (!options.yes) await ask(answers, given)
  const setups = await pluginSetups(plugins, pluginAnswers, options.yes ? undefined : { input: process.stdin, output: process.stderr })
  if (!answers.deploy_path) answers.deploy_path = defaultDeployPath(answers, cwd)
  if (answers.github && existsSync(workflow) && !options.force) {
    throw new ConfigError(`${relative(cwd, workflow)} already exists; dep init does not overwrite it.`, 'Move it away, or run dep init --force to replace it.')
  }

  mkdirSync(dirname(target), { recursive: true })
  writeFileSync(target, renderDeployfile(answers, setups))
  const written = [relative(cwd, target)]
  // A tsconfig for the deployfile, so `npx tsc --noEmit` checks it as written; a project's own is left alone.
  const tsconfig = resolve(dirname(target), 'tsconfig.json')
  if (!existsSync(tsconfig)) {
    writeFileSync(tsconfig, renderTsconfig(relative(dirname(target), target)))
    written.push(relative(cwd, tsconfig))
  }
  if (answers.github) {
    mkdirSync(dirname(workflow), { recursive: true })
    writeFileSync(workflow, renderWorkflow(answers, relative(dirname(target), target)))
    written.push(relative(cwd, workflow))
  }
  // The summary is the command's result: stdout (questions and errors go to stderr).
  const where = answers.hosts.map((h) => (h === 'localhost' ? 'this machine (localhost)' : h)).join(', ')
  const what = answers.repository ? `${answers.repository} (${answers.branch || 'main'})` : `${answers.upload_path || '.'} (uploaded)`
  const deployPath = isAbsolute(answers.deploy_path) ? answers.deploy_path : `${answers.deploy_path} (next to the deployfile)`
  const next = [`Wrote ${written.join(', ')}.`, `  deploys ${what}`, `  to ${where}`, `  into ${deployPath}`]
  if (setups.length) next.push(`  with the plugins ${setups.map((s) => s.name).join(', ')}`)
  if (!dependsOnDeployfile(cwd)) next.push('Add deployfile to the project: npm install --save-dev deployfile')
  next.push('Type-check it: npm install --save-dev typescript && npx tsc --noEmit', 'See the plan: npx dep deploy --plan', 'Deploy: npx dep deploy')
  process.stdout.write(`${next.join('\n')}\n`)
  return ExitCode.Success
}


function dependsOnDeployfile(cwd: string): boolean {
  try {
    const pkg = JSON.parse(readFileSync(resolve(cwd, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>
    return Boolean(pkg.dependencies?.deployfile ?? pkg.devDependencies?.deployfile)
  } catch {
    return false
  }
}
