/**
 * `deployfile/testing`: run a deployfile's task without a host, for the unit tests of a plugin or a
 * recipe. Every host gets the memory transport (the one behind `--dry-run`): it records each
 * command as a real transport would send it and answers with exit 0, or with what an answer says.
 */
import { withRegistry } from '../dsl/registry-scope.js'
import { executePlan } from '../executor/execute.js'
import { RunState } from '../executor/run-state.js'
import { loadSecretSources } from '../executor/secret-sources.js'
import type { ExitCodeValue } from '../model/errors.js'
import type { RunEvent } from '../model/events.js'
import type { Host } from '../model/host.js'
import { Registry } from '../model/registry.js'
import { buildPlan } from '../plan/plan.js'
import { selectHosts } from '../plan/selector.js'
import { MemoryTransport } from '../transport/memory/memory-transport.js'

/** What a host answers to a matching command (the first matching answer wins; others exit 0 silently). */
export interface RehearsalAnswer {
  /** A pattern the rendered script must match, or a predicate on it. */
  match: RegExp | ((script: string) => boolean)
  stdout?: string
  stderr?: string
  /** Default 0. */
  exitCode?: number
}

/** Options of {@link rehearse}. */
export interface RehearseOptions {
  /** Settings given as `dep -o key=value` would give them (they beat the deployfile's). */
  settings?: Record<string, unknown>
  /** Label selectors or host names, as on the command line. Default: every host. */
  select?: string[]
  /** Scripted answers of the hosts (e.g. what a probe or `cat` prints). */
  answers?: RehearsalAnswer[] | ((host: string) => RehearsalAnswer[])
}

/** What a rehearsal did. */
export interface Rehearsal {
  /** How the run ended, as `dep` would report it. */
  status: 'success' | 'partial' | 'failed' | 'rollback-failed' | 'interrupted'
  /** The exit code `dep` would have exited with. */
  exitCode: ExitCodeValue
  /** Per host, every script sent, in order, exactly as a real transport would send it (queued commands inside their batch). */
  scripts: Record<string, string[]>
  /** Per host, files and directories uploaded (`source` → `remotePath`). */
  uploads: Record<string, Array<{ source: string; remotePath: string; mode?: number }>>
  /** The run's events, as `--json` prints them (secrets masked). */
  events: RunEvent[]
  /** The steps of the plan, in order: `task` or `task:phase`. */
  steps: string[]
}

/**
 * Loads `deployfile` (a function making the calls a deployfile makes: `use()`, `host()`, `set()`, …)
 * into a fresh registry and runs `task` on its hosts through the memory transport: nothing is
 * connected to and nothing runs. Settings are checked as at load time (an unknown key throws the
 * `ConfigError` a user would see).
 *
 * @example
 * const { scripts, exitCode } = await rehearse(() => {
 *   use(common)
 *   use(myPlugin)
 *   host('web1', { deployPath: '/srv/app' })
 * }, 'my-plugin:reload', { settings: { my_service: 'api' } })
 * expect(exitCode).toBe(0)
 * expect(scripts.web1).toEqual(["systemctl reload api"])
 */
export async function rehearse(deployfile: () => void | Promise<void>, task: string, options: RehearseOptions = {}): Promise<Rehearsal> {
  const registry = await withRegistry(new Registry(), deployfile)
  registry.checkSettings()
  const hosts = selectHosts([...registry.hosts.values()], options.select ?? [])
  const plan = buildPlan(registry, task, hosts)
  const events: RunEvent[] = []
  const transports = new Map<string, MemoryTransport>()
  const answersFor = (host: Host) => {
    const answers = typeof options.answers === 'function' ? options.answers(host.alias) : (options.answers ?? [])
    return answers.map(({ match, stdout, stderr, exitCode }) => ({ match, result: { stdout: stdout ?? '', stderr: stderr ?? '', code: exitCode ?? 0 } }))
  }
  const state = new RunState(registry, hosts, {
    runId: 'rehearsal',
    overrides: new Map(Object.entries(options.settings ?? {})),
    transportFor: (host) => {
      const transport = new MemoryTransport(host, answersFor(host))
      transports.set(host.alias, transport)
      return transport
    },
    localTransportFor: (host) => new MemoryTransport(host),
    sink: (event) => events.push(event),
  })
  try {
    await loadSecretSources(state)
    const outcome = await executePlan(state, plan)
    const scripts: Rehearsal['scripts'] = {}
    const uploads: Rehearsal['uploads'] = {}
    for (const [alias, transport] of transports) {
      scripts[alias] = transport.scripts
      uploads[alias] = transport.operations.flatMap((op) => (op.kind === 'put' ? [{ source: op.source, remotePath: op.remotePath, mode: op.mode }] : []))
    }
    const steps = plan.steps.map((step) => (step.phase ? `${step.task.name}:${step.phase}` : step.task.name))
    return { status: outcome.status, exitCode: outcome.exitCode, scripts, uploads, events, steps }
  } finally {
    await state.close()
  }
}
