/**
 * A bounded CPU hog for the "under load" row: `count` child processes that spin until they are
 * killed or `maxMs` has passed, whichever comes first (a crashed benchmark leaves nothing behind).
 */
import { type ChildProcess, spawn } from 'node:child_process'

export interface BusyLoops {
  /** Kills the loops and waits for them to exit. */
  stop(): Promise<void>
}

export function startBusyLoops(count: number, maxMs = 60_000): BusyLoops {
  const script = `const end = Date.now() + ${maxMs}; while (Date.now() < end) {}`
  const children: ChildProcess[] = Array.from({ length: count }, () => spawn(process.execPath, ['-e', script], { stdio: 'ignore' }))
  return {
    async stop() {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve()
              child.once('exit', () => resolve())
              child.kill('SIGKILL')
            }),
        ),
      )
    },
  }
}
