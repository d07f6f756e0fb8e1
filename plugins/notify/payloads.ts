/**
 * The body each service expects, built from a {@link Notification}: pure functions, so a unit
 * test pins every payload without a network.
 */
import type { Notification } from './notification.js'

/** A few words and an emoji per event, for titles. */
const TITLES: Record<Notification['event'], string> = {
  'deploy.started': '🚀 Deploy started',
  'deploy.succeeded': '✅ Deploy succeeded',
  'deploy.failed': '❌ Deploy failed',
  'deploy.reverted': '↩️ Deploy failed and was reverted',
  'rollback.succeeded': '⏪ Rollback done',
  'rollback.failed': '❌ Rollback failed',
}

/** Colours of the Discord embed bar (green, red, amber, blue). */
const COLORS: Record<Notification['event'], number> = {
  'deploy.started': 0x3b82f6,
  'deploy.succeeded': 0x22c55e,
  'deploy.failed': 0xef4444,
  'deploy.reverted': 0xf59e0b,
  'rollback.succeeded': 0xf59e0b,
  'rollback.failed': 0xef4444,
}

/** Longest error text a chat message carries (services cap fields at 1–2 KB). */
const MAX_ERROR = 900
const MAX_HOSTS_SHOWN = 10

/** `12.3 s`, `2 min 5 s`. */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  const seconds = Math.round(ms / 1000)
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`
}

/** `web1, web2` (at most ten names, then how many more). */
export function hostList(hosts: string[]): string {
  const shown = hosts.slice(0, MAX_HOSTS_SHOWN).join(', ')
  return hosts.length > MAX_HOSTS_SHOWN ? `${shown} (+${hosts.length - MAX_HOSTS_SHOWN} more)` : shown
}

function shortRevision(revision: string | null): string | undefined {
  if (!revision) return undefined
  return /^[0-9a-f]{40}$/i.test(revision) ? revision.slice(0, 12) : revision
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

/** The one-line summary every channel shows first (Slack's `text`, Discord's `content`). */
export function headline(n: Notification): string {
  const release = n.release ? `release ${n.release}${n.revision ? ` (${shortRevision(n.revision)})` : ''}` : shortRevision(n.revision) ?? 'a new release'
  const where = `${n.hosts.length} ${n.hosts.length === 1 ? 'host' : 'hosts'} (${hostList(n.hosts)})`
  const took = n.duration_ms === null ? '' : ` in ${formatDuration(n.duration_ms)}`
  const failed =
    n.status === 'interrupted'
      ? 'interrupted'
      : n.failed_step
        ? `${n.failed_step} failed${n.failed_host ? ` on ${n.failed_host}` : ''}`
        : 'it failed'
  switch (n.event) {
    case 'deploy.started':
      return `🚀 ${n.who} is deploying ${n.app} to ${where}`
    case 'deploy.succeeded':
      // A rolling deploy with --max-fail: live, but the hosts left out stay on their release.
      if (n.status === 'partial') return `⚠️ ${n.who} deployed ${n.app} ${release} to ${where}${took}, but ${n.failed_host ?? 'some hosts'} stayed on the release they served (${failed})`
      return `✅ ${n.who} deployed ${n.app} ${release} to ${where}${took}`
    case 'deploy.failed':
      return n.status === 'rollback-failed'
        ? `❌ ${n.who}'s deploy of ${n.app} failed (${failed}) and some hosts could not be put back${took}`
        : `❌ ${n.who}'s deploy of ${n.app} failed (${failed}); nothing went live${took}`
    case 'deploy.reverted':
      return `↩️ ${n.who}'s deploy of ${n.app} ${release} failed (${failed}); every host went back${n.previous_release ? ` to release ${n.previous_release}` : ''}${took}`
    case 'rollback.succeeded':
      return `⏪ ${n.who} rolled ${n.app} back to release ${n.release ?? '?'} on ${where}${took}`
    case 'rollback.failed':
      return `❌ ${n.who}'s rollback of ${n.app} failed (${failed})${took}`
  }
}

/** The facts every card lists, in order; empty ones left out. */
export function facts(n: Notification): Array<{ name: string; value: string }> {
  const list: Array<[string, string | null | undefined]> = [
    ['Who', n.who],
    ['Release', n.release],
    ['Revision', n.revision],
    [n.event === 'deploy.reverted' ? 'Back to' : 'Previous', n.previous_release],
    ['Hosts', hostList(n.hosts)],
    ['Duration', n.duration_ms === null ? null : formatDuration(n.duration_ms)],
    ['Failed step', n.failed_step ? `${n.failed_step}${n.failed_host ? ` on ${n.failed_host}` : ''}` : null],
  ]
  return list.filter((entry): entry is [string, string] => Boolean(entry[1])).map(([name, value]) => ({ name, value }))
}

/** Slack's mrkdwn treats &, < and > as markup. */
function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** Slack incoming webhook: `text` (notifications, fallbacks) and Block Kit `blocks`. */
export function slackPayload(n: Notification): Record<string, unknown> {
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: `${TITLES[n.event]}: ${clip(n.app, 100)}`, emoji: true } },
    { type: 'section', text: { type: 'mrkdwn', text: slackEscape(headline(n)) } },
    { type: 'section', fields: facts(n).map((f) => ({ type: 'mrkdwn', text: `*${f.name}*\n${slackEscape(f.value)}` })) },
  ]
  if (n.error) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `\`\`\`${slackEscape(clip(n.error, MAX_ERROR))}\`\`\`` } })
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `deployfile · ${n.task} · run ${n.run_id}` }] })
  return { text: headline(n), blocks }
}

/** Discord webhook: `content` and one embed; mentions in error text never ping anyone. */
export function discordPayload(n: Notification): Record<string, unknown> {
  return {
    content: headline(n),
    allowed_mentions: { parse: [] },
    embeds: [
      {
        title: `${TITLES[n.event]}: ${clip(n.app, 200)}`,
        color: COLORS[n.event],
        fields: facts(n).map((f) => ({ name: f.name, value: clip(f.value, 1024), inline: f.name !== 'Hosts' && f.name !== 'Failed step' })),
        ...(n.error ? { description: `\`\`\`\n${clip(n.error, MAX_ERROR)}\n\`\`\`` } : {}),
        footer: { text: `deployfile · ${n.task} · run ${n.run_id}` },
        timestamp: n.time,
      },
    ],
  }
}

/** Microsoft Teams (a Workflows "post to a channel when a webhook request is received" URL): an Adaptive Card. */
export function teamsPayload(n: Notification): Record<string, unknown> {
  const body: unknown[] = [
    { type: 'TextBlock', size: 'Medium', weight: 'Bolder', text: `${TITLES[n.event]}: ${n.app}`, wrap: true },
    { type: 'TextBlock', text: headline(n), wrap: true },
    { type: 'FactSet', facts: facts(n).map((f) => ({ title: f.name, value: f.value })) },
  ]
  if (n.error) body.push({ type: 'TextBlock', text: clip(n.error, MAX_ERROR), wrap: true, fontType: 'Monospace', color: 'Attention' })
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: { $schema: 'http://adaptivecards.io/schemas/adaptive-card.json', type: 'AdaptiveCard', version: '1.4', body },
      },
    ],
  }
}

/** The generic JSON webhook: the notification itself (see docs/notifications.md for the shape). */
export function genericPayload(n: Notification): Notification {
  return n
}
