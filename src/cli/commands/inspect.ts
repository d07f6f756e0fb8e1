import type { Host } from '../../model/host.js'
import type { Registry } from '../../model/registry.js'
import { LazyValueRefused, type HostConfig } from '../../model/config.js'
import { MASK, SecretRegistry } from '../../shell/redact.js'
import type { Plan } from '../../plan/plan.js'
import type { Rollout } from '../../plan/rollout.js'
import { buildTree, type TreeNode } from '../../plan/plan.js'

/** `dep list`: the visible tasks with their descriptions. */
export function listTasks(registry: Registry): string[] {
  const tasks = [...registry.tasks.values()].filter((t) => !t.hidden).sort((a, b) => a.name.localeCompare(b.name))
  const width = Math.max(4, ...tasks.map((t) => t.name.length))
  return ['Tasks:', ...tasks.map((t) => `  ${t.name.padEnd(width)}  ${t.description ?? ''}`.trimEnd())]
}

/** `dep tree <task>`: what a task runs, hooks annotated. */
export function treeLines(registry: Registry, taskName: string): string[] {
  const lines: string[] = []
  const walk = (node: TreeNode, indent: string, last: boolean, root: boolean) => {
    const notes = [node.via, node.once ? 'once' : undefined, node.phase && root ? undefined : undefined].filter(Boolean)
    const branch = root ? '' : last ? '└── ' : '├── '
    lines.push(`${indent}${branch}${node.name}${notes.length ? `  // ${notes.join(', ')}` : ''}`)
    const childIndent = root ? '' : indent + (last ? '    ' : '│   ')
    for (const [i, child] of node.children.entries()) walk(child, childIndent, i === node.children.length - 1, false)
  }
  walk(buildTree(registry, taskName), '', true, true)
  return lines
}

/**
 * Settings a task's code reads, as far as its source says: `get('key')`, `has('key')` and
 * `{{key}}` templates in the bodies of the task and of everything it runs. Values computed from
 * variables are not seen: the list is a guide, `dep config` shows every value.
 */
export function settingsRead(registry: Registry, taskName: string): string[] {
  const keys = new Set<string>()
  const visit = (node: TreeNode) => {
    const body = registry.tasks.get(node.name)?.body
    if (body) {
      const source = body.toString()
      for (const match of source.matchAll(/\b(?:get|has)(?:<[^>()]*>)?\(\s*['"`]([A-Za-z0-9_/.:-]+)['"`]/g)) keys.add(match[1])
      for (const match of source.matchAll(/\{\{\s*([A-Za-z0-9_/.:-]+)\s*\}\}/g)) keys.add(match[1])
    }
    node.children.forEach(visit)
  }
  visit(buildTree(registry, taskName))
  return [...keys].sort()
}

/** `dep <task> --help`: what the task is for, what it runs, the settings it reads, how to run it. */
export function taskHelp(registry: Registry, taskName: string): string[] {
  const task = registry.getTask(taskName)
  const settings = settingsRead(registry, taskName)
  const wrap = (words: string[], indent: string, width = 100) => {
    const lines: string[] = []
    let line = indent
    for (const word of words) {
      if (line.length + word.length > width && line.trim()) {
        lines.push(line.trimEnd())
        line = indent
      }
      line += `${word} `
    }
    if (line.trim()) lines.push(line.trimEnd())
    return lines
  }
  return [
    `Usage: dep ${taskName} [selector…] [options]`,
    '',
    `  ${task.description ?? "(no description: give one with task(…, …, { description: '…' }))"}`,
    ...(task.once ? ['  Runs on one host only (once).'] : []),
    ...(task.select ? [`  Runs only on hosts matching ${task.select}.`] : []),
    '',
    `What it runs (hooks included; also: dep tree ${taskName}):`,
    ...treeLines(registry, taskName).map((line) => `  ${line}`),
    '',
    ...(settings.length
      ? ['Settings its code reads (set them with set(), in host() options, or -o key=value; dep config shows them):', ...wrap(settings.map((k, i) => (i < settings.length - 1 ? `${k},` : k)), '  ')]
      : ['Settings: none found in its code (dep config shows every setting).']),
    '',
    'Run it:',
    `  dep ${taskName} --plan       steps × hosts, nothing runs`,
    `  dep ${taskName} -v           with every command and its output`,
    `  dep ${taskName} stage=prod   on the hosts labelled stage=prod`,
    'All options: dep --help',
  ]
}

/** `dep <task> --plan`: one row per step, one column per host. */
export function planTable(plan: Plan): string[] {
  const hosts = plan.hosts.map((h) => h.alias)
  const stepWidth = Math.max(4, ...plan.steps.map((s) => s.task.name.length), ...plan.failSteps.map((s) => s.task.name.length))
  const phaseWidth = 11
  const header = `${'step'.padEnd(stepWidth)}  ${'phase'.padEnd(phaseWidth)}  ${hosts.join('  ')}`
  const row = (step: Plan['steps'][number]) => {
    const marks = hosts.map((alias) => (step.hosts.some((h) => h.alias === alias) ? '●' : '·').padEnd(alias.length))
    const notes = [step.task.once ? 'once' : '', step.limit ? `limit ${step.limit}` : ''].filter(Boolean).join(', ')
    return `${step.task.name.padEnd(stepWidth)}  ${(step.phase ?? '-').padEnd(phaseWidth)}  ${marks.join('  ')}${notes ? `  (${notes})` : ''}`
  }
  const lines = [`Plan for ${plan.task} on ${hosts.length} host(s):`, header, ...plan.steps.map(row)]
  if (plan.rollout) lines.push('', ...rolloutLines(plan.rollout))
  if (plan.failSteps.length) lines.push('', `On failure (fail hook of ${plan.task}):`, ...plan.failSteps.map(row))
  return lines
}

/** How a rolling plan switches its hosts: one line per batch, and what a failure does. */
export function rolloutLines(rollout: Rollout): string[] {
  const of = rollout.batches.length
  return [
    `Rolling: the 'switch' and 'post-switch' steps run batch by batch (${of} batches):`,
    ...rollout.batches.map((batch, i) => `  batch ${i + 1}/${of}${rollout.canary && i === 0 ? ' (canary)' : ''}: ${batch.map((h) => h.alias).join(', ')}`),
    rollout.maxFail > 0
      ? `  up to ${rollout.maxFail} failed host(s) are left out on the release they served (exit 7)${rollout.canary ? '; a canary failure stops the run' : ''}; one more, and every host goes back`
      : '  any failure: every host goes back to the release it served',
  ]
}

/** Settings whose whole value is sensitive (a .env holds passwords), masked in `dep config` without masking each value everywhere. */
const HIDDEN_KEYS = new Set(['dotenv'])

/** One setting as `dep config` shows it. */
export interface ConfigEntry {
  key: string
  /** The value (secrets and the whole of hidden keys replaced by `***`); absent when computed at run time or unreadable. */
  value?: unknown
  /** Why there is no value: `computed at run time`, or the error reading it. */
  note?: string
  /** What the setting is for, from the settings table (declareSetting). */
  description?: string
}

/**
 * `dep config`: resolved settings per host, each with its description where
 * the settings table has one. Nothing runs: lazy values (and templates that
 * need them) show as computed at run time. Every secret, literal or reached
 * through a template, is masked.
 */
export async function configEntries(registry: Registry, hosts: Host[], overrides: Map<string, unknown>): Promise<{ secrets: SecretRegistry; hosts: Array<{ host: string; settings: ConfigEntry[] }> }> {
  const secrets = new SecretRegistry()
  secrets.add(...registry.secretValues)
  const result: Array<{ host: string; settings: ConfigEntry[] }> = []
  for (const host of hosts) {
    const config = registry.hostConfig(host, overrides, (value) => secrets.add(value), { noLazy: true })
    // Secret keys first, so their values are known before anything that templates them is shown.
    for (const key of config.keys().filter((k) => registry.secretKeys.has(k))) await config.get(key).catch(() => undefined)
    // And what secret sources derive (the .env values), wherever a setting repeats one.
    for (const source of registry.secretSources) {
      try {
        for (const value of await source({ get: (key) => config.get(key), has: (key) => config.has(key) })) secrets.add(value)
      } catch {
        // A lazy value (not computed by dep config) or a missing file: nothing to mask from it.
      }
    }
    const settings: ConfigEntry[] = []
    for (const key of config.keys()) {
      const shown = registry.secretKeys.has(key) || HIDDEN_KEYS.has(key) ? { key, value: MASK } : await entry(config, key)
      const description = registry.settings.get(key)?.description
      settings.push(description ? { ...shown, description } : shown)
    }
    result.push({ host: host.alias, settings })
  }
  return { secrets, hosts: result }
}

/** `dep config` as text: `host:` then `  key: value` lines. */
export async function configLines(registry: Registry, hosts: Host[], overrides: Map<string, unknown>): Promise<string[]> {
  const { secrets, hosts: entries } = await configEntries(registry, hosts, overrides)
  const lines: string[] = []
  for (const { host, settings } of entries) {
    lines.push(`${host}:`)
    for (const { key, value, note, description } of settings) {
      lines.push(`  ${key}: ${note ? `<${note}>` : value === MASK ? MASK : JSON.stringify(value)}${description ? `  # ${description}` : ''}`)
    }
  }
  return lines.map((line) => secrets.redact(line))
}

/** `dep config --json`: one line, `{ "type": "config", "hosts": { alias: { key: value } } }`, secrets masked. */
export async function configJson(registry: Registry, hosts: Host[], overrides: Map<string, unknown>): Promise<string> {
  const { secrets, hosts: entries } = await configEntries(registry, hosts, overrides)
  const byHost = Object.fromEntries(
    entries.map(({ host, settings }) => [host, Object.fromEntries(settings.map(({ key, value, note }) => [key, note ? { note } : value]))]),
  )
  return secrets.redact(JSON.stringify({ type: 'config', hosts: byHost }))
}

async function entry(config: HostConfig, key: string): Promise<ConfigEntry> {
  if (config.isLazy(key)) return { key, note: 'computed at run time' }
  try {
    return { key, value: await config.get(key) }
  } catch (error) {
    return error instanceof LazyValueRefused ? { key, note: 'computed at run time' } : { key, note: `error: ${(error as Error).message}` }
  }
}
