import { setTimeout as sleep } from 'node:timers/promises'
import type { HealthCheck } from './settings.js'

/**
 * Asks `check.url` up to `check.tries` times (a 2xx answers it; redirects are
 * not followed), waiting a little longer after each miss. Returns why the
 * last try failed, or undefined when the URL answered.
 */
export async function failedHealthCheck(check: HealthCheck): Promise<string | undefined> {
  let last = ''
  for (let attempt = 1; attempt <= check.tries; attempt++) {
    try {
      const response = await fetch(check.url, { signal: AbortSignal.timeout(check.timeoutMs), redirect: 'manual' })
      if (response.status >= 200 && response.status < 300) return undefined
      last = `HTTP ${response.status}`
    } catch (error) {
      last = error instanceof Error ? error.message : String(error)
    }
    if (attempt < check.tries) await sleep(Math.min(2000, 250 * attempt))
  }
  return last || 'no try was made'
}
