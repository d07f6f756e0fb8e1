/**
 * What a notification says, in one stable shape: the generic JSON webhook receives exactly this,
 * and the Slack, Discord and Teams payloads are built from it. Built from run events only.
 */
import type { RunEvent } from 'deployfile'

/** The moments a notification is sent for. */
export const NOTIFICATION_EVENTS = [
  'deploy.started',
  'deploy.succeeded',
  'deploy.failed',
  'deploy.reverted',
  'rollback.succeeded',
  'rollback.failed',
] as const

/**
 * `deploy.failed`: nothing of the new release went live (a prepare step failed), or the fleet could
 * not be put back (`status` says `rollback-failed`); `deploy.reverted`: the release went live and a
 * later step failed, so every host went back to the release it served (the automatic revert).
 */
export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number]

/** The body of the generic JSON webhook (`schema` names this version of the shape). */
export interface Notification {
  schema: 'deployfile.notification/1'
  event: NotificationEvent
  /** The task run: `deploy` or `rollback`. */
  task: string
  /**
   * `started`, then the run's end status: `success`, `partial` (live on every host but those a
   * rolling deploy's --max-fail left out: `failed_host` names them), `failed`, `rollback-failed`, `interrupted`.
   */
  status: 'started' | 'success' | 'partial' | 'failed' | 'rollback-failed' | 'interrupted'
  /** What is deployed (`notify_app`). */
  app: string
  /** Who runs it (`notify_user`). */
  who: string
  /** The release this run made or went back to; null before one was chosen. */
  release: string | null
  /** The revision (commit) the release holds, when known. */
  revision: string | null
  /** The release the hosts served before: what a revert or rollback went back from or to. */
  previous_release: string | null
  /** Every host the run selected. */
  hosts: string[]
  /** How long the run took; null when it only started. */
  duration_ms: number | null
  /** The step that failed, and where; null on success. */
  failed_step: string | null
  failed_host: string | null
  /** The failure, secrets masked; null on success. */
  error: string | null
  run_id: string
  /** ISO 8601 time of the event. */
  time: string
}

/** What the run listener knows besides the events. */
export interface NotificationSubject {
  app: string
  who: string
}

const TASKS: Record<string, 'deploy' | 'rollback'> = { deploy: 'deploy', rollback: 'rollback' }

/**
 * Follows one run's events and says when a notification is due: at `run:start` of a deploy,
 * and at `run:end` of a deploy or a rollback. Runs of other tasks (and dry runs) notify nobody.
 */
export class RunTracker {
  private kind?: 'deploy' | 'rollback'
  private hosts: string[] = []
  private release?: { release: string; revision?: string; previous?: string }
  /** Where the failure that started the recovery happened (run:end's summary says how the recovery went). */
  private failedAt?: { task: string; host: string }

  /** `subject` fills `app` and `who` (the plugin sets them once its settings are read). */
  constructor(private readonly subject: NotificationSubject = { app: '', who: '' }) {}

  /** The notification `event` calls for, if any. */
  observe(event: RunEvent): Notification | undefined {
    switch (event.type) {
      case 'run:start':
        this.kind = event.dryRun ? undefined : TASKS[event.task]
        this.hosts = event.hosts
        return this.kind === 'deploy' ? this.notification(event, 'deploy.started', 'started') : undefined
      case 'release':
        this.release ??= { release: event.release, revision: event.revision, previous: event.previous }
        return undefined
      case 'recovery:start':
        this.failedAt = { task: event.failedTask, host: event.failedHost }
        return undefined
      case 'run:end': {
        if (!this.kind) return undefined
        // A partial deploy went live: the hosts left out are named as failed ones.
        const ok = event.status === 'success' || event.status === 'partial'
        const recovery = event.summary.recovery
        const wentBack = !ok && event.status !== 'rollback-failed' && recovery?.ok === true && (recovery.phase === 'switch' || recovery.phase === 'post-switch')
        const name: NotificationEvent =
          this.kind === 'rollback' ? (ok ? 'rollback.succeeded' : 'rollback.failed') : ok ? 'deploy.succeeded' : wentBack ? 'deploy.reverted' : 'deploy.failed'
        const notification = this.notification(event, name, event.status)
        notification.duration_ms = event.durationMs
        const leftOut = event.summary.leftOut ?? []
        if (ok && leftOut.length > 0) {
          notification.failed_step = leftOut[0].task
          notification.failed_host = leftOut.map((left) => left.host).join(', ')
          notification.error = leftOut.map((left) => `${left.host}: ${left.message}`).join('\n')
        }
        if (!ok) {
          notification.failed_step = event.error?.task ?? this.failedAt?.task ?? null
          notification.failed_host = event.error?.host ?? (this.failedAt?.host || null)
          notification.error = event.error?.message ?? null
        }
        return notification
      }
      default:
        return undefined
    }
  }

  private notification(event: RunEvent, name: NotificationEvent, status: Notification['status']): Notification {
    const { app, who } = this.subject
    return {
      schema: 'deployfile.notification/1',
      event: name,
      task: this.kind ?? '',
      status,
      app,
      who,
      release: this.release?.release ?? null,
      revision: this.release?.revision ?? null,
      previous_release: this.release?.previous ?? null,
      hosts: this.hosts,
      duration_ms: null,
      failed_step: null,
      failed_host: null,
      error: null,
      run_id: event.runId,
      time: new Date(event.time).toISOString(),
    }
  }
}

/** Every string of `value` passed through `mask` (the run's secrets masked). */
export function maskNotification(notification: Notification, mask: (text: string) => string): Notification {
  const masked = (value: unknown): unknown =>
    typeof value === 'string' ? mask(value) : Array.isArray(value) ? value.map(masked) : value
  return Object.fromEntries(Object.entries(notification).map(([key, value]) => [key, key === 'schema' || key === 'event' ? value : masked(value)])) as unknown as Notification
}
