import type { EventSink, RunEvent } from '../model/events.js'
import type { RunListener, RunListenerContext } from '../model/run-listener.js'
import type { RunState } from './run-state.js'

/**
 * Hands every run event to the registry's run listeners (notifications, summaries), once per
 * run, and forwards it to the reporters. `run:end` is held until the listeners have settled
 * what they started, so their warnings come before the closing summary and nothing is left
 * running when the CLI exits; a listener bounds its own time.
 */
export class RunListeners {
  private readonly pending = new Set<Promise<unknown>>()
  private context?: RunListenerContext
  private ending?: { event: RunEvent; done: Promise<void>; forwarded: boolean }

  constructor(
    private readonly listeners: readonly RunListener[],
    private readonly forward: EventSink,
  ) {}

  /** Gives the listeners the run's settings, masking and output (once the run's state exists). */
  attach(state: RunState, overrides: Map<string, unknown>): void {
    const config = state.registry.hostConfig(undefined, overrides, (value) => state.secrets.add(value))
    this.context = {
      get: (key, fallback) => config.get(key, fallback) as Promise<never>,
      has: (key) => config.has(key),
      redact: (text) => state.secrets.redact(text),
      warning: (message) => state.emit({ type: 'log', level: 'warning', message }),
      dryRun: state.dryRun,
    }
  }

  /** The sink the run emits into. */
  readonly sink: EventSink = (event) => {
    const context = this.context
    if (this.listeners.length === 0 || !context) return this.forward(event)
    const calls = this.listeners.map((listener) => this.call(listener, event, context))
    if (event.type !== 'run:end') return this.forward(event)
    // The listeners' work for run:end (and anything still running) settles before the reporters see it.
    const ending = { event, forwarded: false, done: Promise.resolve() }
    ending.done = Promise.allSettled([...this.pending, ...calls]).then(() => this.release(ending))
    this.ending = ending
  }

  /**
   * Waits until every listener settled and `run:end` went to the reporters; with `limitMs`, no
   * longer than that (a run stopped at once), then forwards `run:end` anyway.
   */
  async settle(limitMs?: number): Promise<void> {
    const all = Promise.allSettled([...this.pending, this.ending?.done])
    if (limitMs === undefined) await all
    else await Promise.race([all, new Promise((resolve) => setTimeout(resolve, limitMs).unref())])
    if (this.ending) this.release(this.ending)
  }

  private release(ending: { event: RunEvent; forwarded: boolean }): void {
    if (ending.forwarded) return
    ending.forwarded = true
    this.forward(ending.event)
  }

  /** Calls one listener; tracks what it returns only when that is a promise (most events need no work). */
  private call(listener: RunListener, event: RunEvent, context: RunListenerContext): Promise<unknown> | undefined {
    let result: unknown
    try {
      result = listener(event, context)
    } catch (error) {
      this.warn(context, error)
      return undefined
    }
    if (!result || typeof (result as Promise<unknown>).then !== 'function') return undefined
    const tracked = (result as Promise<unknown>).then(undefined, (error: unknown) => this.warn(context, error))
    this.pending.add(tracked)
    void tracked.finally(() => this.pending.delete(tracked))
    return tracked
  }

  private warn(context: RunListenerContext, error: unknown): void {
    context.warning(`A run listener failed (the run goes on): ${context.redact(error instanceof Error ? error.message : String(error))}`)
  }
}
