/**
 * Deploy notifications for Slack, Discord, Microsoft Teams and any JSON webhook: one message when
 * a deploy starts, one when it ends (succeeded, failed, reverted) and one when `dep rollback`
 * ends, with who, what (release, revision), where (hosts), how long and the failed step. Sent once
 * per run from the machine running dep, never from the hosts; secrets masked. A channel that
 * fails or does not answer within `notify_timeout` seconds is one warning line: the deploy goes
 * on, and ends at most that long after it is done.
 *
 * @example
 * import { notify } from 'deployfile/plugins/notify'
 * use(notify)
 * set('notify_slack_webhook', process.env.SLACK_WEBHOOK ?? '')
 */
import { execFileSync } from 'node:child_process'
import { basename } from 'node:path'
import { userInfo } from 'node:os'
import { declareSetting, onRunEvent, type Recipe, type RunListenerContext } from 'deployfile'
import { maskNotification, NOTIFICATION_EVENTS, RunTracker, type Notification, type NotificationSubject } from './notify/notification.js'
import { discordPayload, genericPayload, slackPayload, teamsPayload } from './notify/payloads.js'
import { post } from './notify/send.js'

export type { Notification, NotificationEvent } from './notify/notification.js'
export { NOTIFICATION_EVENTS } from './notify/notification.js'
export { discordPayload, genericPayload, headline, slackPayload, teamsPayload } from './notify/payloads.js'

declare module 'deployfile' {
  interface DeployConfig {
    notify_slack_webhook: string
    notify_discord_webhook: string
    notify_teams_webhook: string
    notify_webhook_url: string
    notify_timeout: number
    notify_user: string
    notify_app: string
    notify_on: string[]
  }
}

/** One channel: the setting holding its URL, its name in warnings, and its payload. */
const CHANNELS = [
  { setting: 'notify_slack_webhook', name: 'Slack', payload: slackPayload },
  { setting: 'notify_discord_webhook', name: 'Discord', payload: discordPayload },
  { setting: 'notify_teams_webhook', name: 'Teams', payload: teamsPayload },
  { setting: 'notify_webhook_url', name: 'Webhook', payload: genericPayload },
] as const

/** Who deploys: $GITHUB_ACTOR on GitHub Actions, else git's user.name, else the local user. */
function defaultUser(): string {
  if (process.env.GITHUB_ACTOR) return process.env.GITHUB_ACTOR
  try {
    const name = execFileSync('git', ['config', 'user.name'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 2_000 }).trim()
    if (name) return name
  } catch {
    // no git, or no user.name: fall through
  }
  return process.env.USER || userInfo().username
}

/** The run's channels and options, read once at run:start (which also registers the URLs as secrets). */
interface Targets {
  channels: Array<{ name: string; url: string; payload: (n: Notification) => unknown }>
  timeoutMs: number
  events: Set<string>
  subject: NotificationSubject
}

async function readTargets(run: RunListenerContext): Promise<Targets> {
  const channels: Targets['channels'] = []
  for (const channel of CHANNELS) {
    const url = String(await run.get(channel.setting, '')).trim()
    if (url) channels.push({ name: channel.name, url, payload: channel.payload as (n: Notification) => unknown })
  }
  const seconds = Number(await run.get('notify_timeout', 5))
  return {
    channels,
    timeoutMs: Math.max(1, Math.round((Number.isFinite(seconds) && seconds > 0 ? seconds : 5) * 1000)),
    events: new Set(await run.get<string[]>('notify_on', [...NOTIFICATION_EVENTS])),
    subject: {
      app: run.has('notify_app') ? String(await run.get('notify_app')) : basename(process.cwd()),
      who: run.has('notify_user') ? String(await run.get('notify_user')) : defaultUser(),
    },
  }
}

/** Sends one notification to every channel, each bounded by `signal`; one warning per channel that failed. */
async function deliver(targets: Targets, notification: Notification, run: RunListenerContext, signal: AbortSignal): Promise<void> {
  const masked = maskNotification(notification, run.redact)
  await Promise.all(
    targets.channels.map(async (channel) => {
      const problem = await post(channel.url, channel.payload(masked), signal)
      if (problem) {
        const seconds = targets.timeoutMs / 1000
        run.warning(
          run.redact(`${channel.name} notification (${notification.event}) not delivered: ${problem === 'no answer in time' ? `no answer within ${seconds} s (notify_timeout)` : problem}; the run goes on.`),
        )
      }
    }),
  )
}

/** The plugin: declares its settings and follows every run of the deployfile. */
export const notify: Recipe = () => {
  const secret = (name: string, description: string) => declareSetting(name, { type: 'string', secret: true, description })
  secret('notify_slack_webhook', 'Slack incoming webhook URL (https://hooks.slack.com/services/…); empty: no Slack message.')
  secret('notify_discord_webhook', 'Discord webhook URL (https://discord.com/api/webhooks/…); empty: no Discord message.')
  secret('notify_teams_webhook', 'Microsoft Teams Workflows webhook URL (an Adaptive Card is posted); empty: no Teams message.')
  secret('notify_webhook_url', 'Any URL that receives the notification as JSON (docs/notifications.md); empty: none.')
  declareSetting('notify_timeout', { type: 'number', default: 5, description: 'Seconds a notification may take before it is given up with a warning.' })
  declareSetting('notify_user', { type: 'string', description: 'Who deploys, in notifications (default $GITHUB_ACTOR, else git user.name, else $USER).' })
  declareSetting('notify_app', { type: 'string', description: 'What is deployed, in notifications (default the name of the directory dep runs in).' })
  declareSetting('notify_on', {
    type: 'string[]',
    default: [...NOTIFICATION_EVENTS],
    description: `Events to notify: ${NOTIFICATION_EVENTS.join(', ')}.`,
  })

  // One tracker per run; the listener sees the runs of this deployfile one after the other.
  let tracker: RunTracker | undefined
  let targets: Promise<Targets> | undefined
  let started: Promise<void> | undefined
  // Synchronous for every event but the few that send: a run may emit a million output lines.
  onRunEvent((event, run) => {
    if (event.type === 'run:start') {
      // Created before any await: the events that follow at once must find this run's tracker.
      tracker = run.dryRun ? undefined : new RunTracker()
      targets = run.dryRun ? undefined : readTargets(run)
      // A setting that cannot be read fails the first message that needs it (one warning), not the process.
      targets?.catch(() => undefined)
      started = undefined
    }
    const notification = tracker?.observe(event)
    if (!notification || !targets) return
    const sending = send(targets, notification, event.type === 'run:start', run)
    if (event.type === 'run:start') started = sending
    return sending
  })

  /**
   * Sends one notification. The run does not wait for the start message (the deploy goes on), only
   * its end does; the end message waits for the start one, so they arrive in order, within one
   * deadline counted from the run's end.
   */
  async function send(pending: Promise<Targets>, notification: Notification, isStart: boolean, run: RunListenerContext): Promise<void> {
    const previous = isStart ? undefined : started
    const ready = await pending
    if (ready.channels.length === 0 || !ready.events.has(notification.event)) return
    Object.assign(notification, ready.subject)
    const signal = AbortSignal.timeout(ready.timeoutMs)
    if (previous) await Promise.race([previous, new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))])
    await deliver(ready, notification, run, signal)
  }
}
