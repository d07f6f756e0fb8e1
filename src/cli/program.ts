import { Command as Commander, CommanderError, InvalidArgumentError, Option } from 'commander'
import { ConfigError } from '../model/errors.js'
import { didYouMean } from '../model/suggest.js'
import type { CliOptions, Invocation } from './options.js'
import { version } from './version.js'

const HELP_AFTER = `
Commands:
  dep <task> [selector…]        run a task (e.g. dep deploy stage=prod)
  dep list                      list tasks
  dep tree <task>               show what a task runs, hooks included
  dep <task> --plan             steps × hosts, without running anything
  dep <task> --dry-run          the commands each host would run
  dep <task> --dry-run --offline   the same, connecting to nothing
  dep config [selector…]        resolved settings per host (secrets masked)
  dep run '<command>' [sel…]    run a shell command on the selected hosts
  dep ssh [host]                open a shell on a host, in the current release
  dep init                      write a deployfile.ts (and a CI workflow)

Selectors: all, an alias (web1), stage=prod, stage!=prod, role=web|worker;
  "," is OR, "&" is AND; several selectors are OR-ed.

Rolling deploys: dep deploy --strategy rolling --batch 25% [--canary 1] [--max-fail 10%]

Exit codes: 0 ok, 1 task failed (reverted), 2 usage/config error,
  3 host unreachable/auth/host key, 4 lock held, 5 rollback failed,
  6 lock not released, 7 partial deploy (hosts left out by --max-fail), 130 interrupted.
`

function positiveInteger(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1')
  return n
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

/** Commands of dep itself: `dep <command> --help` is the general help; for a task it is the task's. */
export const BUILT_IN_COMMANDS = new Set(['help', 'list', 'tree', 'config', 'run', 'ssh', 'init'])

/** A command-line mistake (an unknown option, a bad value), as commander found it, said our way. */
export class UsageError extends ConfigError {}

/** Every long option dep knows, for "did you mean". */
function longOptions(program: Commander): string[] {
  return program.options.map((o) => o.long).filter((o): o is string => Boolean(o))
}

/**
 * Parses argv into an invocation. commander prints --help and --version itself;
 * a usage error becomes one UsageError (exit 2) printed like every other error.
 * `dep <task> --help` is an invocation of the task with `help` set: the task's
 * own help needs the deployfile, which is loaded later.
 */
export function parseArgv(argv: string[]): Invocation {
  let invocation: Invocation | undefined
  const helpIndex = argv.findIndex((a) => a === '--help' || a === '-h')
  const first = argv.find((a) => !a.startsWith('-'))
  if (helpIndex >= 0 && first && !BUILT_IN_COMMANDS.has(first) && argv.indexOf(first) < helpIndex) {
    const rest = parseArgv(argv.filter((_, i) => i !== helpIndex))
    return { ...rest, options: { ...rest.options, help: true } }
  }
  const program = new Commander('dep')
    .description('Zero-downtime deploys from a typed deployfile.ts')
    .version(version(), '-V, --version')
    .argument('[task]', 'task or command to run')
    .argument('[args...]', 'host selectors (or the command of `dep run`)')
    .option('-f, --file <path>', 'deployfile to use (default: searched upward from here)')
    .option('-o, --option <key=value>', 'override a setting (repeatable)', collect, [])
    .option('-l, --limit <n>', 'most hosts working at the same time', positiveInteger)
    .option('-v, --verbose', 'show commands and output (-vv: more)', (_: string, total: number) => total + 1, 0)
    .option('--plan', 'print the steps × hosts plan and exit')
    .option('--dry-run', 'print the commands each host would run; only the read-only probe runs')
    .option('--offline', 'with --dry-run: connect to nothing (release names are then guesses)')
    .option('--json', 'write NDJSON run events to stdout')
    .option('--log <file>', 'write a full transcript to a file')
    .option('--summary <file>', 'append a Markdown summary of the run to a file (e.g. $GITHUB_STEP_SUMMARY)')
    .option('--branch <branch>', 'branch to deploy (same as -o branch=…)')
    .option('--tag <tag>', 'tag to deploy (same as -o tag=…)')
    .option('--revision <rev>', 'revision to deploy (same as -o revision=…)')
    .option('--strategy <name>', "all (default: every host switches at once) or rolling (the 'switch' and 'post-switch' steps batch by batch)")
    .option('--batch <n|n%>', 'with --strategy rolling: hosts per batch, a count or a percentage of the selected hosts')
    .option('--canary <n>', 'with --strategy rolling: a first batch of n hosts; a failure there stops the run')
    .option('--max-fail <n|n%>', 'with --strategy rolling: hosts that may fail and be left out on their release (exit 7)')
    .option('--force', 'for deploy:unlock: remove a lock held by another run')
    .option('-y, --yes', 'for init: accept defaults, ask nothing')
    .addOption(new Option('--color', 'force colours'))
    .addOption(new Option('--no-color', 'no colours'))
    .addHelpText('after', HELP_AFTER)
    .exitOverride()
    // Usage errors are thrown (below) and printed by the CLI like any other error; help still prints.
    .configureOutput({ outputError: () => undefined })
    .action((task: string | undefined, args: string[], options: CliOptions) => {
      invocation = { name: task ?? 'help', args, options }
    })
  try {
    program.parse(argv, { from: 'user' })
  } catch (error) {
    if (!(error instanceof CommanderError) || error.exitCode === 0) throw error
    throw usageError(error, program)
  }
  if (!invocation || invocation.name === 'help') {
    program.outputHelp()
    return { name: 'help', args: [], options: { option: [], verbose: 0 } }
  }
  return invocation
}

/** commander's "error: unknown option '--bogus'" as one sentence, with the nearest option and where to look. */
function usageError(error: CommanderError, program: Commander): UsageError {
  const message = error.message.replace(/^error: /, '')
  const unknown = /^unknown option '([^']+)'/.exec(message)?.[1]
  if (unknown) {
    const name = unknown.split('=')[0]
    const suggestion = didYouMean(name, longOptions(program))
    return new UsageError(`Unknown option ${name}.`, `${suggestion ? `${suggestion} ` : ''}See dep --help for the options.`)
  }
  const sentence = message.charAt(0).toUpperCase() + message.slice(1)
  return new UsageError(/[.!?]$/.test(sentence) ? sentence : `${sentence}.`, 'See dep --help.')
}
