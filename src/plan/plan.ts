import { ConfigError } from '../model/errors.js'
import type { Host } from '../model/host.js'
import type { Registry } from '../model/registry.js'
import type { Phase, TaskDefinition } from '../model/task.js'
import type { Rollout } from './rollout.js'
import { compileSelector } from './selector.js'

/** One task to run on a set of hosts. */
export interface PlanStep {
  task: TaskDefinition
  /** Hosts the task runs on (selection ∩ the task's `select`; one host for `once`). */
  hosts: Host[]
  phase?: Phase
  /** Most hosts at once for this step (the smaller of `--limit` and the task's `limit`). */
  limit?: number
  /** Why it is in the plan: `before deploy:symlink`, `after deploy`, or the group it belongs to. */
  via?: string
}

/** What `dep <task>` will do: the steps in order, and what runs if one fails. */
export interface Plan {
  task: string
  hosts: Host[]
  steps: PlanStep[]
  /** Steps of the top-level task's `fail` hook. */
  failSteps: PlanStep[]
  /** Set for `--strategy rolling`: the 'switch' and 'post-switch' steps run batch by batch. */
  rollout?: Rollout
}

/** A node of `dep tree`. */
export interface TreeNode {
  name: string
  via?: string
  description?: string
  phase?: Phase
  once?: boolean
  children: TreeNode[]
}

/** How a hook task inherits a phase from the task it hooks. */
function hookPhase(kind: 'before' | 'after', target?: Phase): Phase | undefined {
  if (target === 'switch') return kind === 'before' ? 'prepare' : 'post-switch'
  return target
}

function firstPhaseOf(node: TreeNode): Phase | undefined {
  return node.phase ?? node.children.map(firstPhaseOf).find(Boolean)
}

function lastPhaseOf(node: TreeNode): Phase | undefined {
  return node.phase ?? [...node.children].reverse().map(lastPhaseOf).find(Boolean)
}

/** Builds the tree of a task: its before hooks, its body or group members, its after hooks. */
export function buildTree(registry: Registry, name: string): TreeNode {
  const visit = (taskName: string, via: string | undefined, inherited: Phase | undefined, path: string[]): TreeNode => {
    if (path.includes(taskName)) throw new ConfigError(`Task "${taskName}" runs itself: ${[...path, taskName].join(' → ')}.`)
    const task = registry.getTask(taskName)
    const phase = task.phase ?? inherited
    const next = [...path, taskName]
    // A member without a phase of its own takes the group's, else the one of the member before it.
    const members: TreeNode[] = []
    for (const member of task.group ?? []) {
      const previous = members.length ? lastPhaseOf(members[members.length - 1]) : undefined
      members.push(visit(member, undefined, phase ?? previous, next))
    }
    // Hooks of a group without a phase of its own take the phase of its first or last member.
    const firstPhase = phase ?? members.map(firstPhaseOf).find(Boolean)
    const lastPhase = phase ?? [...members].reverse().map(lastPhaseOf).find(Boolean)
    const before = (registry.before.get(taskName) ?? []).map((hook) => visit(hook, `before ${taskName}`, hookPhase('before', firstPhase), next))
    const after = (registry.after.get(taskName) ?? []).map((hook) => visit(hook, `after ${taskName}`, hookPhase('after', lastPhase), next))
    return { name: taskName, via, description: task.description, phase, once: task.once, children: [...before, ...members, ...after] }
  }
  return visit(name, undefined, undefined, [])
}

/** Flattens a tree into the steps that run: every task with a body, in order. */
function flatten(registry: Registry, node: TreeNode, hosts: Host[], limit: number | undefined, via?: string): PlanStep[] {
  const task = registry.getTask(node.name)
  const before = node.children.filter((c) => c.via === `before ${node.name}`)
  const members = node.children.filter((c) => c.via === undefined)
  const after = node.children.filter((c) => c.via === `after ${node.name}`)
  const steps: PlanStep[] = []
  for (const child of before) steps.push(...flatten(registry, child, hosts, limit, child.via))
  if (task.body) {
    let stepHosts = task.select ? hosts.filter((h) => compileSelector(task.select!)(h.labels)) : hosts
    if (task.once) stepHosts = stepHosts.slice(0, 1)
    const limits = [limit, task.limit].filter((n): n is number => typeof n === 'number' && n > 0)
    steps.push({
      task,
      hosts: stepHosts,
      phase: node.phase,
      limit: limits.length ? Math.min(...limits) : undefined,
      via: via ?? node.via,
    })
  }
  for (const child of members) steps.push(...flatten(registry, child, hosts, limit, via ?? `in ${node.name}`))
  for (const child of after) steps.push(...flatten(registry, child, hosts, limit, child.via))
  return steps
}

/** Plans `taskName` on `hosts`. */
export function buildPlan(registry: Registry, taskName: string, hosts: Host[], options: { limit?: number; rollout?: Rollout } = {}): Plan {
  const tree = buildTree(registry, taskName)
  const steps = flatten(registry, tree, hosts, options.limit)
  const failTask = registry.fail.get(taskName)
  const failSteps = failTask
    ? flatten(registry, buildTree(registry, failTask), hosts, options.limit, `fail ${taskName}`)
    : []
  if (options.rollout && !steps.some((s) => s.phase === 'switch')) {
    throw new ConfigError(`--strategy rolling: ${taskName} has no 'switch' step, so there is nothing to roll out batch by batch.`, 'Roll out a task that switches hosts, such as dep deploy; run other tasks without --strategy.')
  }
  return { task: taskName, hosts, steps, failSteps, rollout: options.rollout }
}

/**
 * Where the steps that run batch by batch begin and end (`end` excluded): from
 * the first 'switch' step to the last 'switch' or 'post-switch' step; undefined
 * when the plan has no 'switch' step.
 */
export function rollingSpan(steps: PlanStep[]): { start: number; end: number } | undefined {
  const start = steps.findIndex((s) => s.phase === 'switch')
  if (start < 0) return undefined
  let end = start + 1
  for (let i = start; i < steps.length; i++) if (steps[i].phase === 'switch' || steps[i].phase === 'post-switch') end = i + 1
  return { start, end }
}
