/**
 * Opening an exec channel while sshd is at MaxSessions for a moment: refusals are tried again
 * (each one more round trip), other errors are not, and too many refusals say what to change.
 * The client is a stand-in answering exec() as ssh2 does; the real sshd path is covered by the
 * integration tests.
 */
import type { Client, ClientChannel } from 'ssh2'
import { describe, expect, it } from 'vitest'
import { openExecChannel } from '../../src/transport/ssh/open-exec.js'

const refused = () => Object.assign(new Error('(SSH) Channel open failure: open failed'), { reason: 2 })

function client(answers: Array<Error | 'ok'>): { client: Client; calls: () => number } {
  let calls = 0
  const fake = {
    exec(_command: string, callback: (error: Error | undefined, channel: ClientChannel) => void) {
      const answer = answers[Math.min(calls++, answers.length - 1)]
      setImmediate(() => (answer === 'ok' ? callback(undefined, { id: 'channel' } as unknown as ClientChannel) : callback(answer, undefined as never)))
    },
  }
  return { client: fake as unknown as Client, calls: () => calls }
}

describe('openExecChannel', () => {
  it('tries again while sshd refuses for lack of sessions, counting a round trip each time', async () => {
    const fake = client([refused(), refused(), 'ok'])
    let retried = 0
    const channel = await openExecChannel(fake.client, 'sh', { connectionAlive: () => true, retried: () => retried++ })
    expect(channel).toEqual({ id: 'channel' })
    expect(fake.calls()).toBe(3)
    expect(retried).toBe(2)
  })

  it('does not try again on another error, or once the connection is gone', async () => {
    const other = client([new Error('No response from server'), 'ok'])
    await expect(openExecChannel(other.client, 'sh', { connectionAlive: () => true, retried: () => undefined })).rejects.toThrow('No response from server')
    expect(other.calls()).toBe(1)
    const gone = client([refused(), 'ok'])
    await expect(openExecChannel(gone.client, 'sh', { connectionAlive: () => false, retried: () => undefined })).rejects.toThrow(/MaxSessions/)
    expect(gone.calls()).toBe(1)
  })

  it('gives up after 20 refusals, naming the setting to lower', async () => {
    const fake = client([refused()])
    await expect(openExecChannel(fake.client, 'sh', { connectionAlive: () => true, retried: () => undefined })).rejects.toThrow(
      'sshd refused a new session 20 times ((SSH) Channel open failure: open failed): its MaxSessions is lower than the channels this host may use; lower maxChannels for this host.',
    )
    expect(fake.calls()).toBe(20)
  })
})
