import { Command as Commander, InvalidArgumentError, Option } from 'commander'
import type { CliOptions, Invocation } from './options.js'
import { version } from './version.js'

const HELP_AFTER = `
Commands:
  dep <task> [selector…]        run a task (e.g. dep deploy stage=prod)
  dep list                      list tasks
  dep tree <task>               show what a task runs, hooks included
  dep <task> --plan             steps × hosts, without running anything
  dep <task> --dry-run          the commands each host would run
  dep config [selector…]        resolved settings per host (secrets masked)
  dep run '<command>' [sel…]    run a shell command on the selected hosts
  dep ssh [host]                open a shell on a host, in the current release
  dep init                      write a deployfile.ts (and a CI workflow)

Selectors: all, an alias (web1), stage=prod, stage!=prod, role=web|worker;
  "," is OR, "&" is AND; several selectors are OR-ed.

Exit codes: 0 ok, 1 task failed (reverted), 2 usage/config error,
  3 host unreachable/auth/host key, 4 lock held, 5 rollback failed, 130 interrupted.
`

function positiveInteger(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1')
  return n
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

/** Parses argv into an invocation; commander prints help/version and usage errors itself. */
export function parseArgv(argv: string[]): Invocation {
  let invocation: Invocation | undefined
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
    .option('--dry-run', 'print the commands each host would run, run nothing')
    .option('--json', 'write NDJSON run events to stdout')
    .option('--log <file>', 'write a full transcript to a file')
    .option('--branch <branch>', 'branch to deploy (same as -o branch=…)')
    .option('--tag <tag>', 'tag to deploy (same as -o tag=…)')
    .option('--revision <rev>', 'revision to deploy (same as -o revision=…)')
    .option('--force', 'for deploy:unlock: remove a lock held by another run')
    .option('-y, --yes', 'for init: accept defaults, ask nothing')
    .addOption(new Option('--color', 'force colours'))
    .addOption(new Option('--no-color', 'no colours'))
    .addHelpText('after', HELP_AFTER)
    .showSuggestionAfterError(true)
    .exitOverride()
    .action((task: string | undefined, args: string[], options: CliOptions) => {
      invocation = { name: task ?? 'help', args, options }
    })
  program.parse(argv, { from: 'user' })
  if (!invocation || invocation.name === 'help') {
    program.outputHelp()
    return { name: 'help', args: [], options: { option: [], verbose: 0 } }
  }
  return invocation
}
