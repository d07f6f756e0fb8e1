import pRetry from 'p-retry'
import type { HealthCheck } from './settings.js'

/**
 * Asks `check.url` up to `check.tries` times (a 2xx answers it; redirects are
 * not followed), waiting longer after each miss (250 ms doubling, at most 2 s).
 * Returns why the last try failed, or undefined when the URL answered.
 */
export async function failedHealthCheck(check: HealthCheck): Promise<string | undefined> {
  if (check.tries < 1) return 'no try was made'
  try {
    await pRetry(
      async () => {
        const response = await fetch(check.url, { signal: AbortSignal.timeout(check.timeoutMs), redirect: 'manual' })
        if (response.status < 200 || response.status >= 300) throw new Error(`HTTP ${response.status}`)
      },
      // Every miss is tried again, whatever it was (an HTTP status, a refused connection, a timeout).
      { retries: check.tries - 1, minTimeout: 250, factor: 2, maxTimeout: 2000, randomize: false, shouldRetry: () => true },
    )
    return undefined
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
}
