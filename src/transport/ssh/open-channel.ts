import type { Client, ClientChannel } from 'ssh2'

/** sshd frees a closed session a little after it answers the close; a new one may briefly exceed MaxSessions. */
const SESSION_RETRIES = 20

/** What opening a channel needs to know about its connection. */
export interface OpenHooks {
  /** Is the connection still up? */
  connectionAlive(): boolean
  /** A channel open was refused for lack of sessions and is tried again: one more round trip. */
  retried(): void
}

/**
 * Opens a session channel running `command`, trying again while sshd says "open failed"
 * (MaxSessions reached for a moment).
 */
export function openExecChannel(
  client: Client,
  command: string,
  hooks: OpenHooks,
  done: (error: Error | undefined, channel?: ClientChannel) => void,
  attempt = 1,
): void {
  try {
    client.exec(command, (error, channel) => {
      const reason = (error as (Error & { reason?: number }) | undefined)?.reason
      const refused = reason === 1 || reason === 2 || reason === 4
      if (error && refused && attempt < SESSION_RETRIES && hooks.connectionAlive()) {
        hooks.retried()
        setTimeout(() => openExecChannel(client, command, hooks, done, attempt + 1), 5 * attempt)
        return
      }
      if (error && refused) {
        done(
          new Error(
            `sshd refused a new session ${SESSION_RETRIES} times (${error.message}): its MaxSessions is lower than ` +
              'the channels this host may use; lower maxChannels for this host.',
            { cause: error },
          ),
        )
        return
      }
      done(error ?? undefined, channel)
    })
  } catch (error) {
    // ssh2 throws synchronously when the connection is already gone.
    done(error as Error)
  }
}

/** Can this channel still take a script? (ssh2 keeps no public flag; these fields are stable in 1.x.) */
export function channelUsable(channel: ClientChannel): boolean {
  const state = channel as unknown as { incoming?: { state?: string }; outgoing?: { state?: string } }
  return state.outgoing?.state === 'open' && state.incoming?.state !== 'closed' && channel.writable
}
