import type { Client, ClientChannel } from 'ssh2'
import { openExecChannel as openWithRetry, type OpenExecHooks } from './open-exec.js'

export type { OpenExecHooks as OpenHooks } from './open-exec.js'

/** Opens a session channel running `command` (see open-exec.ts: refusals for lack of sessions are tried again). */
export function openExecChannel(client: Client, command: string, hooks: OpenExecHooks, done: (error: Error | undefined, channel?: ClientChannel) => void): void {
  openWithRetry(client, command, hooks).then(
    (channel) => done(undefined, channel),
    (error: unknown) => done(error as Error),
  )
}

/** Can this channel still take a script? (ssh2 keeps no public flag; these fields are stable in 1.x.) */
export function channelUsable(channel: ClientChannel): boolean {
  const state = channel as unknown as { incoming?: { state?: string }; outgoing?: { state?: string } }
  return state.outgoing?.state === 'open' && state.incoming?.state !== 'closed' && channel.writable
}
