import { Command, raw, renderCommand, sh } from '../command.js'
import { QUEUED_FAILED } from './markers.js'

/**
 * The script of one round trip that carries queued commands: each queued command in its own
 * subshell (its cwd and env stay its own, stdin is not shared), in order; the first failure prints
 * the queued-failed marker naming it on stderr and stops the script with its exit code. Then the
 * command that was run, with its settings rendered like any command's; the result carries its stdin
 * and every secret of them all.
 */
export function queuedBatch(queued: readonly Command[], own: Command): Command {
  // Not `( … ) || …`: the shell ignores `set -e` inside the left side of `||`.
  const steps = queued.map(
    (command, index) =>
      sh`(
${raw(renderCommand(command))}
) </dev/null
rc=$?; if [ $rc -ne 0 ]; then printf '\\n%s %s\\n' ${QUEUED_FAILED} ${index} >&2; exit $rc; fi`,
  )
  const text = [...steps.map((step) => step.text), renderCommand(own)].join('\n')
  const secrets = [...queued.flatMap((command) => command.secrets), ...own.secrets]
  return new Command(text, secrets, own.stdin === undefined ? {} : { stdin: own.stdin })
}
