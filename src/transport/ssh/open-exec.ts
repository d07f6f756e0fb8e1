import type { Client, ClientChannel } from 'ssh2'
import pRetry from 'p-retry'

/** sshd frees a closed session a little after it answers the close; a new one may briefly exceed MaxSessions. */
const SESSION_RETRIES = 20

/** What opening a channel needs from its command's hooks. */
export interface OpenExecHooks {
  /** Is the connection still up? A refusal on a dead connection is not tried again. */
  connectionAlive(): boolean
  /** One more round trip: a refused channel open is tried again. */
  retried(): void
}

/** sshd's "open failed" (administratively prohibited, connect failed, resource shortage): MaxSessions reached. */
function sessionRefused(error: unknown): boolean {
  const reason = (error as { reason?: number } | undefined)?.reason
  return reason === 1 || reason === 2 || reason === 4
}

function exec(client: Client, command: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    // ssh2 throws synchronously when the connection is already gone: the promise rejects with it.
    client.exec(command, (error, channel) => (error ? reject(error) : resolve(channel)))
  })
}

/**
 * Opens an exec channel, trying again (p-retry, short growing waits, about a second in all) while
 * sshd refuses it for lack of sessions for a moment.
 */
export async function openExecChannel(client: Client, command: string, hooks: OpenExecHooks): Promise<ClientChannel> {
  try {
    return await pRetry(
      (attempt) => {
        if (attempt > 1) hooks.retried()
        return exec(client, command)
      },
      { retries: SESSION_RETRIES - 1, minTimeout: 5, factor: 1.25, maxTimeout: 100, shouldRetry: ({ error }) => sessionRefused(error) && hooks.connectionAlive() },
    )
  } catch (error) {
    if (!sessionRefused(error)) throw error
    throw new Error(
      `sshd refused a new session ${SESSION_RETRIES} times (${(error as Error).message}): its MaxSessions is lower than ` +
        'the channels this host may use; lower maxChannels for this host.',
      { cause: error },
    )
  }
}
