import { setTimeout as sleep } from 'node:timers/promises'

/** After the kill, how long a command may take to end before we hang up, and again before we stop waiting. */
export const CLOSE_GRACE_MS = 3_000
/** How long to wait for the process group number when a command is killed right at its start. */
export const PGID_WAIT_MS = 3_000

/** What stopping one command needs from the channel it runs on. */
export interface KillSteps {
  /** The command's process group, once its shell reported it (undefined: it never will). */
  pgid: Promise<number | undefined>
  /** Kills a process group (through another command on the connection). */
  killGroup(pgid: number): Promise<void>
  /** No group number (the shell never started): stop it another way (signal the session, hang up). */
  noGroup(): void
  /** The command did not end after the kill: hang up on its channel. */
  hangUp(): void
  /** Still no end after hanging up: settle without it. */
  giveUp(): void
  /** True once the command ended. */
  ended(): boolean
}

/**
 * Stops a running command, on a channel of its own or on the command channel: kills its process
 * group (or, without its number, `noGroup`); when the command has not ended CLOSE_GRACE_MS later,
 * hangs up, and after one more grace period stops waiting (sshd answers a hang-up only once its
 * child exits). Each pending timer goes to `onTimer`, so the command clears it when it ends.
 * Resolves once the kill was sent.
 */
export function killCommand(steps: KillSteps, onTimer: (timer: NodeJS.Timeout) => void): Promise<void> {
  const killed = (async () => {
    const found = await Promise.race([steps.pgid, sleep(PGID_WAIT_MS, undefined, { ref: false })])
    if (found !== undefined) await steps.killGroup(found).catch(() => undefined)
    else steps.noGroup()
  })()
  void killed.then(() => {
    if (steps.ended()) return
    const hangUp = setTimeout(() => {
      steps.hangUp()
      const giveUp = setTimeout(() => steps.giveUp(), CLOSE_GRACE_MS)
      giveUp.unref()
      onTimer(giveUp)
    }, CLOSE_GRACE_MS)
    hangUp.unref()
    onTimer(hangUp)
  })
  return killed
}
