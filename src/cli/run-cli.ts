import type { Readable } from 'node:stream'
import { CommanderError } from 'commander'
import { findDeployfile, loadDeployfile } from '../config/load.js'
import { parseOverrides } from '../model/config.js'
import { ConfigError, DeployError, ExitCode } from '../model/errors.js'
import type { Registry } from '../model/registry.js'
import { buildPlan, buildTree } from '../plan/plan.js'
import { parseRollout } from '../plan/rollout.js'
import { selectHosts } from '../plan/selector.js'
import { formatError } from '../report/format.js'
import { describeError } from '../executor/errors.js'
import { SecretRegistry } from '../shell/redact.js'
import type { MemoryTransport } from '../transport/memory/memory-transport.js'
import { configJson, configLines, listTasks, planTable, taskHelp, treeLines } from './commands/inspect.js'
import type { CliOptions, Invocation } from './options.js'
import { parseArgv } from './program.js'
import { createReporters, ignoreBrokenPipes, useColor } from './reporters.js'
import { errorLine, planLine } from '../report/json.js'
import { runTask } from './run-task.js'
import { blockingStdio } from './stdio.js'
import { checkRefOptions } from './ref-options.js'

const out = (lines: string[]) => process.stdout.write(lines.map((l) => `${l}\n`).join(''))

/** Secrets known so far (the deployfile's, then the run's): error messages are masked with them too. */
const knownSecrets = new SecretRegistry()

/**
 * Settings given on the command line: -o key=value, --branch, --tag,
 * --revision, --force. Each -o is parsed and checked against its declared type.
 */
function overridesOf(options: CliOptions, registry: Registry): Map<string, unknown> {
  const overrides = parseOverrides(registry.settings, options.option, registry.secretKeys)
  if (options.branch) overrides.set('branch', options.branch)
  if (options.tag) overrides.set('tag', options.tag)
  if (options.revision) overrides.set('revision', options.revision)
  if (options.force) overrides.set('force', true)
  return overrides
}

async function main(invocation: Invocation): Promise<number> {
  const { name, args, options } = invocation
  if (name === 'help') return ExitCode.Success
  if (name === 'init') {
    const { runInit } = await import('./commands/init.js')
    return runInit(args, options)
  }
  const path = await findDeployfile(process.cwd(), options.file)
  const { registry } = await loadDeployfile(path)
  knownSecrets.add(...registry.secretValues)
  const overrides = overridesOf(options, registry)
  const hostList = [...registry.hosts.values()]

  if (options.help) {
    out(taskHelp(registry, name))
    return ExitCode.Success
  }
  switch (name) {
    case 'list':
      if (options.json) {
        const tasks = [...registry.tasks.values()].filter((t) => !t.hidden).map((t) => ({ name: t.name, description: t.description }))
        out([JSON.stringify({ type: 'tasks', tasks: tasks.sort((a, b) => a.name.localeCompare(b.name)) })])
      } else out(listTasks(registry))
      return ExitCode.Success
    case 'tree':
      if (!args[0]) throw new ConfigError('dep tree needs a task name.', 'For example: dep tree deploy')
      // --json: the README promises JSON for every command that prints something.
      out(options.json ? [JSON.stringify({ type: 'tree', task: args[0], tree: buildTree(registry, args[0]) })] : treeLines(registry, args[0]))
      return ExitCode.Success
    case 'config':
      out(options.json ? [await configJson(registry, selectHosts(hostList, args), overrides)] : await configLines(registry, selectHosts(hostList, args), overrides))
      return ExitCode.Success
    case 'ssh': {
      const { runSsh } = await import('./commands/ssh.js')
      return runSsh(registry, hostList, args, overrides)
    }
    case 'run': {
      const { defineAdHocCommand } = await import('./commands/run-command.js')
      const taskName = defineAdHocCommand(registry, args[0])
      // The point of `dep run` is its output: show it without -v.
      options.verbose = Math.max(1, options.verbose)
      return runNamedTask(taskName, args.slice(1))
    }
    default:
      return runNamedTask(name, args)
  }

  async function runNamedTask(taskName: string, selectors: string[]): Promise<number> {
    registry.getTask(taskName)
    const hosts = selectHosts(hostList, selectors)
    const rollout = parseRollout(options, hosts)
    const plan = buildPlan(registry, taskName, hosts, { limit: options.limit, rollout })
    await checkRefOptions(registry, plan, hosts, overrides, options)
    if (options.offline && !options.dryRun) throw new ConfigError('--offline only goes with --dry-run.', `For example: dep ${plan.task} --dry-run --offline`)
    if (options.plan) {
      const steps = (list: typeof plan.steps) =>
        list.map((s) => ({ task: s.task.name, hosts: s.hosts.map((h) => h.alias), phase: s.phase, hidden: s.task.hidden || undefined, once: s.task.once || undefined }))
      const batches = plan.rollout?.batches.map((batch) => batch.map((h) => h.alias))
      out(options.json ? [planLine({ task: plan.task, hosts: hosts.map((h) => h.alias), steps: steps(plan.steps), recoverySteps: steps(plan.failSteps), batches })] : planTable(plan))
      return ExitCode.Success
    }
    const secrets = knownSecrets
    const logFile = options.log ?? (typeof overrides.get('log_file') === 'string' ? (overrides.get('log_file') as string) : undefined) ?? (typeof registry.config.get('log_file') === 'string' ? (registry.config.get('log_file') as string) : undefined)
    const reporters = await createReporters(invocation, logFile)
    let recorded: Map<string, MemoryTransport> | undefined
    try {
      const outcome = await runTask({
        registry,
        plan,
        hosts,
        overrides,
        sink: reporters.sink,
        secrets,
        dryRun: options.dryRun,
        offline: options.offline,
        onState: (state) => {
          if (!options.dryRun) return
          recorded = new Map(hosts.map((h) => [h.alias, state.transportFor(h) as MemoryTransport]))
        },
      })
      // The reporters print the failure in full; they finish drawing before anything else is printed.
      await reporters.close()
      // Stopped at once: what the plan still unwinds in the background must not keep the process up.
      if (outcome.status === 'interrupted') setTimeout(() => process.exit(outcome.exitCode), 2_000).unref()
      if (options.dryRun && recorded && !options.json) {
        printDryRun(recorded, secrets)
        out([
          options.offline
            ? '# offline: nothing was read from the hosts, so release names and what each host serves are guesses (drop --offline to read them).'
            : '# Only read-only commands ran (each host\'s state was read); nothing above was run.',
        ])
      }
      return outcome.exitCode
    } finally {
      await reporters.close()
    }
  }
}

function printDryRun(recorded: Map<string, MemoryTransport>, secrets: SecretRegistry): void {
  for (const [alias, transport] of recorded) {
    out([`# ${alias}: ${transport.operations.length} round trip(s)`])
    for (const [index, op] of transport.operations.entries()) {
      out([`# --- ${index + 1} ---`])
      // Exactly the script the transport sends (renderCommand: env, cd, the command; queued ones
      // in their subshells), masked; its stdin follows it on the wire and is never shown.
      if (op.kind === 'exec') out([secrets.redact(op.script), ...(op.command.stdin === undefined ? [] : [`# followed on stdin by ${stdinSize(op.command.stdin)}`])])
      else if (op.kind === 'put') out([`# upload ${op.source} → ${op.remotePath}${op.mode ? ` (mode ${op.mode.toString(8)})` : ''}`])
      else out([`# download ${op.remotePath} → ${op.localPath}`])
    }
    out([''])
  }
}

function stdinSize(stdin: string | Buffer | Readable): string {
  return typeof stdin === 'string' || Buffer.isBuffer(stdin) ? `${Buffer.byteLength(stdin)} bytes` : 'a stream'
}

/** Parses argv, runs the command, and sets the exit code. */
export async function cli(): Promise<void> {
  ignoreBrokenPipes()
  blockingStdio()
  const argv = process.argv.slice(2)
  let invocation: Invocation
  try {
    invocation = parseArgv(argv)
  } catch (error) {
    // commander printed --help or --version: done.
    if (error instanceof CommanderError && error.exitCode === 0) process.exit(0)
    // A usage error is reported like any other. commander stopped before it gave any option: the two
    // that shape the report are read from argv (the last of --color/--no-color wins, as in commander).
    const colorAt = argv.lastIndexOf('--color')
    const noColorAt = argv.lastIndexOf('--no-color')
    const options = { option: [], verbose: 0, json: argv.includes('--json'), color: colorAt === noColorAt ? undefined : colorAt > noColorAt }
    reportError(error, options)
    return
  }
  try {
    process.exitCode = await main(invocation)
  } catch (error) {
    reportError(error, invocation.options)
  }
}

/** Prints an error (one JSON line on stdout too with --json) and sets the exit code it stands for. */
function reportError(error: unknown, options: CliOptions): void {
  const exitCode = error instanceof DeployError ? error.exitCode : ExitCode.TaskFailed
  const raw = describeError(error)
  const info = { ...raw, message: knownSecrets.redact(raw.message), hint: raw.hint && knownSecrets.redact(raw.hint) }
  // --json: stdout carries one JSON line, never prose; the prose goes to stderr.
  if (options.json) out([errorLine(info, exitCode)])
  process.stderr.write(`${formatError(info, useColor(options, process.stderr)).join('\n')}\n`)
  if (options.verbose >= 2 && error instanceof Error && error.stack) process.stderr.write(`${knownSecrets.redact(error.stack)}\n`)
  process.exitCode = exitCode
}
