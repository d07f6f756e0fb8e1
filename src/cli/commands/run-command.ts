import { ConfigError } from '../../model/errors.js'
import type { Registry } from '../../model/registry.js'
import { shownAs } from '../../shell/command.js'
import { adHocScript } from '../../shell/protocol.js'
import type { TaskContext } from '../../dsl/context.js'

/**
 * `dep run '<command>'`: the command becomes a hidden task, so it runs like
 * any other step (on every selected host, output prefixed by host), in the
 * current release when there is one, else in deploy_path.
 */
export function defineAdHocCommand(registry: Registry, command: string | undefined): string {
  if (!command) throw new ConfigError('dep run needs a command.', `For example: dep run 'uptime' all`)
  const name = 'run'
  registry.defineTask({
    name,
    description: `Runs: ${command}`,
    hidden: true,
    body: async (ctx: TaskContext) => {
      const base = ctx.has('deploy_path') ? await ctx.get<string>('deploy_path') : undefined
      // One round trip: the directory choice travels with the user's command line, sent as written.
      // Output and errors show the user's command only: the wrapper is ours, not theirs.
      // Its output is streamed to the reporters; only what a failure shows (the last 64 KiB) is kept.
      await ctx.run(shownAs(adHocScript(command, base), command), { maxOutput: 64 * 1024 })
    },
  })
  return name
}
